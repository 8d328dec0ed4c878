"""``safe-pip demo``: the newcomer's first command runs, and its account says what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from safe_pip.commands import demo as demo_command
from safe_pip.guard.options import GuardOptions
from safe_pip.testing import PipRun


def demo(*args: str, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmpdir))
    return subprocess.run(
        [sys.executable, "-m", "safe_pip", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def test_demo_shows_plain_pip_stale_and_safe_pip_fresh_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # The user's guard settings and pip configuration must not leak into the demo's children.
    monkeypatch.setenv("SAFE_PIP_MAX_WAIT", "0")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/nowhere/")
    proc = demo("demo", tmpdir=tmpdir)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    lines = out.splitlines()
    # The edges, as the CDN serves them before anyone installs.
    assert "  edge 0: purge at once,  serves serial 5 (newest: frobnicate 2.0)" in lines
    assert "  edge 1: purge late,     serves serial 3 (newest: frobnicate 1.0)" in lines
    assert "  edge 2: purge never,    serves serial 3 (newest: frobnicate 1.0)" in lines
    # 1. plain pip gets whatever its edge holds.
    assert "  through edge 0: installed frobnicate 2.0  (the new release)" in lines
    assert "  through edge 1: installed frobnicate 1.0  (the old release)" in lines
    assert "  through edge 2: installed frobnicate 1.0  (the old release)" in lines
    assert "  plain pip installed the old release 2 times out of 3." in lines
    # 2. safe-pip waits out the late edge and installs the new release.
    assert any("serial 3 seen, 5 required" in line and "waiting" in line for line in lines)
    assert "  safe-pip read serial 3 from edge 1; the changelog requires 5;" in lines
    assert any(line.endswith("it got serial 5 (FRESH)") for line in lines)
    assert "  exit 0, installed frobnicate 2.0" in lines
    # 3. the lost purge: plain pip installs the old release, safe-pip refuses and installs nothing.
    section = out[out.index("3. Edge 2 never learns of 2.0") :]
    assert "  through edge 2: installed frobnicate 1.0  (the old release)" in section
    assert "  safe-pip --max-wait 3: exit 75, installed nothing" in section
    refusal = [line for line in section.splitlines() if "refused frobnicate from" in line]
    assert len(refusal) == 1
    assert "http://127.0.0.1:" in refusal[0]
    assert "STALE, serial 3 seen, 5 required" in refusal[0]
    assert lines[-1].startswith("OK: ")
    assert "!!" not in out and "FAILED" not in out
    # Nothing is left behind: the temporary directory is gone, the user's state untouched.
    assert list(tmpdir.iterdir()) == []
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "safe-pip").exists()


def test_demo_usage(tmp_path: Path) -> None:
    helped = demo("demo", "--help", tmpdir=tmp_path)
    assert helped.returncode == 0
    assert "usage: safe-pip demo" in helped.stdout
    bad = demo("demo", "--frobnicate", tmpdir=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "--frobnicate" in bad.stderr


def test_demo_exits_1_and_says_what_went_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A guard that lets the old release through, or a simulator that is never stale, fails."""

    def never_stale(index_url: str, *requirements: str, target: Path, **kw: Any) -> PipRun:
        return PipRun([], 0, "", "", target, {"frobnicate": "2.0"})

    def careless_guard(*args: Any, **kwargs: Any) -> demo_command._GuardedRun:
        return demo_command._GuardedRun(0, {"frobnicate": "1.0"}, [], None)

    monkeypatch.setattr(demo_command, "pip_install", never_stale)
    monkeypatch.setattr(demo_command, "_guarded", careless_guard)
    assert demo_command.main([], GuardOptions()) == 1
    out = capsys.readouterr().out
    assert "FAILED: the guard did not behave as documented" in out
    assert "  - plain pip installed ['2.0', '2.0', '2.0'], expected" in out
    assert "  - safe-pip installed frobnicate 1.0, expected frobnicate 2.0" in out
    assert "  - safe-pip exited 0, expected 75" in out
    assert "  - no refusal line saying 'STALE, serial 3 seen, 5 required'" in out
