"""The ``safe_pip`` pytest plugin, used the way a project that installs safe-pip would use it.

No conftest wiring and no relative imports: the fixtures come from the ``pytest11`` entry
point, and the helpers from the public ``safe_pip.testing`` API. One test also runs pytest on
a foreign project (a directory with nothing but a test file) to prove the plugin works there,
stays inactive unless asked, and stops its servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import requests

from safe_pip.testing import CDN, Origin, PlainPip, fill_cache, page_view


def test_plugin_is_registered_through_the_entry_point(pytestconfig: pytest.Config) -> None:
    points = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert points.get("safe_pip") == "safe_pip.testing._plugin"
    plugin = pytestconfig.pluginmanager.get_plugin("safe_pip")
    assert plugin is not None
    assert plugin.__name__ == "safe_pip.testing._plugin"


@pytest.mark.stale_cdn(edges=3, purge_delays=[0.0, None, None])
def test_a_lost_purge_makes_plain_pip_install_the_old_release(
    stale_origin: Origin, stale_cdn: CDN, plain_pip: PlainPip
) -> None:
    assert stale_cdn.origin is stale_origin
    assert stale_cdn.edges == 3
    stale_origin.publish("alpha", "1.0")
    old = stale_origin.project_serial("alpha")
    fill_cache(stale_cdn, "alpha")  # earlier readers: every edge holds the 1.0 page
    stale_origin.publish("alpha", "2.0")
    new = stale_origin.project_serial("alpha")
    assert [page_view(stale_cdn, "alpha", edge) for edge in range(3)] == [
        (new, ["1.0", "2.0"]),
        (old, ["1.0"]),
        (old, ["1.0"]),
    ]
    stale_cdn.pin(1)
    stale = plain_pip(stale_cdn, "alpha")
    assert stale.returncode == 0, stale.stderr
    assert stale.version("alpha") == "1.0"
    assert stale.installed == {"alpha": "1.0"}
    # A late purge reaching edge 1 only: edge 2 still serves the old page.
    stale_cdn.purge_now("alpha", edge=1)
    assert page_view(stale_cdn, "alpha", 1) == (new, ["1.0", "2.0"])
    assert page_view(stale_cdn, "alpha", 2) == (old, ["1.0"])
    fresh = plain_pip(stale_cdn.simple_url, "alpha")
    assert fresh.version("alpha") == "2.0"
    assert fresh.target != stale.target  # each run installs into a fresh directory
    assert [run.version("alpha") for run in plain_pip.runs] == ["1.0", "2.0"]


def test_default_cdn_has_one_edge_that_purges_at_once(stale_origin: Origin, stale_cdn: CDN) -> None:
    assert stale_cdn.edges == 1
    stale_origin.publish("alpha", "1.0")
    fill_cache(stale_cdn, "alpha", api=False)
    stale_origin.publish("alpha", "1.1")
    assert page_view(stale_cdn, "alpha", 0)[1] == ["1.0", "1.1"]


def test_factory_makes_cdns_with_per_variant_purges(
    stale_origin: Origin, stale_cdn_factory: Callable[..., CDN]
) -> None:
    # The JSON copies never learn of the change; HTML copies do at once.
    json_lost = stale_cdn_factory(per_variant_purge_delays={"json": None})
    plain = stale_cdn_factory(edges=2)
    assert json_lost.url != plain.url
    stale_origin.publish("alpha", "1.0")
    fill_cache(json_lost, "alpha")
    stale_origin.publish("alpha", "2.0")
    assert page_view(json_lost, "alpha", 0)[1] == ["1.0"]
    assert page_view(plain, "alpha", 1)[1] == ["1.0", "2.0"]
    with Origin() as other:
        other.publish("beta", "0.1")
        elsewhere = stale_cdn_factory(origin=other)
        assert elsewhere.origin is other
        assert page_view(elsewhere, "beta", 0)[1] == ["0.1"]


INACTIVE_TEST = """
import sys


def test_plugin_is_inactive_until_asked(pytestconfig):
    assert pytestconfig.pluginmanager.get_plugin("safe_pip") is not None
    assert "safe_pip.testing._origin" not in sys.modules
    assert "safe_pip.testing._cdn" not in sys.modules
"""

FOREIGN_TESTS = """
import socket
from urllib.parse import urlsplit

import pytest

SEEN = []


@pytest.mark.stale_cdn(edges=2, purge_delays=[None, 0.0])
def test_uses_the_fixtures(stale_origin, stale_cdn, plain_pip):
    from safe_pip.testing import fill_cache, page_view

    stale_origin.publish("alpha", "1.0")
    fill_cache(stale_cdn, "alpha")
    stale_origin.publish("alpha", "2.0")
    assert page_view(stale_cdn, "alpha", 0)[1] == ["1.0"]
    stale_cdn.pin(0)
    assert plain_pip(stale_cdn, "alpha").version("alpha") == "1.0"
    SEEN.extend(urlsplit(url).port for url in (stale_cdn.url, stale_origin.url))


def test_servers_were_stopped():
    assert len(SEEN) == 2
    for port in SEEN:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.stale_cdn(2)
def test_positional_marker_arguments_are_an_error(stale_cdn):
    pass
"""


def readme_example() -> str:
    """The example test in the README's ``safe_pip.testing`` section (so it cannot rot)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Testing against a stale index") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```\n", start)]


def test_plugin_in_a_foreign_project(tmp_path: Path) -> None:
    """pytest in a directory with nothing but test files: the README example, and more."""
    project = tmp_path / "elsewhere"
    project.mkdir()
    (project / "test_inactive.py").write_text(INACTIVE_TEST, encoding="utf-8")
    (project / "test_foreign.py").write_text(FOREIGN_TESTS, encoding="utf-8")
    (project / "test_readme_example.py").write_text(readme_example(), encoding="utf-8")

    def pytest_in_project(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *args],
            cwd=project,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
            timeout=240,
            check=False,
        )
        return proc.stdout + proc.stderr

    # Alone, so that no other test module has imported the simulator during collection.
    alone = pytest_in_project("test_inactive.py")
    assert "1 passed" in alone, alone
    out = pytest_in_project("--strict-markers", "test_foreign.py", "test_readme_example.py")
    assert "3 passed, 1 error" in out, out
    passed = {line.split(" ")[0] for line in out.splitlines() if " PASSED" in line}
    assert passed == {
        "test_foreign.py::test_uses_the_fixtures",
        "test_foreign.py::test_servers_were_stopped",
        "test_readme_example.py::test_plain_pip_installs_what_a_stale_edge_serves",
    }
    assert "@pytest.mark.stale_cdn takes keyword arguments only" in out


@pytest.mark.stale_origin(profile="proxy-mirror")
@pytest.mark.stale_cdn(purge_delays=[None])
def test_a_profile_picked_by_marker(
    stale_origin: Origin, stale_cdn: CDN, plain_pip: PlainPip
) -> None:
    """The marker picks the kind of index: a proxy mirror gives its serial as a JSON string
    only and answers no changelog."""
    assert stale_origin.profile.name == "proxy-mirror"
    stale_origin.publish("alpha", "1.0")
    fill_cache(stale_cdn, "alpha")
    stale_origin.publish("alpha", "2.0")
    assert plain_pip(stale_cdn, "alpha").version("alpha") == "1.0"  # the purge was lost
    page = requests.get(
        stale_cdn.simple_url + "alpha/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    assert "X-PyPI-Last-Serial" not in page.headers
    assert isinstance(page.json()["meta"]["_last-serial"], str)
