"""The ``safe-pip-check`` pre-commit hook, run by the real ``pre-commit try-repo``.

pre-commit builds a virtual environment and pip-installs this project into it. Tests never
reach the network, so pip there is pointed at the test index (which has none of safe-pip's
dependencies, so it answers 404) and at a local wheelhouse that tox fills before the tests
run (``commands_pre`` in tox.ini, the install phase, where the package registry may be used),
named by ``SAFE_PIP_TEST_WHEELHOUSE``. Without a wheelhouse the test is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from safe_pip.testing import CDN, Origin

ROOT = Path(__file__).resolve().parent.parent
#: Read at import: the autouse fixture in conftest.py clears SAFE_PIP_* variables.
WHEELHOUSE = os.environ.get("SAFE_PIP_TEST_WHEELHOUSE", "")

pytestmark = [
    pytest.mark.skipif(
        not (WHEELHOUSE and Path(WHEELHOUSE).is_dir()),
        reason="needs SAFE_PIP_TEST_WHEELHOUSE, a directory of safe-pip's dependency wheels "
        "(tox fills one in commands_pre); pre-commit must install the hook without network",
    ),
    pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git"),
]

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@index.example",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@index.example",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_GIT_ENV}, check=True, capture_output=True
    )


def hook_repo(where: Path) -> Path:
    """A committed copy of this project (try-repo installs the repo at a commit)."""
    repo = where / "safe-pip"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", repo / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, repo / name)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "snapshot")
    return repo


@pytest.fixture
def cdn() -> Iterator[CDN]:
    with Origin() as origin, CDN(origin, edges=1) as server:
        origin.publish("alpha", "1.0")
        yield server


def test_hook_passes_clean_pins_and_fails_on_findings(
    cdn: CDN, tmp_path: Path, state_dir: Path
) -> None:
    repo = hook_repo(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    (project / "requirements.txt").write_text("alpha==1.0\n", encoding="utf-8")
    (project / "notes.txt").write_text("alpha==9.9 is not a requirements file\n")
    (project / "app").mkdir()
    (project / "app" / "uv.lock").write_text(
        'version = 1\nrevision = 3\nrequires-python = ">=3.10"\n\n'
        f'[[package]]\nname = "alpha"\nversion = "1.0"\n'
        f'source = {{ registry = "{cdn.simple_url}" }}\n\n'
        '[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\n',
        encoding="utf-8",
    )
    git(project, "add", "-A")
    env = {
        **os.environ,
        **_GIT_ENV,
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "VIRTUALENV_NO_PERIODIC_UPDATE": "1",
        # pip inside pre-commit's environment: the test index (404 for safe-pip's
        # dependencies) plus the local wheelhouse; the hook reads the same index from pip's
        # configuration, as it would in CI.
        "PIP_INDEX_URL": cdn.simple_url,
        "PIP_FIND_LINKS": WHEELHOUSE,
        "SAFE_PIP_CHANGELOG": cdn.changelog_url,
        "SAFE_PIP_STATE_DIR": str(state_dir),
        "SAFE_PIP_MAX_WAIT": "10",
        # A safety net: anything that would leave 127.0.0.1 goes to a dead proxy and fails
        # at once instead of reaching the network.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "try-repo", str(repo), "safe-pip-check",
             "--all-files", "--verbose"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )

    proc = try_repo()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "safe-pip check" in proc.stdout and "Passed" in proc.stdout
    assert (
        "checked 2 pins in 2 files on 1 indexes: no findings; "
        "1 locked packages not from an index skipped" in proc.stdout
    )

    (project / "requirements-dev.txt").write_text("alpha==9.9\n", encoding="utf-8")
    git(project, "add", "-A")
    proc = try_repo()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Failed" in proc.stdout
    assert "requirements-dev.txt:1: alpha 9.9: missing:" in proc.stdout
    assert "notes.txt" not in proc.stdout
