"""Helpers shared by the end-to-end tests: run safe-pip, read what it did."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from safe_pip.cli import main
from safe_pip.testing import CDN

JSON = "application/vnd.pypi.simple.v1+json"


def safe_pip(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``python -m safe_pip ARGS`` in a subprocess (the environment the conftest made)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "safe_pip", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def check(
    capsys: pytest.CaptureFixture[str], cdn: CDN, *args: str, guard: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    """``safe-pip check ARGS`` in this process, the CDN's changelog its authority."""
    capsys.readouterr()
    code = main(["--changelog", cdn.changelog_url, *guard, "check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` with its bytes: equal before and after means unchanged."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def installed(target: Path) -> dict[str, str]:
    """Distributions in a ``--target`` directory or site-packages: name -> version."""
    found: dict[str, str] = {}
    if not target.exists():
        return found
    for child in target.iterdir():
        if child.name.endswith(".dist-info"):
            name, version = child.name[: -len(".dist-info")].rsplit("-", 1)
            found[name] = version
    return found


def tool(name: str) -> str:
    """A command of the test extra (uv, pip-compile), from this interpreter's environment."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (it is in the test extra)")
    return found


def pins(path: Path) -> dict[str, str]:
    """``name==version`` pins of a requirements file pip-compile wrote: name -> version."""
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split("==", 1)
                found[name.strip()] = version.split()[0]
    return found


def refusal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("safe-pip: refused ")]


class Served:
    """A ``safe-pip serve`` process; its access log is collected line by line."""

    def __init__(self, *args: str, token: str = "") -> None:
        self.proc = subprocess.Popen(
            # faulthandler: a serve that hangs on shutdown is made to print its threads' stacks.
            [sys.executable, "-X", "faulthandler", "-m", "safe_pip", *args],
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        first = self.proc.stderr.readline()
        found = re.search(r" at (http://\S+)", first)
        if not found:
            rest = self.proc.stderr.read()
            self.proc.wait(timeout=30)
            self.proc.stderr.close()
            raise AssertionError(f"serve did not start: {first}{rest}")
        self.first_line = first
        # The log shows the token masked; the test, like the operator, has the token itself.
        self.url = found.group(1).replace("/***/", f"/{token}/") if token else found.group(1)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def get(self, project: str, timeout: float = 60) -> requests.Response:
        return requests.get(f"{self.url}{project}/", headers={"Accept": JSON}, timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
            self.proc.wait(timeout=30)
            self._reader.join(timeout=10)
            raise AssertionError("serve did not stop:\n" + "\n".join(self.lines)) from None
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code
