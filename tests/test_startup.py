"""pip starts before the guard is built (issue 7), and the guard then serves the URLs pip got."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from safe_pip._http import TransportSettings
from safe_pip._launch import IndexPlan, Listener
from safe_pip._options import GuardOptions
from safe_pip._setup import GuardSetup
from safe_pip._state import StateStore

#: Run safe-pip up to the moment it starts pip, then say which modules were loaded by then.
_UP_TO_PIP = """
import subprocess, sys
def stop(self, argv, *args, **kwargs):
    if argv[1:3] == ["-m", "pip"]:
        print(" ".join(sorted(sys.modules)))
        raise SystemExit(0)
    raise AssertionError(f"unexpected subprocess before pip: {argv}")
subprocess.Popen.__init__ = stop
from safe_pip._cli import main
main(sys.argv[1:])
"""

#: What the guard needs and pip does not wait for: imported while pip starts.
_AFTER_PIP = (
    "requests", "urllib3", "xmlrpc.client", "charset_normalizer", "safe_pip._guard",
    "safe_pip._changelog", "safe_pip._prefetch", "safe_pip._proxy", "safe_pip._setup",
    "safe_pip._asof", "pip._internal", "packaging.requirements", "tomllib",
)


def test_pip_starts_before_the_guard_modules_are_imported(tmp_path: Path) -> None:
    env = dict(os.environ, SAFE_PIP_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run(
        [
            sys.executable, "-c", _UP_TO_PIP,
            "--changelog", "http://127.0.0.1:9/pypi",
            "install", "--index-url", "http://127.0.0.1:9/simple/", "--target",
            str(tmp_path / "t"), "beta", "gamma>=1",
        ],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "safe_pip._runner" in loaded  # the probe did stop at pip's start
    assert not loaded.intersection(_AFTER_PIP), sorted(loaded.intersection(_AFTER_PIP))


def test_the_guard_serves_the_index_urls_pip_was_given(tmp_path: Path) -> None:
    listener = Listener()
    try:
        plan = IndexPlan(listener.base)
        given = [
            plan.guarded("http://index.example/simple", main=True),
            plan.guarded("https://extra.example/simple/"),
            plan.guarded("http://index.example/simple/"),  # the main one again
            plan.guarded("file:///srv/wheels/"),  # local: no cache before it, left alone
        ]
        assert given[0] == given[2] == f"{listener.base}/i/0/"
        assert given[1] == f"{listener.base}/i/1/"
        assert given[3] == "file:///srv/wheels/"
        setup = GuardSetup(
            GuardOptions(), TransportSettings(), store=StateStore(tmp_path), say=print
        )
        from safe_pip._proxy import Proxy

        proxy = Proxy(setup.guard, listening=listener.sock, token=listener.token)
        plan.apply(setup)  # raises if a number differed
        assert [e.upstream for e in setup.guard.indexes] == [
            "http://index.example/simple/", "https://extra.example/simple/"
        ]
        assert proxy.base == listener.base
        assert proxy.port == listener.sock.getsockname()[1]
    finally:
        listener.close()
