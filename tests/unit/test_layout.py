"""The package layout the README's "Layout" section promises, read from the source's imports.

Each package imports only from packages below it (so there is no import cycle between
packages), no module imports another package's private names, and no module outgrows what a
reader takes in at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "safe_pip"

#: Lower imports from nothing above it; packages on one level do not import each other.
LEVELS: dict[str, int] = {
    "errors": 0,
    "index": 1,
    "net": 1,
    "authority": 2,
    "pip": 2,
    "guard": 3,
    "report": 4,
    "locks": 5,
    "mirrors": 5,
    "testing": 5,
    "commands": 6,
    "cli": 7,
    "__main__": 8,
}
MAX_LINES = 450


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.name != "__init__.py")


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every ``safe_pip`` import in the file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "safe_pip" or node.module.startswith("safe_pip."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("safe_pip.")]
            found += [(node.lineno, name, []) for name in names]
    return found


def _target_package(module: str, names: list[str]) -> list[str]:
    parts = module.split(".")
    if len(parts) > 1:
        return [parts[1]]
    return [name for name in names if name in LEVELS]  # from safe_pip import errors


def test_every_package_has_a_level() -> None:
    packages = {_package(path) for path in _modules()}
    assert packages <= set(LEVELS), sorted(packages - set(LEVELS))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_down_only(path: Path) -> None:
    own = _package(path)
    upward = [
        f"line {line}: {module}"
        for line, module, names in _imports(path)
        for target in _target_package(module, names)
        if target != own and LEVELS[target] >= LEVELS[own]
    ]
    assert not upward, f"{own} imports from its level or above: {upward}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_private_names_across_packages(path: Path) -> None:
    own = _package(path)
    private = [
        f"line {line}: {module} {name}"
        for line, module, names in _imports(path)
        if _target_package(module, names) != [own]
        for name in names + module.split(".")[1:]
        if name.startswith("_") and name != "__version__"
    ]
    assert not private, private


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_readable(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{lines} lines"
