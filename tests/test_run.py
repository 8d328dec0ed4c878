"""``safe-pip run``: the real ``uv pip install`` and the real ``pip-compile`` through the guard.

Three views of a new release: fresh, stale until a purge lands, and stale forever (refused: 75,
nothing installed or written).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from safe_pip._run import index_environment
from safe_pip.testing import CDN, Origin

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (it is in the test extra)")
    return str(found)


def safe_pip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safe_pip", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=240,
        check=False,
    )


def installed(target: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if target.exists():
        for child in target.iterdir():
            if child.name.endswith(".dist-info"):
                name, version = child.name[: -len(".dist-info")].rsplit("-", 1)
                found[name] = version
    return found


def warm(cdn: CDN, project: str) -> None:
    """Fill every cached copy of a project page, as other users of the CDN would."""
    for accept in (
        "application/vnd.pypi.simple.v1+json",
        "application/vnd.pypi.simple.v1+html",
        "text/html",
    ):
        for enc in ("gzip", "identity"):
            requests.get(
                f"{cdn.simple_url}{project}/",
                headers={"Accept": accept, "Accept-Encoding": enc},
                timeout=10,
            ).raise_for_status()


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        server.publish("beta", "1.0")
        server.publish("alpha", "1.0", requires=["beta>=1"])
        yield server


def uv_install(cdn: CDN, target: Path, *guard: str) -> subprocess.CompletedProcess[str]:
    return safe_pip(
        "--changelog", cdn.changelog_url, *guard,
        "run", "--index-url", cdn.simple_url, "--",
        tool("uv"), "pip", "install", "--python", sys.executable, "--target", str(target),
        "alpha",
    )


def pip_compile(cdn: CDN, workdir: Path, *guard: str) -> subprocess.CompletedProcess[str]:
    (workdir / "requirements.in").write_text("alpha\n")
    return safe_pip(
        "--changelog", cdn.changelog_url, *guard,
        "run", "--index-url", cdn.simple_url, "--",
        tool("pip-compile"), "--quiet", "--no-header", "--output-file", "requirements.txt",
        "requirements.in",
        cwd=workdir,
    )


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                name, version = line.split("==", 1)
                found[name.strip()] = version.split()[0]
    return found


def test_uv_fresh_view_installs(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    with CDN(origin, edges=1) as cdn:
        proc = uv_install(cdn, tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0", "beta": "1.0"}


def test_uv_waits_out_a_stale_view(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    with CDN(origin, edges=1, purge_delays=[2.0]) as cdn:
        warm(cdn, "alpha")
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        t0 = time.monotonic()
        proc = uv_install(cdn, tmp_path / "t", "--max-wait", "30")
        assert time.monotonic() - t0 >= 1.0  # it did wait for the purge
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "2.0", "beta": "1.0"}


def test_uv_cache_kept_and_a_warm_cache_never_gives_the_old_page(
    origin: Origin, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "uv-cache"
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    monkeypatch.delenv("UV_NO_CACHE", raising=False)
    with CDN(origin, edges=1, purge_delays=[2.0]) as cdn:
        first = uv_install(cdn, tmp_path / "t1")
        assert first.returncode == 0, first.stderr
        assert installed(tmp_path / "t1") == {"alpha": "1.0", "beta": "1.0"}
        kept = {p.parent.name for p in cache.rglob("METADATA")}
        assert "alpha-1.0.dist-info" in kept, kept  # uv's cache was used, not thrown away
        warm(cdn, "alpha")
        origin.publish("alpha", "2.0", requires=["beta>=1"])  # the CDN learns of it late
        second = uv_install(cdn, tmp_path / "t2", "--max-wait", "30")
    assert second.returncode == 0, second.stderr
    # uv's cache saw the 1.0 page; the second run still got the fresh one
    assert installed(tmp_path / "t2") == {"alpha": "2.0", "beta": "1.0"}


def test_uv_stale_forever_is_ended_with_nothing_installed(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        warm(cdn, "alpha")
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        proc = uv_install(cdn, tmp_path / "t", "--max-wait", "2")
    assert proc.returncode == 75, proc.stderr
    assert installed(tmp_path / "t") == {}
    target = tmp_path / "t"
    left = {p.name for p in target.iterdir()} if target.exists() else set()
    assert left <= {".lock"}  # uv locks the target when it starts; nothing else is there
    refusal = [line for line in proc.stderr.splitlines() if "refused alpha" in line]
    assert refusal and f"{origin.project_serial('alpha')} required" in refusal[0], proc.stderr
    assert "(exit 75)" in proc.stderr


def test_pip_compile_fresh_view_pins_and_names_the_real_index(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1) as cdn:
        proc = pip_compile(cdn, tmp_path)
        simple_url = cdn.simple_url
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "requirements.txt"
    assert pins(out) == {"alpha": "1.0", "beta": "1.0"}
    text = out.read_text()
    # pip-compile records the index it used; the guard's per-run URL is put back as the index's
    assert f"--index-url {simple_url}" in text, text
    assert "/i/0/" not in text


def test_pip_compile_waits_out_a_stale_view(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[2.0]) as cdn:
        warm(cdn, "alpha")
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        proc = pip_compile(cdn, tmp_path, "--max-wait", "30")
    assert proc.returncode == 0, proc.stderr
    assert pins(tmp_path / "requirements.txt") == {"alpha": "2.0", "beta": "1.0"}


def test_pip_compile_stale_forever_writes_no_pins(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        warm(cdn, "alpha")
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        proc = pip_compile(cdn, tmp_path, "--max-wait", "2")
    assert proc.returncode == 75, proc.stderr
    assert pins(tmp_path / "requirements.txt") == {}
    assert "refused alpha" in proc.stderr


def test_index_environment_points_every_tested_tool_at_the_guard() -> None:
    env = index_environment("http://127.0.0.1:1/t/i/0/", ["http://127.0.0.1:1/t/i/1/"], 200.5)
    for name in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        assert env[name] == "http://127.0.0.1:1/t/i/0/"
    for name in ("PIP_EXTRA_INDEX_URL", "UV_INDEX", "UV_EXTRA_INDEX_URL"):
        assert env[name] == "http://127.0.0.1:1/t/i/1/"
    assert float(env["UV_HTTP_TIMEOUT"]) > 200.5  # a held page is not abandoned
    assert float(env["PIP_TIMEOUT"]) >= 200.5
    assert "UV_NO_CACHE" not in env  # uv's cache is kept: pages are no-store, URLs per run


def test_run_usage_errors(tmp_path: Path, state_dir: Path) -> None:
    empty = safe_pip("run", "--")
    assert empty.returncode == 2
    assert "no command" in empty.stderr
    missing = safe_pip(
        "run", "--index-url", "http://127.0.0.1:9/simple/", "--",
        str(tmp_path / "no-such-tool"),
    )
    assert missing.returncode == 2
    assert "no-such-tool" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_command_exit_code_is_passed_through(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    script = "import os, sys; print(os.environ['PIP_INDEX_URL']); sys.exit(3)"
    with CDN(origin, edges=1) as cdn:
        proc = safe_pip("run", "--index-url", cdn.simple_url, "--", sys.executable, "-c", script)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("http://127.0.0.1:")
    assert os.path.basename(proc.stdout.strip().rstrip("/")) == "0"
