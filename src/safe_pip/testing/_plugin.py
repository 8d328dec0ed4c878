"""pytest plugin ``safe_pip``: the stale-index simulator as fixtures.

Registered through the ``pytest11`` entry point, so any project with safe-pip installed can
ask for these fixtures without a conftest.py. It is inactive unless a test asks for one:
importing it loads only pytest (the simulator is imported when a fixture is first used), and
it does nothing at start-up but declare its marker.

- ``stale_origin``: a started :class:`~safe_pip.testing.Origin` (an index with a changelog
  and a file host on 127.0.0.1), stopped after the test; its keyword arguments (``profile``:
  ``"pypi"``, ``"bandersnatch"``, ``"proxy-mirror"``, ``"devpi"``, ``"plain"``; ``latency``
  and the other knobs) come from the ``@pytest.mark.stale_origin(...)`` marker.
- ``stale_cdn``: a started :class:`~safe_pip.testing.CDN` in front of ``stale_origin``;
  its keyword arguments (``edges``, ``purge_delays``, ``per_variant_purge_delays``,
  ``routing``, ``seed``, ``latency``, ``ttl``, ``negative_ttl``) come from the
  ``@pytest.mark.stale_cdn(...)`` marker. Default: one edge that purges at once.
- ``stale_cdn_factory``: ``make(**kwargs) -> CDN``, for several CDNs in one test or a CDN in
  front of another origin (``origin=...``); all are stopped after the test.
- ``plain_pip``: a :class:`~safe_pip.testing.PlainPip`: ``plain_pip(index, "alpha")`` runs
  plain pip (this interpreter's, with no configuration, ``PIP_*`` variables or cache) into a
  fresh ``--target`` directory under the test's ``tmp_path`` and returns a
  :class:`~safe_pip.testing.PipRun` (``.version("alpha")``, ``.installed``, ``.stderr``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# The fixtures import the simulator when first used, not here: every pytest run of a project
# with safe-pip installed loads this plugin, and most never use it.
if TYPE_CHECKING:
    from safe_pip.testing import CDN, Origin, PlainPip

MARKERS = (
    "stale_cdn(**kwargs): keyword arguments of safe_pip.testing.CDN for the stale_cdn "
    "fixture (edges, purge_delays, per_variant_purge_delays, routing, seed, latency, ttl, "
    "negative_ttl, soft_purge)",
    "stale_origin(**kwargs): keyword arguments of safe_pip.testing.Origin for the "
    "stale_origin fixture (profile, latency, serial_sources, json_serial_form, ...)",
)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


def _marker_kwargs(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.{name} takes keyword arguments only "
            f"(such as {'profile' if name == 'stale_origin' else 'edges'}=...), "
            f"not {marker.args!r}"
        )
    return dict(marker.kwargs)


@pytest.fixture
def stale_origin(request: pytest.FixtureRequest) -> Iterator[Origin]:
    """An origin index with a journal, on 127.0.0.1; publish, yank, remove to change it.
    ``@pytest.mark.stale_origin(profile="devpi")`` makes it serve pages as that kind of
    index does (``safe_pip.testing.PROFILES``)."""
    from safe_pip.testing import Origin

    with Origin(**_marker_kwargs(request, "stale_origin")) as origin:
        yield origin


@pytest.fixture
def stale_cdn_factory(stale_origin: Origin) -> Iterator[Callable[..., CDN]]:
    """``make(**kwargs)``: start a CDN in front of ``stale_origin`` (or ``origin=``)."""
    from safe_pip.testing import CDN

    made: list[CDN] = []

    def make(**kwargs: Any) -> CDN:
        origin = kwargs.pop("origin", stale_origin)
        cdn = CDN(origin, **kwargs).start()
        made.append(cdn)
        return cdn

    yield make
    for cdn in reversed(made):
        cdn.stop()


@pytest.fixture
def stale_cdn(request: pytest.FixtureRequest, stale_cdn_factory: Callable[..., CDN]) -> CDN:
    """A CDN in front of ``stale_origin``, configured by ``@pytest.mark.stale_cdn(...)``."""
    return stale_cdn_factory(**_marker_kwargs(request, "stale_cdn"))


@pytest.fixture
def plain_pip(tmp_path: Path) -> PlainPip:
    """Run plain pip installs against the simulator, each into a fresh target directory."""
    from safe_pip.testing import PlainPip

    return PlainPip(tmp_path / "plain-pip")
