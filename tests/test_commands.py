"""``download``, ``wheel`` and ``lock`` go through the guard too; index options in requirements
files and the target environment are honoured as pip would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_install import installed, safe_pip

from safe_pip.testing import CDN, Origin, fill_cache


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0", requires=["beta"])
        server.publish("beta", "1.0")
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def test_download_and_wheel(cdn: CDN, tmp_path: Path, state_dir: Path) -> None:
    for command in ("download", "wheel"):
        dest = tmp_path / command
        flag = "-d" if command == "download" else "-w"
        proc = safe_pip(
            "--changelog", cdn.changelog_url,
            command, "--index-url", cdn.simple_url, flag, str(dest), "alpha",
        )
        assert proc.returncode == 0, proc.stderr
        assert sorted(p.name for p in dest.iterdir()) == [
            "alpha-1.0-py3-none-any.whl",
            "beta-1.0-py3-none-any.whl",
        ]


def test_lock_names_the_index_not_the_guard(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "lock", "--index-url", cdn.simple_url, "alpha", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "pylock.toml").read_text()
    assert f'url = "{origin.files_url}' in text  # the file host's own URLs
    for line in text.splitlines():  # no guard URL left behind
        assert "127.0.0.1" not in line or origin.files_url in line or cdn.url in line, line


def test_stale_lock_is_refused(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "beta", api=False)
        origin.publish("beta", "2.0")
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "1",
            "lock", "--index-url", cdn.simple_url, "alpha", cwd=tmp_path,
        )
    assert proc.returncode == 75, proc.stderr
    assert "refused beta" in proc.stderr
    assert not (tmp_path / "pylock.toml").exists()


def test_index_url_inside_requirements_file_is_guarded(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0")
        inner = tmp_path / "inner.txt"
        inner.write_text(f"--index-url {cdn.simple_url}\nalpha\n")
        (tmp_path / "requirements.txt").write_text("-r inner.txt\n")
        report = tmp_path / "report.json"
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "1", "--guard-report", str(report),
            "install", "--target", str(tmp_path / "t"), "-r", "requirements.txt",
            cwd=tmp_path,
        )
    # the index named in the file was reached through the guard, which saw it stale
    assert proc.returncode == 75, proc.stderr
    assert installed(tmp_path / "t") == {}
    pages = json.loads(report.read_text())["pages"]
    assert pages and pages[0]["project"] == "alpha"


def test_installs_into_the_active_virtual_environment(
    cdn: CDN, tmp_path: Path, state_dir: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "beta",
        env={"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr
    found = list(venv.glob("lib/python*/site-packages/beta-1.0.dist-info"))
    assert found, proc.stdout


def test_pip_configuration_is_honoured(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    """The index comes from a pip.conf [install] section; a stale view there is refused."""
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "beta", api=False)
        origin.publish("beta", "2.0")
        conf = tmp_path / "pip.conf"
        conf.write_text(f"[global]\ntimeout = 7\n[install]\nindex-url = {cdn.simple_url}\n")
        report = tmp_path / "report.json"
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "1", "--guard-report", str(report),
            "install", "--target", str(tmp_path / "t"), "beta",
            env={"PIP_CONFIG_FILE": str(conf)},
        )
        assert proc.returncode == 75, proc.stderr
        assert json.loads(report.read_text())["indexes"][0]["url"] == cdn.simple_url
        # PIP_* variables win over the file, as in pip
        fresh = safe_pip(
            "--changelog", cdn.changelog_url,
            "install", "--target", str(tmp_path / "t2"), "beta",
            env={"PIP_CONFIG_FILE": str(conf), "PIP_INDEX_URL": origin.simple_url},
        )
        assert fresh.returncode == 0, fresh.stderr
        assert installed(tmp_path / "t2") == {"beta": "2.0"}
