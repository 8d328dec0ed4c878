"""The stale-index simulator: a real origin package index and a real caching CDN.

Both run as HTTP servers on 127.0.0.1 (random ports) so that tests, and users trying
safe-pip out, can drive real pip against an index whose CDN serves stale pages on purpose:

- :class:`Origin` keeps projects and an append-only journal (the changelog) and serves
  PEP 503/691 project pages with their serials, the JSON API, the XML-RPC changelog and,
  on another port, the files; ``Origin.add_wheels`` lists a release's wheels for many
  platform tags without building each (real pages list thousands of files).
- :class:`Profile` and ``PROFILES``: the kinds of index an origin can simulate (``pypi``,
  ``bandersnatch``, ``proxy-mirror``, ``devpi``, ``plain``): where serials are, which
  fields pages carry, whether the index answers a changelog.
- :class:`Mirror` copies an origin's pages when told (``sync``) and serves them as a
  bandersnatch or devpi mirror would, so chosen projects can be left behind or missing.
- :class:`CDN` sits in front of an origin with several edges, each caching every page
  variant separately and purging it after a configurable delay, or never.
- :func:`build_wheel` makes the small installable wheels the origin serves.
- :func:`fill_cache` makes edges hold a project's pages (as earlier readers would), so that
  a later change leaves the edges that miss its purge stale; :func:`page_view` shows what
  an edge serves.
- :func:`pip_install` / :class:`PlainPip` run plain pip against them, isolated from the
  caller's pip configuration, ``PIP_*`` variables and cache (:func:`isolated_env`), into a
  ``--target`` directory; :func:`installed` reads what went there.
- :class:`Faults` (``Origin.faults``, ``CDN.faults``) injects statuses, resets, truncated or
  hung bodies, malformed pages and serials, and bad files; :func:`make_test_ca` makes a CA
  and a server certificate for the servers' ``tls=`` mode (needs ``cryptography``).

The pytest plugin ``safe_pip`` (``safe_pip.testing._plugin``, registered through the
``pytest11`` entry point) offers them as fixtures: ``stale_origin``, ``stale_cdn`` (with the
``stale_cdn`` marker), ``stale_cdn_factory`` and ``plain_pip``. ``safe-pip demo`` uses them.

Only the standard library is used for the servers, and nothing here reaches beyond
127.0.0.1. This is a public API (documented in the README).

Names are imported on first use (PEP 562): pytest loads the plugin, and so this package, in
every test run of a project with safe-pip installed, and most runs never use the simulator.
Add new exports to ``_EXPORTS``, ``__all__`` and the ``TYPE_CHECKING`` block.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cdn import CDN
    from ._clients import (
        PipRun,
        PlainPip,
        fill_cache,
        installed,
        isolated_env,
        page_view,
        pip_install,
    )
    from ._faults import FaultKind, Faults
    from ._journal import JournalEntry
    from ._mirror import Mirror
    from ._origin import Origin
    from ._profiles import PROFILES, Profile
    from ._tls import TestCA, make_test_ca
    from ._wheels import build_wheel, metadata_of

#: Public name -> the module that defines it.
_EXPORTS = {
    "CDN": "._cdn",
    "FaultKind": "._faults",
    "Faults": "._faults",
    "JournalEntry": "._journal",
    "Mirror": "._mirror",
    "Origin": "._origin",
    "PROFILES": "._profiles",
    "Profile": "._profiles",
    "PipRun": "._clients",
    "PlainPip": "._clients",
    "TestCA": "._tls",
    "build_wheel": "._wheels",
    "fill_cache": "._clients",
    "installed": "._clients",
    "isolated_env": "._clients",
    "make_test_ca": "._tls",
    "metadata_of": "._wheels",
    "page_view": "._clients",
    "pip_install": "._clients",
}

__all__ = [
    "CDN",
    "FaultKind",
    "Faults",
    "JournalEntry",
    "Mirror",
    "Origin",
    "PROFILES",
    "PipRun",
    "Profile",
    "PlainPip",
    "TestCA",
    "build_wheel",
    "fill_cache",
    "installed",
    "isolated_env",
    "make_test_ca",
    "metadata_of",
    "page_view",
    "pip_install",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
