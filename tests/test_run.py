"""``safe-pip run``: the real ``uv pip install`` and the real ``pip-compile`` through the guard.

Three views of a new release: fresh, stale until a purge lands, and stale forever (refused: 75,
nothing installed or written).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import installed, pins, safe_pip, tool

from safe_pip.commands.run import index_environment, installs
from safe_pip.testing import CDN, Origin, fill_cache

BIN = Path(sys.executable).parent


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


def test_uv_fresh_view_installs(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    with CDN(origin, edges=1) as cdn:
        proc = uv_install(cdn, tmp_path / "t")
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0", "beta": "1.0"}


def test_uv_waits_out_a_stale_view(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    with CDN(origin, edges=1, purge_delays=[2.0]) as cdn:
        fill_cache(cdn, "alpha", api=False)
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
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0", requires=["beta>=1"])  # the CDN learns of it late
        second = uv_install(cdn, tmp_path / "t2", "--max-wait", "30")
    assert second.returncode == 0, second.stderr
    # uv's cache saw the 1.0 page; the second run still got the fresh one
    assert installed(tmp_path / "t2") == {"alpha": "2.0", "beta": "1.0"}


def test_uv_stale_forever_is_ended_with_nothing_installed(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "alpha", api=False)
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
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        proc = pip_compile(cdn, tmp_path, "--max-wait", "30")
    assert proc.returncode == 0, proc.stderr
    assert pins(tmp_path / "requirements.txt") == {"alpha": "2.0", "beta": "1.0"}


def test_pip_compile_stale_forever_writes_no_pins(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "alpha", api=False)
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


@pytest.mark.parametrize(
    ("command", "fetched"),
    [
        (["uv", "pip", "install", "alpha"], True),
        (["/usr/bin/uv", "sync"], True),
        ([sys.executable, "-m", "pip", "install", "alpha"], True),
        (["pip-sync", "requirements.txt"], True),
        (["uv", "pip", "install", "--dry-run", "alpha"], False),
        (["uv", "pip", "compile", "requirements.in"], False),
        (["pip-compile", "requirements.in"], False),
        (["uv", "lock"], False),
    ],
)
def test_wheels_are_fetched_ahead_only_for_installing_commands(
    command: list[str], fetched: bool
) -> None:
    assert installs(command) is fetched
