"""Lock files in TOML: reading one with a real parser, and finding the line of each entry.

TOML is parsed by ``tomllib`` (Python 3.11+) or its backport ``tomli`` on 3.10, not by hand:
a lock file is input a user trusts, and a well-kept parser gets the corner cases right.
Neither parser tells where a table starts, so the line of each ``[[package]]`` entry is found
by a plain scan for its header lines, accepted only when the scan and the parser agree on the
number of entries and on each entry's ``name``; otherwise findings carry no line rather than a
wrong one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from packaging.utils import canonicalize_name

from safe_pip.errors import InputError
from safe_pip.locks.pins import LockedFile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_AT_LINE_RE = re.compile(r"at line (\d+)")
_NAME_RE = re.compile(r"""^[ \t]*name[ \t]*=[ \t]*(?:"([^"\\]*)"|'([^']*)')""", re.MULTILINE)


def read_text(path: str) -> str:
    """The file's text; ``InputError`` naming it when it cannot be read or is not UTF-8."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text: {exc.reason}") from None


def parse(path: str, text: str) -> dict[str, Any]:
    """The TOML document; ``InputError`` naming file:line when it is not valid TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Both parsers say "(at line L, column C)" or "(at end of document)".
        match = _AT_LINE_RE.search(str(exc))
        line = int(match.group(1)) if match else None
        if line is None and "end of document" in str(exc):
            line = max(1, len(text.splitlines()))
        message = _AT_LINE_RE.sub("", str(exc)).replace("(, column", "(column").strip()
        raise InputError(path, f"not valid TOML: {message}", line) from None


def try_parse(text: str) -> dict[str, Any] | None:
    """The TOML document, or None when the text is not TOML (to tell a lock by its content)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


def entry_lines(text: str, key: str, entries: Sequence[object]) -> list[int | None]:
    """The line of the ``[[key]]`` header of each entry of the array of tables ``key``.

    The headers found by a line scan must be as many as the parsed entries, and the first
    ``name = "…"`` after each header must name the parsed entry (a header inside a multi-line
    string would shift them); otherwise every line is None.
    """
    header = re.compile(rf"^[ \t]*\[\[[ \t]*{re.escape(key)}[ \t]*\]\][ \t]*(?:#.*)?$", re.M)
    starts = [m.start() for m in header.finditer(text)]
    if len(starts) != len(entries):
        return [None] * len(entries)
    lines: list[int | None] = []
    for number, (start, entry) in enumerate(zip(starts, entries, strict=True)):
        end = starts[number + 1] if number + 1 < len(starts) else len(text)
        match = _NAME_RE.search(text, start, end)
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if isinstance(name, str) and (
            match is None
            or canonicalize_name(match.group(1) or match.group(2) or "") != canonicalize_name(name)
        ):
            return [None] * len(entries)
        lines.append(text.count("\n", 0, start) + 1)
    return lines


def split_hash(value: object) -> tuple[str, str] | None:
    """``("sha256", "abc…")`` from the ``"sha256:abc…"`` uv, Poetry and PDM write; None if
    the value is not in that form."""
    if not isinstance(value, str):
        return None
    algo, sep, digest = value.partition(":")
    if not sep or not algo or not digest:
        return None
    return algo.lower(), digest.lower()


def hashed_file(
    fail: Callable[[str], InputError], where: str, raw: object, line: int | None
) -> LockedFile:
    """One ``{file = NAME, hash = "algo:hex"}`` entry (Poetry; PDM, which may write ``url``
    instead of ``file``)."""
    table = string_table(fail, where, raw, ("file", "url", "hash"))
    url = table.get("url")
    filename = table.get("file") or basename(url or "")
    if not filename:
        raise fail(f"{where} needs a file name or url")
    pair = split_hash(table.get("hash"))
    if pair is None:
        raise fail(f"{where} needs a hash 'algorithm:hexdigest'")
    hashes = {pair[0]: pair[1]}
    return LockedFile(filename, url, hashes, size=None, upload_time=None, line=line)


def string_table(
    fail: Callable[[str], InputError], where: str, raw: object, keys: tuple[str, ...]
) -> Mapping[str, Any]:
    """``raw`` as a table whose ``keys``, where present, are strings (a file entry of uv,
    Poetry or PDM)."""
    if not isinstance(raw, Mapping):
        raise fail(f"{where} must be a table")
    for key in keys:
        if key in raw and not isinstance(raw[key], str):
            raise fail(f"{where}.{key} must be a string")
    return raw


def basename(url: str) -> str:
    """The file name at the end of a URL or path."""
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
