"""Reading PEP 751 lock files (``pylock.toml``, ``pylock.<name>.toml``) into pins.

Only what ``safe-pip check`` compares with an index is read: each package's ``name``,
``version`` and ``index``, and its ``wheels`` and ``sdist`` with their ``name``, ``url``,
``hashes``, ``size`` and ``upload-time``. Packages locked from a VCS, a directory or an
archive URL (``vcs``, ``directory``, ``archive``) are not served by an index and are skipped.

TOML is parsed by ``tomllib`` (Python 3.11+) or its backport ``tomli`` on 3.10, not by hand:
a lock file is input a user trusts, and a well-kept parser gets the corner cases right.
Errors name the file and, where the parser or the layout tells it, the line.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from safe_pip.errors import InputError
from safe_pip.locks.pins import LockedFile, Pin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_HEADER_RE = re.compile(r"^[ \t]*\[\[[ \t]*packages[ \t]*\]\]", re.MULTILINE)
_AT_LINE_RE = re.compile(r"at line (\d+)")
_SUPPORTED_MAJOR = 1


def read_pylock(path: str) -> list[Pin]:
    """The pins of one lock file, in file order; raises ``InputError`` naming file:line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text: {exc.reason}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Both parsers say "(at line L, column C)" or "(at end of document)".
        match = _AT_LINE_RE.search(str(exc))
        line = int(match.group(1)) if match else None
        if line is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        message = _AT_LINE_RE.sub("", str(exc)).replace("(, column", "(column").strip()
        raise InputError(path, f"not valid TOML: {message}", line) from None
    version = document.get("lock-version")
    if not isinstance(version, str):
        raise InputError(path, "not a PEP 751 lock file: no lock-version string")
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != _SUPPORTED_MAJOR:
        raise InputError(path, f"lock-version {version!r} is not supported (1.x is)")
    packages = document.get("packages", [])
    if not isinstance(packages, list):
        raise InputError(path, "packages must be an array of tables")
    headers = [text.count("\n", 0, m.start()) + 1 for m in _HEADER_RE.finditer(text)]
    lines: list[int | None] = (
        list(headers) if len(headers) == len(packages) else [None] * len(packages)
    )
    pins: list[Pin] = []
    for number, (package, line) in enumerate(zip(packages, lines, strict=True)):
        pin = _package(path, number, package, line)
        if pin is not None:
            pins.append(pin)
    return pins


def _package(path: str, number: int, package: object, line: int | None) -> Pin | None:
    where = f"packages[{number}]"

    def fail(message: str) -> InputError:
        return InputError(path, f"{where}: {message}", line)

    if not isinstance(package, Mapping):
        raise fail("must be a table")
    name = package.get("name")
    if not isinstance(name, str) or not name:
        raise fail("needs a name string")
    if any(key in package for key in ("vcs", "directory", "archive")):
        return None  # not served by an index
    version = package.get("version")
    if version is not None:
        if not isinstance(version, str):
            raise fail("version must be a string")
        try:
            Version(version)
        except InvalidVersion:
            raise fail(f"version {version!r} is not a valid version (PEP 440)") from None
    index = package.get("index")
    if index is not None and not isinstance(index, str):
        raise fail("index must be a URL string")
    files: list[LockedFile] = []
    wheels = package.get("wheels", [])
    if not isinstance(wheels, list):
        raise fail("wheels must be an array of tables")
    for i, wheel in enumerate(wheels):
        files.append(_file(path, f"{where}.wheels[{i}]", wheel, line))
    sdist = package.get("sdist")
    if sdist is not None:
        files.append(_file(path, f"{where}.sdist", sdist, line))
    return Pin(
        project=canonicalize_name(name),
        version=version,
        file=path,
        line=line,
        source="pylock",
        requested=f"{name}=={version}" if version else name,
        files=tuple(files),
        index=index,
    )


def _file(path: str, where: str, raw: Any, line: int | None) -> LockedFile:
    def fail(message: str) -> InputError:
        return InputError(path, f"{where}: {message}", line)

    if not isinstance(raw, Mapping):
        raise fail("must be a table")
    url, local = raw.get("url"), raw.get("path")
    for key, value in (("url", url), ("path", local), ("name", raw.get("name"))):
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} must be a string")
    filename = raw.get("name") or _basename(url or local or "")
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


def _basename(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
