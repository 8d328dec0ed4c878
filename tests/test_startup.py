"""pip (and ``run``'s command) starts before the guard is built, and the guard then serves the
URLs it got."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from safe_pip.authority.state import StateStore
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.setup import GuardSetup
from safe_pip.net.http import TransportSettings
from safe_pip.pip.launch import IndexPlan, Listener

#: Run safe-pip up to the moment it starts pip, then say which modules were loaded by then
#: (subprocess raises the "subprocess.Popen" audit event before it starts a process).
_UP_TO_PIP = """
import os, sys
def stop(event, args):
    if event != "subprocess.Popen":
        return
    argv = list(args[1])
    if argv[1:3] == ["-m", "pip"] or argv[:1] == ["uv"]:
        print(" ".join(sorted(sys.modules)))
        sys.stdout.flush()
        os._exit(0)
    raise AssertionError(f"unexpected process before pip: {args[1]}")
sys.addaudithook(stop)
from safe_pip.cli import main
main(sys.argv[1:])
"""

#: The guard's own modules: imported while pip starts (pip's own parser, which reads pip's
#: command line and configuration, is loaded before: it decides pip's command line).
_AFTER_PIP = (
    "requests",
    "safe_pip.guard.guard",
    "safe_pip.authority.changelog",
    "safe_pip.guard.prefetch",
    "safe_pip.guard.proxy",
    "safe_pip.guard.setup",
    "safe_pip.authority.state",
    "safe_pip.net.http",
)


@pytest.mark.parametrize("with_file", [False, True], ids=["arguments", "requirements-file"])
def test_pip_starts_before_the_guard_modules_are_imported(
    tmp_path: Path, with_file: bool
) -> None:
    env = dict(os.environ, SAFE_PIP_STATE_DIR=str(tmp_path / "state"), PIP_CONFIG_FILE=os.devnull)
    wanted = ["beta", "gamma>=1"]
    if with_file:
        reqs = tmp_path / "requirements.txt"
        reqs.write_text(
            "--extra-index-url http://127.0.0.1:9/extra/\n"
            "beta[fast] >= 1 ; python_version > '3'\n"
            "gamma @ https://files.example/gamma-1.0-py3-none-any.whl\n",
            encoding="utf-8",
        )
        wanted = ["-r", str(reqs)]
    proc = subprocess.run(
        [
            sys.executable, "-c", _UP_TO_PIP,
            "--changelog", "http://127.0.0.1:9/pypi", "--max-wait=30",
            "install", "--index-url", "http://127.0.0.1:9/simple/", "--target",
            str(tmp_path / "t"), *wanted,
        ],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "safe_pip.commands.install" in loaded  # the probe did stop at pip's start
    assert not loaded.intersection(_AFTER_PIP), sorted(loaded.intersection(_AFTER_PIP))


def test_run_starts_its_command_before_the_guard_modules_are_imported(tmp_path: Path) -> None:
    env = dict(os.environ, SAFE_PIP_STATE_DIR=str(tmp_path / "state"), PIP_CONFIG_FILE=os.devnull)
    proc = subprocess.run(
        [
            sys.executable, "-c", _UP_TO_PIP,
            "--changelog", "http://127.0.0.1:9/pypi", "--max-wait=30",
            "run", "--index-url", "http://127.0.0.1:9/simple/", "--",
            "uv", "pip", "install", "beta",
        ],
        env=env, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "safe_pip.commands.run" in loaded  # the probe did stop at the command's start
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
        from safe_pip.guard.proxy import Proxy

        proxy = Proxy(setup.guard, listening=listener.sock, token=listener.token)
        setup.add_planned(plan.calls)  # raises if a number differed
        assert [e.upstream for e in setup.guard.indexes] == [
            "http://index.example/simple/", "https://extra.example/simple/"
        ]
        assert proxy.base == listener.base
        assert proxy.port == listener.sock.getsockname()[1]
        proxy.start()
        with urllib.request.urlopen(f"http://127.0.0.1:{proxy.port}/-/health", timeout=10) as r:
            assert r.status == 200
        proxy.stop()  # the serving loop is woken, not polled: it has ended when stop returns
        assert not proxy._thread.is_alive()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    finally:
        listener.close()
