"""Reading PDM's lock file (``pdm.lock``) into pins.

Each ``[[package]]`` names its ``version`` and ``files`` (``{file, hash}``, or ``{url, hash}``
with PDM's ``static_urls`` strategy). Packages with ``git``, ``path`` or ``url`` (editables
among them) are not served by an index: skipped and counted.

pdm.lock does not say which index a package came from: PDM's sources are in the project's
``pyproject.toml`` (``[[tool.pdm.source]]``), beside the lock. A source whose
``include_packages`` matches a package is that package's index (PDM looks nowhere else); the
others (less those whose ``exclude_packages`` match) are looked at together, as pip looks at
its indexes, with the default index (pip's main index) unless a source named ``pypi``
replaces it. ``find_links`` sources are read like pip's ``--find-links``. ``${VAR}`` in a
source URL is expanded from the environment, and ``${PROJECT_ROOT}`` to the project's
directory, as PDM does.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import canonicalize_name

from safe_pip.errors import InputError
from safe_pip.locks.entries import Entry, hashed_files, package_entries, read_entries
from safe_pip.locks.pins import LockPins, Pin
from safe_pip.locks.tomlfile import entry_lines, parse, read_text

_NOT_FROM_INDEX = ("git", "path", "url")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: PDM lock_version majors this reader knows.
_SUPPORTED_MAJORS = ("4",)


@dataclass(frozen=True)
class PdmSource:
    """One ``[[tool.pdm.source]]``."""

    name: str
    url: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    find_links: bool = False  # type = "find_links": a location, not an index

    def includes(self, project: str) -> bool:
        return any(fnmatch.fnmatch(project, canonicalize_name(p)) for p in self.include)

    def excludes(self, project: str) -> bool:
        return any(fnmatch.fnmatch(project, canonicalize_name(p)) for p in self.exclude)


def is_pdm_lock(document: Mapping[str, Any]) -> bool:
    """Whether a parsed TOML document looks like a pdm.lock (for files named otherwise)."""
    metadata = document.get("metadata")
    return isinstance(metadata, Mapping) and "lock_version" in metadata


def read_pdm_lock(path: str, text: str, document: Mapping[str, Any]) -> LockPins:
    """The pins of a pdm.lock, in file order, how many packages were skipped (not from an
    index), the indexes to look at besides pip's own for pins without one, and PDM's
    find-links locations; raises ``InputError`` naming file:line."""
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("lock_version"), str):
        raise InputError(path, "not a PDM lock file: no [metadata] lock_version string")
    version = metadata["lock_version"]
    if version.split(".", 1)[0] not in _SUPPORTED_MAJORS:
        raise InputError(path, f"PDM lock_version {version!r} is not supported (4.x is)")
    entries = package_entries(path, text, document, "package")
    every = pdm_sources(os.path.join(os.path.dirname(path) or ".", "pyproject.toml"))
    sources = [s for s in every if not s.find_links]
    replaced = next((s for s in sources if s.name == "pypi"), None)
    found, skipped = read_entries(entries, _package)
    pins: list[Pin] = []
    extras: dict[str, None] = {}
    for pin in found:
        only = [s.url for s in sources if s.includes(pin.project)]
        if not only:
            only = [s.url for s in sources if not s.include and not s.excludes(pin.project)]
            if replaced is None:
                only.insert(0, "")  # the default index: pip's main index
        if len(only) == 1:
            pins.append(replace(pin, index=only[0] or None))
        else:
            pins.append(pin)  # several: looked at as pip looks at its extra indexes
            extras.update(dict.fromkeys(u for u in only if u))
    locations = tuple(s.url for s in every if s.find_links)
    return LockPins("pdm", pins, skipped, tuple(extras), locations)


def pdm_sources(pyproject: str) -> list[PdmSource]:
    """The sources of the project's ``pyproject.toml`` (none when there is no file)."""
    if not os.path.isfile(pyproject):
        return []
    text = read_text(pyproject)
    table: Any = parse(pyproject, text).get("tool", {})
    table = table.get("pdm", {}) if isinstance(table, Mapping) else {}
    raw = table.get("source", []) if isinstance(table, Mapping) else []
    if not isinstance(raw, list):
        raise InputError(pyproject, "tool.pdm.source must be an array of tables")
    root = os.path.dirname(os.path.abspath(pyproject))
    variables = {**os.environ, "PROJECT_ROOT": root}
    sources = []
    lines = entry_lines(text, "tool.pdm.source", raw)
    for number, (source, line) in enumerate(zip(raw, lines, strict=True)):
        where = f"tool.pdm.source[{number}]"
        if not isinstance(source, Mapping):
            raise InputError(pyproject, f"{where} must be a table", line)
        kind = source.get("type", "index")
        if kind not in ("index", "find_links"):
            raise InputError(pyproject, f"{where}.type {kind!r} is not index or find_links", line)
        name, url = source.get("name"), source.get("url")
        if not isinstance(name, str) or not isinstance(url, str):
            raise InputError(pyproject, f"{where} needs a name and a url string", line)
        patterns = []
        for key in ("include_packages", "exclude_packages"):
            value = source.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(pyproject, f"{where}.{key} must be an array of strings", line)
            patterns.append(tuple(value))
        expanded = _ENV_RE.sub(lambda m: variables.get(m.group(1), m.group(0)), url)
        if kind == "find_links" and "://" not in expanded:
            expanded = os.path.normpath(os.path.join(root, expanded))  # as in PDM
        sources.append(
            PdmSource(name, expanded, patterns[0], patterns[1], find_links=kind == "find_links")
        )
    return sources


def _package(entry: Entry) -> Pin | None:
    if any(key in entry.table for key in _NOT_FROM_INDEX):
        return None  # git, path, url (editables among them): not from an index
    version = entry.version()
    return entry.pin("pdm", version, hashed_files(entry, entry.table.get("files", [])))
