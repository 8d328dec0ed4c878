"""Byte ranges of a verified file (RFC 9110 14): what a ``Range`` header asks for, and copying it.

uv reads a wheel's metadata with ranges where an index has no PEP 658 files; the guard cuts them
from the copy it downloaded in full and verified, never from bytes in transit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

#: More ranges than this in one request is not a client reading a zip's directory: the
#: header is ignored and the whole file sent (RFC 9110 14.2 allows it), so a request cannot
#: make the guard write thousands of part headers.
MAX_RANGES = 64


def parse_range(value: str) -> list[tuple[int | None, int | None]] | None:
    """``bytes=`` range specs as (first, last) with None for an open end; None if malformed.

    ``(first, None)`` is ``first-``, ``(None, n)`` the suffix ``-n``. Digits are ASCII only.
    """
    unit, sep, rest = value.partition("=")
    if not sep or unit.strip(" \t").lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for item in rest.split(","):
        item = item.strip(" \t")
        if not item:
            continue  # RFC 9110 5.6.1: empty list elements are allowed and ignored
        first, dash, last = item.partition("-")
        if not dash or not ascii_digits(first or "0") or not ascii_digits(last or "0"):
            return None
        if not first and not last:
            return None
        if first and last and int(last) < int(first):
            return None  # invalid range-spec: the whole header is ignored
        specs.append((int(first) if first else None, int(last) if last else None))
    if not specs or len(specs) > MAX_RANGES:
        return None
    return specs


def satisfiable(specs: list[tuple[int | None, int | None]], size: int) -> list[tuple[int, int]]:
    """The specs that select at least one byte of a ``size``-byte file, as inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:
            assert last is not None
            if last == 0 or size == 0:
                continue
            ranges.append((max(0, size - last), size - 1))
        elif first < size:
            ranges.append((first, size - 1 if last is None else min(last, size - 1)))
    return ranges


def ascii_digits(text: str) -> bool:
    """Only 0-9: ``str.isdigit`` also takes digits such as "²", which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def copy_range(source: IO[bytes], write: Callable[[bytes], object], first: int, last: int) -> None:
    """Write bytes ``first`` to ``last`` (inclusive) of ``source``."""
    source.seek(first)
    left = last - first + 1
    while left > 0:
        chunk = source.read(min(256 * 1024, left))
        if not chunk:
            raise OSError("verified file shorter than its recorded size")
        write(chunk)
        left -= len(chunk)

