"""Reading uv's lock file (``uv.lock``) into pins.

A ``[[package]]`` entry comes from an index when its ``source`` is ``{ registry = URL }``
(uv writes one per index: a project locked from several named indexes names each package's
own); its ``sdist`` and ``wheels`` carry each file's ``url``, ``hash``, ``size`` and
``upload-time``. Other sources (``git``, ``url``, ``path``, ``directory``, ``editable``,
``virtual``: the project itself and its workspace members among them) and registries that are
local directories (uv's ``--find-links``) are not served by an index cache: they are skipped
and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from safe_pip.errors import InputError
from safe_pip.locks.entries import Entry, package_entries, read_entries
from safe_pip.locks.pins import LockedFile, Pin
from safe_pip.locks.tomlfile import basename, split_hash, string_table

#: The ``version`` of uv.lock this reader knows (uv writes 1, with a ``revision`` beside it).
_SUPPORTED_VERSION = 1
_SOURCES = ("registry", "git", "url", "path", "directory", "editable", "virtual")


def is_uv_lock(document: Mapping[str, Any]) -> bool:
    """Whether a parsed TOML document looks like a uv.lock (for files named otherwise)."""
    packages = document.get("package", [])
    return (
        isinstance(document.get("version"), int)
        and "requires-python" in document
        and isinstance(packages, list)
        and all(isinstance(p, Mapping) and "source" in p for p in packages)
    )


def read_uv_lock(path: str, text: str, document: Mapping[str, Any]) -> tuple[list[Pin], int]:
    """The pins of a uv.lock, in file order, and how many packages were skipped (not from an
    index); raises ``InputError`` naming file:line."""
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InputError(path, "not a uv lock file: no integer version")
    if version != _SUPPORTED_VERSION:
        raise InputError(path, f"uv.lock version {version} is not supported (1 is)")
    return read_entries(package_entries(path, text, document, "package"), _package)


def _package(entry: Entry) -> Pin | None:
    package, fail, line = entry.table, entry.fail, entry.line
    source = package.get("source")
    if not isinstance(source, Mapping) or len(source) != 1 or next(iter(source)) not in _SOURCES:
        raise fail(f"source must be a table with one of {', '.join(_SOURCES)}")
    registry = source.get("registry")
    if registry is None:
        return None  # git, url, path, directory, editable, virtual: not from an index
    if not isinstance(registry, str):
        raise fail("source.registry must be a URL or path string")
    if not registry.startswith(("http://", "https://")):
        return None  # a local directory (uv's --find-links): no cache sits before it
    version = entry.version("a package from a registry needs a version string")
    files: list[LockedFile] = []
    wheels = package.get("wheels", [])
    if not isinstance(wheels, list):
        raise fail("wheels must be an array")
    for i, wheel in enumerate(wheels):
        files.append(_file(fail, f"wheels[{i}]", wheel, line))
    sdist = package.get("sdist")
    if sdist is not None:
        files.append(_file(fail, "sdist", sdist, line))
    return entry.pin("uv", version, files, index=registry)


def _file(
    fail: Callable[[str], InputError], where: str, raw: object, line: int | None
) -> LockedFile:
    table = string_table(fail, where, raw, ("url", "path", "filename", "hash", "upload-time"))
    url = table.get("url")
    filename = table.get("filename") or basename(url or table.get("path") or "")
    if not filename:
        raise fail(f"{where} needs a url, path or filename")
    hashes: dict[str, str] = {}
    if "hash" in table:
        pair = split_hash(table["hash"])
        if pair is None:
            raise fail(f"{where}.hash must be 'algorithm:hexdigest'")
        hashes[pair[0]] = pair[1]
    size = table.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise fail(f"{where}.size must be a non-negative integer")
    return LockedFile(
        filename=filename,
        url=url,
        hashes=hashes,
        size=size,
        upload_time=table.get("upload-time"),
        line=line,
    )
