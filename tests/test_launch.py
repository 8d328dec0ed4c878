"""pip's process as the runner starts and ends it (``launch.PipProcess``), without pip: small
shell commands stand in for it, so each property is seen from inside the child."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from safe_pip.pip import launch
from safe_pip.pip.launch import PipProcess

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the child's /proc entries"
)


def _sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written")


def test_the_child_gets_its_own_session(tmp_path: Path) -> None:
    out = tmp_path / "out"
    child = PipProcess(_sh(f'echo "$$ $(ps -o sid= -p $$)" > {out}'), dict(os.environ))
    assert child.wait() == 0
    pid, sid = out.read_text().split()
    assert child.pid == int(pid)
    assert sid == pid  # a new session: its group is the child's own pid


def test_exit_codes_and_signals_come_back_as_popen_gives_them(tmp_path: Path) -> None:
    assert PipProcess(_sh("exit 3"), dict(os.environ)).wait() == 3
    assert PipProcess(_sh("kill -TERM $$"), dict(os.environ)).wait() == -signal.SIGTERM


def test_a_command_that_cannot_start_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        PipProcess(["safe-pip-no-such-command"], dict(os.environ))
    with pytest.raises(FileNotFoundError):
        PipProcess([str(tmp_path / "missing")], dict(os.environ))
    not_executable = tmp_path / "script"
    not_executable.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError):
        PipProcess([str(not_executable)], dict(os.environ))


def test_end_signals_the_whole_group_and_kills_what_ignores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(launch, "END_GRACE", 0.3)
    grandchild = tmp_path / "grandchild"
    ready = tmp_path / "ready"
    # The child ignores SIGTERM, and so does its own child (a build backend, say): the
    # group's SIGKILL ends both.
    child = PipProcess(
        _sh(f"trap '' TERM; sleep 60 & echo $! > {grandchild}; echo > {ready}; wait"),
        dict(os.environ),
    )
    _wait_for(ready)
    started = time.monotonic()
    child.end()
    assert child.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5
    other = int(grandchild.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{other}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # it is the test process's grandchild: init reaps it
    assert not Path(f"/proc/{other}/status").exists() or "Z (zombie)" in Path(
        f"/proc/{other}/status"
    ).read_text()


def test_wait_gives_the_code_when_another_thread_ends_the_child(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = PipProcess(_sh(f"echo > {ready}; exec sleep 60"), dict(os.environ))
    _wait_for(ready)
    ender = threading.Thread(target=lambda: (time.sleep(0.2), child.refuse()))
    ender.start()
    code = child.wait()  # blocked in waitpid while the other thread signals and polls
    ender.join(timeout=10)
    assert not ender.is_alive()
    assert code == -signal.SIGTERM
    assert child.refused.is_set()
    child.end()  # ended and reaped already: nothing to signal


def test_the_listener_listens_on_loopback_until_closed() -> None:
    listener = launch.Listener()
    try:
        port = int(listener.base.split(":")[2].split("/")[0])
        assert listener.sock.getsockname() == ("127.0.0.1", port)
        assert listener.base == f"http://127.0.0.1:{port}/{listener.token}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = listener.sock.accept()
            accepted.close()
    finally:
        listener.close()
    assert listener.sock.fileno() == -1
