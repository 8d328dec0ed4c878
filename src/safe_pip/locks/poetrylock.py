"""Reading Poetry's lock file (``poetry.lock``) into pins.

Each ``[[package]]`` names its ``version`` and its release's ``files`` (``{file, hash}``; in
lock-version 1.x they sit in ``[metadata.files]``, by project). A package from a source other
than PyPI carries ``[package.source]``: ``type = "legacy"`` is an index (PEP 503) at ``url``,
so a lock with several sources names each package's own; no ``[package.source]`` means PyPI,
which is checked on the main index pip would use. Sources of type ``git``, ``directory``,
``file`` and ``url`` are not served by an index: skipped and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from safe_pip.errors import InputError
from safe_pip.locks.entries import Entry, hashed_files, package_entries, read_entries
from safe_pip.locks.pins import Pin

_INDEX_TYPES = ("legacy",)
_OTHER_TYPES = ("git", "directory", "file", "url")
#: Poetry lock-version majors this reader knows (1.1 kept files in [metadata.files]).
_SUPPORTED_MAJORS = ("1", "2")


def is_poetry_lock(document: Mapping[str, Any]) -> bool:
    """Whether a parsed TOML document looks like a poetry.lock (for files named otherwise)."""
    metadata = document.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and "lock-version" in metadata
        and "content-hash" in metadata
        and "lock-version" not in document  # a PEP 751 lock has it at the top
    )


def read_poetry_lock(path: str, text: str, document: Mapping[str, Any]) -> tuple[list[Pin], int]:
    """The pins of a poetry.lock, in file order, and how many packages were skipped (not from
    an index); raises ``InputError`` naming file:line."""
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("lock-version"), str):
        raise InputError(path, "not a Poetry lock file: no [metadata] lock-version string")
    version = metadata["lock-version"]
    if version.split(".", 1)[0] not in _SUPPORTED_MAJORS:
        raise InputError(path, f"Poetry lock-version {version!r} is not supported (1.x, 2.x are)")
    old_files = metadata.get("files", {})
    if not isinstance(old_files, Mapping):
        raise InputError(path, "metadata.files must be a table")
    return read_entries(
        package_entries(path, text, document, "package"), lambda e: _package(e, old_files)
    )


def _package(entry: Entry, old_files: Mapping[str, Any]) -> Pin | None:
    package, fail = entry.table, entry.fail
    index: str | None = None
    source = package.get("source")
    if source is not None:
        if not isinstance(source, Mapping) or not isinstance(source.get("type"), str):
            raise fail("source must be a table with a type string")
        kind = source["type"]
        if kind in _OTHER_TYPES:
            return None  # not from an index
        if kind not in _INDEX_TYPES:
            raise fail(f"source.type {kind!r} is not known")
        index = source.get("url")
        if not isinstance(index, str) or not index.startswith(("http://", "https://", "file:")):
            raise fail("source.url must be the index's URL")
    version = entry.version()
    raw_files = package.get("files")
    if raw_files is None:
        raw_files = old_files.get(entry.name, [])
    return entry.pin("poetry", version, hashed_files(entry, raw_files), index=index)
