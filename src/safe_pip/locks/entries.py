"""What the lock readers share: the array of package tables, each entry's name and version
checked, and the pin made of it.

``uvlock``, ``poetrylock``, ``pdmlock`` and ``pylock`` keep only what their formats differ
in: where a package comes from and how its files are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from safe_pip.errors import InputError
from safe_pip.locks.pins import LockedFile, Pin
from safe_pip.locks.tomlfile import entry_lines, hashed_file


@dataclass(frozen=True)
class Entry:
    """One table of a lock's package array, with its name; errors name file, entry and line."""

    path: str
    where: str  # "package[3]"
    line: int | None
    table: Mapping[str, Any]
    name: str

    def fail(self, message: str) -> InputError:
        return InputError(self.path, f"{self.where}: {message}", self.line)

    def version(self, missing: str = "needs a version string") -> str:
        """The entry's version, valid under PEP 440; ``missing`` says so when it is not a string."""
        version = self.table.get("version")
        if not isinstance(version, str):
            raise self.fail(missing)
        try:
            Version(version)
        except InvalidVersion:
            raise self.fail(f"version {version!r} is not a valid version (PEP 440)") from None
        return version

    def pin(
        self,
        source: Literal["pylock", "uv", "poetry", "pdm"],
        version: str | None,
        files: Iterable[LockedFile],
        index: str | None = None,
    ) -> Pin:
        return Pin(
            project=canonicalize_name(self.name),
            version=version,
            file=self.path,
            line=self.line,
            source=source,
            requested=f"{self.name}=={version}" if version else self.name,
            files=tuple(files),
            index=index,
        )


def package_entries(path: str, text: str, document: Mapping[str, Any], key: str) -> Iterator[Entry]:
    """The entries of the lock's array of tables ``key``, in file order. ``InputError`` at once
    when it is not an array, and as each entry comes when it is not a table with a name."""
    packages = document.get(key, [])
    if not isinstance(packages, list):
        raise InputError(path, f"{key} must be an array of tables")
    return _entries(path, key, packages, entry_lines(text, key, packages))


def _entries(
    path: str, key: str, packages: list[object], lines: Sequence[int | None]
) -> Iterator[Entry]:
    for number, (package, line) in enumerate(zip(packages, lines, strict=True)):
        where = f"{key}[{number}]"
        if not isinstance(package, Mapping):
            raise InputError(path, f"{where}: must be a table", line)
        name = package.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(path, f"{where}: needs a name string", line)
        yield Entry(path, where, line, package, name)


def read_entries(
    entries: Iterable[Entry], read: Callable[[Entry], Pin | None]
) -> tuple[list[Pin], int]:
    """The pins ``read`` makes of the entries, and how many it skipped (returned None for:
    not from an index)."""
    pins: list[Pin] = []
    skipped = 0
    for entry in entries:
        pin = read(entry)
        if pin is None:
            skipped += 1
        else:
            pins.append(pin)
    return pins, skipped


def hashed_files(entry: Entry, raw: object) -> list[LockedFile]:
    """An entry's ``files`` array of ``{file, hash}`` tables (Poetry; PDM)."""
    if not isinstance(raw, list):
        raise entry.fail("files must be an array")
    return [hashed_file(entry.fail, f"files[{i}]", item, entry.line) for i, item in enumerate(raw)]
