"""Helpers shared by the fault, bad-input and security tests: run safe-pip, read what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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


def refusal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("safe-pip: refused ")]
