"""Reading PEP 751 lock files (``pylock.toml``, ``pylock.<name>.toml``) into pins.

Only what ``safe-pip check`` compares with an index is read: each package's ``name``,
``version`` and ``index``, and its ``wheels`` and ``sdist`` with their ``name``, ``url``,
``hashes``, ``size`` and ``upload-time``. Packages locked from a VCS, a directory or an
archive URL (``vcs``, ``directory``, ``archive``) are not served by an index and are skipped.

TOML is parsed by a real parser (``locks.tomlfile``). Errors name the file and, where the
parser or the layout tells it, the line.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from safe_pip.errors import InputError
from safe_pip.locks.entries import Entry, package_entries, read_entries
from safe_pip.locks.pins import LockedFile, Pin
from safe_pip.locks.tomlfile import basename, parse, read_text

_SUPPORTED_MAJOR = 1


def read_pylock(path: str) -> list[Pin]:
    """The pins of one lock file, in file order; raises ``InputError`` naming file:line."""
    return read_pylock_counted(path)[0]


def read_pylock_counted(path: str) -> tuple[list[Pin], int]:
    """The pins of one lock file, in file order, and how many packages were skipped (``vcs``,
    ``directory``, ``archive``: not from an index); raises ``InputError`` naming file:line."""
    text = read_text(path)
    document = parse(path, text)
    version = document.get("lock-version")
    if not isinstance(version, str):
        raise InputError(path, "not a PEP 751 lock file: no lock-version string")
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != _SUPPORTED_MAJOR:
        raise InputError(path, f"lock-version {version!r} is not supported (1.x is)")
    return read_entries(package_entries(path, text, document, "packages"), _package)


def _package(entry: Entry) -> Pin | None:
    package, fail, where = entry.table, entry.fail, entry.where
    if any(key in package for key in ("vcs", "directory", "archive")):
        return None  # not served by an index
    version = None
    if package.get("version") is not None:
        version = entry.version("version must be a string")
    index = package.get("index")
    if index is not None and not isinstance(index, str):
        raise fail("index must be a URL string")
    files: list[LockedFile] = []
    wheels = package.get("wheels", [])
    if not isinstance(wheels, list):
        raise fail("wheels must be an array of tables")
    for i, wheel in enumerate(wheels):
        files.append(_file(entry.path, f"{where}.wheels[{i}]", wheel, entry.line))
    sdist = package.get("sdist")
    if sdist is not None:
        files.append(_file(entry.path, f"{where}.sdist", sdist, entry.line))
    return entry.pin("pylock", version, files, index=index)


def _file(path: str, where: str, raw: Any, line: int | None) -> LockedFile:
    def fail(message: str) -> InputError:
        return InputError(path, f"{where}: {message}", line)

    if not isinstance(raw, Mapping):
        raise fail("must be a table")
    url, local = raw.get("url"), raw.get("path")
    for key, value in (("url", url), ("path", local), ("name", raw.get("name"))):
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} must be a string")
    filename = raw.get("name") or basename(url or local or "")
    if not filename:
        raise fail("needs a name, url or path")
    hashes = raw.get("hashes")
    if not isinstance(hashes, Mapping) or not hashes:
        raise fail("needs a hashes table (PEP 751 requires one)")
    for algo, digest in hashes.items():
        if not isinstance(digest, str):
            raise fail(f"hashes.{algo} must be a string")
    size = raw.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise fail("size must be a non-negative integer")
    upload = raw.get("upload-time")
    if upload is not None and not isinstance(upload, (datetime.datetime, str)):
        raise fail("upload-time must be a datetime")
    return LockedFile(
        filename=filename,
        url=url,
        hashes={str(k).lower(): v.lower() for k, v in hashes.items()},
        size=size,
        upload_time=upload.isoformat() if isinstance(upload, datetime.datetime) else upload,
        line=line,
    )
