"""The index state a lock was made from, kept in pylock.toml's ``[tool.safe-pip]`` table.

Why: no installer records which state of the index a lock was resolved against, so a lock
cannot say "the index has moved back" on another machine. A PEP 751 lock may carry a
``[tool.<name>]`` table for the tool that wrote it; safe-pip writes there the index URL(s)
(credentials never: locks travel in git), the global serial the resolution was proven against
(the changelog's head), each locked project's serial, and the ``--as-of`` point if one was
used. Every machine of a CI fleet that installs the lock through safe-pip then refuses (exit
75) a view older than those serials: the no-rollback guarantee without shared state.

The table looks like this (an array of tables, one per index)::

    [tool.safe-pip]
    format = 1
    as-of = "2026-01-31T12:00:00Z"   # only when --as-of was used

    [[tool.safe-pip.indexes]]
    url = "https://index.example/simple/"
    serial = 1043                    # the changelog's head, when a changelog was asked

    [tool.safe-pip.indexes.projects]
    alpha = 1041

It is written by hand (no TOML writer dependency) from values whose form is checked, and
read with ``tomllib`` (``tomli`` before Python 3.11). Recording it after ``pip lock`` and
enforcing it before an install need the guard: ``locks.enforce`` does both, so that reading
a lock (which the runner does before pip starts) does not load the guard.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from safe_pip.errors import InputError, UsageError
from safe_pip.index.asof import AsOf, parse_as_of
from safe_pip.index.names import canonical_name, is_pylock
from safe_pip.net.urls import strip_credentials

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "LockState",
    "LockedIndex",
    "as_of_of_locks",
    "lock_inputs",
    "lock_state",
    "locked_projects",
    "read_lock_state",
    "render_lock_table",
    "write_lock_state",
]

#: The version of the ``[tool.safe-pip]`` table this module writes and reads.
FORMAT = 1
TOOL = "safe-pip"

_OUR_HEADER = re.compile(r"\s*\[\[?\s*tool\s*\.\s*(?:\"safe-pip\"|safe-pip)\s*(?:[.\]])")
_ANY_HEADER = re.compile(r"\s*\[")


@dataclass(frozen=True)
class LockedIndex:
    """One index as the lock saw it."""

    url: str  # no credentials
    serial: int | None = None  # the global serial the resolution was proven against
    projects: Mapping[str, int] = field(default_factory=dict)  # normalised name -> serial


@dataclass(frozen=True)
class LockState:
    """What ``[tool.safe-pip]`` says: the indexes and the ``--as-of`` point, if any."""

    indexes: tuple[LockedIndex, ...] = ()
    as_of: AsOf | None = None

    def index(self, url: str) -> LockedIndex | None:
        """The entry for ``url`` (compared without credentials, case or trailing slash)."""
        wanted = _same(url)
        for entry in self.indexes:
            if _same(entry.url) == wanted:
                return entry
        return None


def _same(url: str) -> str:
    return strip_credentials(url).rstrip("/").lower()


# -------------------------------------------------------------------------------- reading


def _load(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the lock: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8: {exc.reason}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not TOML: {exc}") from None


def read_lock_state(path: str) -> LockState | None:
    """The ``[tool.safe-pip]`` table of a lock, or None when it has none.

    For ``safe-pip check pylock.toml`` and the runner. Raises ``InputError`` (exit 2) for a
    lock that cannot be read or a table that is not what safe-pip writes.
    """
    table = _load(path).get("tool", {}).get(TOOL)
    if table is None:
        return None
    where = f"[tool.{TOOL}]"

    def bad(message: str) -> InputError:
        return InputError(path, f"{where}: {message}")

    if not isinstance(table, dict):
        raise bad("not a table")
    if table.get("format") != FORMAT:
        raise bad(f"format {table.get('format')!r} is not one this safe-pip reads ({FORMAT})")
    as_of: AsOf | None = None
    raw = table.get("as-of")
    if isinstance(raw, datetime):  # a TOML datetime, if someone wrote one by hand
        raw = raw.isoformat()
    if raw is not None:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise bad(f"as-of must be a serial or an ISO 8601 string, not {raw!r}")
        try:
            as_of = parse_as_of(str(raw), f"{path}: {where} as-of")
        except UsageError as exc:
            raise InputError(path, str(exc).split(": ", 1)[-1]) from None
    indexes = []
    for number, item in enumerate(table.get("indexes", [])):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            raise bad(f"indexes[{number}] needs a url")
        serial = item.get("serial")
        if serial is not None and not _serial(serial):
            raise bad(f"indexes[{number}].serial is not a serial: {serial!r}")
        projects = item.get("projects", {})
        if not isinstance(projects, dict):
            raise bad(f"indexes[{number}].projects is not a table")
        clean: dict[str, int] = {}
        for name, value in projects.items():
            if not _serial(value):
                raise bad(f"indexes[{number}].projects.{name} is not a serial: {value!r}")
            key = canonical_name(name)
            clean[key] = max(value, clean.get(key, value))
        indexes.append(LockedIndex(strip_credentials(item["url"]), serial, clean))
    return LockState(tuple(indexes), as_of)


def _serial(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def locked_projects(path: str) -> set[str]:
    """Normalised names of the ``[[packages]]`` of a lock."""
    packages = _load(path).get("packages", [])
    if not isinstance(packages, list):
        raise InputError(path, "packages is not an array of tables")
    return {
        canonical_name(p["name"])
        for p in packages
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }


# -------------------------------------------------------------------------------- writing


def _string(value: str) -> str:
    """A TOML basic string (escapes as TOML 1.0 requires)."""
    out = ['"']
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _key(name: str) -> str:
    """A bare key when the name allows one (normalised project names always do)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _string(name)


def render_lock_table(state: LockState) -> str:
    """The ``[tool.safe-pip]`` table as TOML text (see the module docstring)."""
    lines = [
        f"[tool.{TOOL}]",
        "# Written by safe-pip: the index state this lock was resolved against. Installing it",
        "# through safe-pip refuses a view of the index older than these serials.",
        f"format = {FORMAT}",
    ]
    if state.as_of is not None:
        point = state.as_of
        value = str(point.serial) if point.serial is not None else _string(str(point))
        lines.append(f"as-of = {value}")
    for index in state.indexes:
        lines += ["", f"[[tool.{TOOL}.indexes]]", f"url = {_string(strip_credentials(index.url))}"]
        if index.serial is not None:
            lines.append(f"serial = {int(index.serial)}")
        if index.projects:
            lines += ["", f"[tool.{TOOL}.indexes.projects]"]
            lines += [f"{_key(n)} = {int(s)}" for n, s in sorted(index.projects.items())]
    return "\n".join(lines) + "\n"


def _without_our_table(text: str) -> str:
    """``text`` with any ``[tool.safe-pip…]`` sections removed (a lock written again)."""
    kept: list[str] = []
    ours = False
    for line in text.splitlines(keepends=True):
        if _ANY_HEADER.match(line):
            ours = _OUR_HEADER.match(line) is not None
        if not ours:
            kept.append(line)
    return "".join(kept)


def write_lock_state(path: str, state: LockState) -> None:
    """Append (or replace) the ``[tool.safe-pip]`` table of the lock at ``path``, atomically.

    The result is parsed back before it replaces the file: a lock safe-pip cannot read again
    is never written.
    """
    original = Path(path).read_text(encoding="utf-8")
    body = _without_our_table(original).rstrip("\n")
    text = body + "\n\n" + render_lock_table(state)
    try:
        parsed = tomllib.loads(text)  # fails if the table collides with the lock's own content
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: could not add [tool.{TOOL}] to the lock: {exc}") from None
    if parsed.get("tool", {}).get(TOOL, {}).get("format") != FORMAT:
        raise UsageError(f"{path}: could not add [tool.{TOOL}] to the lock")
    tmp = f"{path}.safe-pip-{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def lock_state(
    indexes: Iterable[tuple[str, int | None, Mapping[str, int]]],
    locked: set[str],
    as_of: AsOf | None,
) -> LockState:
    """The state to record: per index (url, global serial, serials seen this run), keeping the
    serials of the locked projects only."""
    result = []
    for url, serial, seen in indexes:
        projects: dict[str, int] = {}
        for name, serial in seen.items():
            key = canonical_name(name)
            if key in locked:
                projects[key] = max(serial, projects.get(key, serial))
        if projects or serial is not None:
            result.append(LockedIndex(strip_credentials(url), serial, projects))
    return LockState(tuple(result), as_of)


def lock_inputs(values: Iterable[str]) -> list[tuple[str, LockState]]:
    """The pylock files among pip's ``-r`` values that carry a ``[tool.safe-pip]`` table.

    Extras selectors (``pylock.toml[dev]``) are dropped; locks given by URL are left to pip.
    """
    found = []
    for value in values:
        if "://" in value or not is_pylock(value, extras=True):
            continue
        path = value.split("[", 1)[0] if value.endswith("]") else value
        state = read_lock_state(path)
        if state is not None:
            found.append((path, state))
    return found


def as_of_of_locks(locks: Sequence[tuple[str, LockState]]) -> AsOf | None:
    """The ``--as-of`` point the locks were made at (they must agree), or None."""
    points = {(str(s.as_of), path) for path, s in locks if s.as_of is not None}
    distinct = {point for point, _ in points}
    if len(distinct) > 1:
        shown = ", ".join(f"{path}: {point}" for point, path in sorted(points))
        raise UsageError(f"the locks were made at different --as-of points ({shown})")
    for _path, state in locks:
        if state.as_of is not None:
            return state.as_of
    return None
