"""Which lock file a path is, and its pins: PEP 751 ``pylock.toml``, ``uv.lock``,
``poetry.lock`` and ``pdm.lock``.

A lock is told by its name first (PEP 751's names; ``uv.lock``, ``poetry.lock``,
``pdm.lock`` in any directory), then, for any other name, by its content: a file that parses
as TOML and has the shape one of those tools writes. Anything else is a requirements file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from safe_pip.index.names import is_pylock
from safe_pip.locks.pdmlock import is_pdm_lock, read_pdm_lock
from safe_pip.locks.pins import LockPins
from safe_pip.locks.poetrylock import is_poetry_lock, read_poetry_lock
from safe_pip.locks.pylock import read_pylock_counted
from safe_pip.locks.tomlfile import parse, read_text, try_parse
from safe_pip.locks.uvlock import is_uv_lock, read_uv_lock

_BY_NAME = {"uv.lock": "uv", "poetry.lock": "poetry", "pdm.lock": "pdm"}
#: Files read to tell their kind by content; a bigger one is taken for a requirements file.
_SNIFF_LIMIT = 64 << 20


def lock_kind(path: str) -> str | None:
    """The kind of lock file at ``path``, or None for a requirements file."""
    if is_pylock(path):
        return "pylock"
    kind = _BY_NAME.get(os.path.basename(path))
    if kind is not None:
        return kind
    try:
        if os.path.getsize(path) > _SNIFF_LIMIT:
            return None
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the requirements reader says what is wrong with it
    document = try_parse(text)
    return None if document is None else _kind_of(document)


def _kind_of(document: Mapping[str, Any]) -> str | None:
    if isinstance(document.get("lock-version"), str) and "packages" in document:
        return "pylock"
    if is_poetry_lock(document):
        return "poetry"
    if is_pdm_lock(document):
        return "pdm"
    if is_uv_lock(document):
        return "uv"
    return None


def read_lock(path: str, kind: str) -> LockPins:
    """The pins of a lock file of that kind; ``InputError`` naming file:line if malformed."""
    if kind == "pylock":
        pins, skipped = read_pylock_counted(path)
        return LockPins(kind, pins, skipped)
    text = read_text(path)
    document = parse(path, text)
    if kind == "uv":
        pins, skipped = read_uv_lock(path, text, document)
        return LockPins(kind, pins, skipped)
    if kind == "poetry":
        pins, skipped = read_poetry_lock(path, text, document)
        return LockPins(kind, pins, skipped)
    return read_pdm_lock(path, text, document)
