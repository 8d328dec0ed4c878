"""The distribution's name and the README's install commands.

The name ``safe-pip`` on PyPI belongs to an unrelated project: a README or a config naming it
as what to install would send users to someone else's code.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
TAKEN = "safe-pip"  # on PyPI, an unrelated project


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_distribution_name_is_ours_and_command_stays() -> None:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    assert project["name"] == "safe-pip-guard"
    assert project["scripts"] == {"safe-pip": "safe_pip.cli:entry_point"}


def test_readme_never_installs_the_taken_name() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # "pip install safe-pip", "pipx install safe-pip", "uv pip install safe-pip==1", ...
    taken = re.compile(rf"install\s+[\"']?{re.escape(TAKEN)}(?![\w.-])")
    assert not taken.search(readme), taken.search(readme)


def test_readme_first_command_installs_this_checkout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```console\n", 1)[1].split("```", 1)[0]
    first = block.splitlines()[0]
    assert "pip install . " in first + " " and first.rstrip().endswith("safe-pip demo"), first
