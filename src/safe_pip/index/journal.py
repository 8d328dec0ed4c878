"""The index's journal as data: its entries, which of them change a page, and the summary
that freshness is judged by.

Why a *summary* and not raw journal ids: role, invite and team entries raise a project's
serial without changing (or purging) its page, so a page can stay behind its project's newest
journal id for days (warehouse #12933). A mirror that compared page serials with raw journal
ids was wedged for days (bandersnatch #1416, #1434, #1633). We therefore keep, per project,
only the newest *content-changing* serial (see :func:`is_content_change`), and a page is fresh
when its serial is at least that.

Pure: the XML-RPC reading is in :mod:`safe_pip.authority.changelog`.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from packaging.utils import canonicalize_name

__all__ = [
    "ADD_FILE",
    "CONTENT_ACTIONS",
    "ChangelogEntry",
    "FileEvent",
    "FileEventKind",
    "JournalSummary",
    "entry_from_row",
    "file_event_of",
    "fold_content_changes",
    "is_content_change",
    "is_serial",
    "REMOVE_FILE",
]

#: Journal actions that change what a project's simple page lists, matched against the whole
#: action string (case-insensitive, surrounding blanks ignored).
#:
#: Content-changing: ``create`` (the page comes to exist), ``add <pyver> file <filename>``
#: (a new file), ``remove file <filename>``, ``yank release``, ``unyank release``,
#: ``remove release`` and ``remove project``.
#:
#: Everything else is *not* content-changing, on purpose:
#:
#: * ``new release``: a release without files does not appear on a simple page; its files
#:   arrive as ``add ... file ...`` entries with their own serials.
#: * role, invite and team entries (``add Owner alice``, ``remove Maintainer bob``,
#:   ``invite Owner carol``, ``accepted Owner carol``, ``change Owner dave to Maintainer``,
#:   ``add Maintainer some-team`` ...), docs and description changes, quarantine: they raise
#:   the project's serial without changing or purging its page (warehouse #12933). Counting
#:   them would demand a page serial the index may not serve for days -- exactly how
#:   bandersnatch was wedged (#1416, #1434, #1633).
CONTENT_ACTIONS: tuple[re.Pattern[str], ...] = (
    re.compile(r"create", re.IGNORECASE),
    # ``add <python version> file <filename>``; the python version is one token ("source",
    # "py3", "cp311", "3.6"). Role names are excluded so that a user or team called "file"
    # (``add Owner file ...``) can never pass for an upload.
    re.compile(r"add (?!owner |maintainer )\S+ file \S.*", re.IGNORECASE),
    re.compile(r"remove file \S.*", re.IGNORECASE),
    re.compile(r"yank release", re.IGNORECASE),
    re.compile(r"unyank release", re.IGNORECASE),
    re.compile(r"remove release", re.IGNORECASE),
    re.compile(r"remove project", re.IGNORECASE),
)


def is_content_change(action: str) -> bool:
    """Whether a journal action changes what the project's simple page lists.

    Raw journal ids must not be compared with page serials: role, invite and team entries
    raise a project's serial without touching its page (warehouse #12933), which wedged
    bandersnatch for days (#1416, #1434, #1633). Only the actions in :data:`CONTENT_ACTIONS`
    count.
    """
    text = action.strip()
    return any(pattern.fullmatch(text) for pattern in CONTENT_ACTIONS)


def is_serial(value: object) -> bool:
    """Whether ``value`` is an int that is not ``True``/``False`` (bools are ints in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ChangelogEntry:
    """One journal row: ``(name, version, timestamp, action, serial)``; name normalised."""

    name: str
    version: str | None  # None for project-level entries (create, roles, remove project)
    timestamp: int
    action: str
    serial: int


def entry_from_row(row: object) -> ChangelogEntry:
    """Validate one ``(name, version, timestamp, action, serial)`` row as the index sends it.

    Raises ValueError for anything else: whatever sent it is not a changelog.
    """
    if not isinstance(row, (list, tuple)) or len(row) != 5:
        raise ValueError(f"bad changelog row {row!r:.120}")
    name, version, timestamp, action, serial = row
    if (
        not isinstance(name, str)
        or not name
        or not (version is None or isinstance(version, str))
        or not is_serial(timestamp)
        or not isinstance(action, str)
        or not is_serial(serial)
        or serial < 0
    ):
        raise ValueError(f"bad changelog row {row!r:.120}")
    return ChangelogEntry(canonicalize_name(name), version, timestamp, action, serial)


#: ``add <pyver> file <filename>`` (role names excluded, as in :data:`CONTENT_ACTIONS`).
ADD_FILE = re.compile(r"add (?!owner |maintainer )\S+ file (?P<filename>\S.*)", re.IGNORECASE)
REMOVE_FILE = re.compile(r"remove file (?P<filename>\S.*)", re.IGNORECASE)

FileEventKind = Literal[
    "add", "remove", "yank", "unyank", "remove-release", "remove-project", "quarantine"
]  # fmt: skip
_KINDS: frozenset[FileEventKind] = frozenset(
    ("add", "remove", "yank", "unyank", "remove-release", "remove-project", "quarantine")
)  # fmt: skip


class FileEvent(NamedTuple):
    """One journal entry that changes which files a page lists or how they are marked.

    ``target`` is the filename (``add``, ``remove``), the version as the journal wrote it
    (``yank``, ``unyank``, ``remove-release``) or empty (``remove-project``, ``quarantine``).
    ``quarantine`` stands for any quarantine action: PyPI hides a quarantined project's or
    release's files from its page without a ``remove`` entry, so files added before it may be
    missing from a current page.

    A tuple, as the state file keeps it (``[serial, kind, target]``): a window holds tens of
    thousands of them, read and written on every run that keeps them.
    """

    serial: int
    kind: FileEventKind
    target: str

    def to_json(self) -> list[object]:
        return list(self)

    @classmethod
    def from_json(cls, data: object) -> FileEvent:
        if (
            not isinstance(data, (list, tuple))
            or len(data) != 3
            or type(data[0]) is not int
            or data[1] not in _KINDS
            or type(data[2]) is not str
        ):
            raise ValueError(f"bad file event {data!r:.80}")
        return cls._make(data)


def file_event_of(entry: ChangelogEntry) -> FileEvent | None:
    """The file-level meaning of a journal entry, or None (roles, ``create``, docs...)."""
    action = entry.action.strip()
    if match := ADD_FILE.fullmatch(action):
        return FileEvent(entry.serial, "add", match["filename"].strip())
    if match := REMOVE_FILE.fullmatch(action):
        return FileEvent(entry.serial, "remove", match["filename"].strip())
    kind: FileEventKind | None = {
        "yank release": "yank",
        "unyank release": "unyank",
        "remove release": "remove-release",
        "remove project": "remove-project",
    }.get(action.lower())  # type: ignore[assignment]
    if kind is None:
        return FileEvent(entry.serial, "quarantine", "") if "quarantin" in action.lower() else None
    if kind == "remove-project":
        return FileEvent(entry.serial, kind, "")
    return FileEvent(entry.serial, kind, entry.version or "")


def fold_content_changes(
    entries: Iterable[ChangelogEntry],
    since: int,
    content: dict[str, int],
    removed: set[str],
    files: dict[str, list[FileEvent]] | None = None,
) -> int:
    """Record the content changes of ``entries`` in ``content`` and ``removed``; the new head.

    ``entries`` answer "every entry after ``since``": one at or below it means the journal is
    broken (ValueError). ``content`` maps a project to its newest content-changing serial;
    ``removed`` holds the projects whose newest content change is ``remove project``;
    ``files``, when given, collects each project's :class:`FileEvent` list, oldest first.
    """
    head = since
    for entry in entries:
        if entry.serial <= since:
            raise ValueError(f"asked for serials after {since}, got {entry.serial}")
        head = max(head, entry.serial)
        if files is not None and (event := file_event_of(entry)) is not None:
            files.setdefault(entry.name, []).append(event)
        if is_content_change(entry.action) and entry.serial >= content.get(entry.name, 0):
            content[entry.name] = entry.serial
            if entry.action.strip().lower() == "remove project":
                removed.add(entry.name)
            else:
                removed.discard(entry.name)
    return head


@dataclass(frozen=True)
class JournalSummary:
    """What the journal says about the window of serials ``(low, head]``.

    ``low``: every journal entry with a serial greater than ``low`` is known.
    ``head``: the global serial when the journal was last asked.
    ``content_serials``: normalised project name -> newest content-changing serial in
    ``(low, head]``. A project absent from it had no content change in the window.

    Read-only: ``content_serials`` is stored as a read-only copy.
    """

    low: int
    head: int
    content_serials: Mapping[str, int] = field(default_factory=dict)
    #: projects whose newest content change in the window is ``remove project``: for them a
    #: 404 is the truth; for any other project with a content change it is a stale copy.
    removed: frozenset[str] = frozenset()
    #: each project's file events in the window, oldest first, or None when they were not
    #: kept (they are, for an index whose pages are judged by content: no serials).
    files: Mapping[str, Sequence[FileEvent]] | None = None

    def __post_init__(self) -> None:
        if not (is_serial(self.low) and is_serial(self.head)) or not 0 <= self.low <= self.head:
            raise ValueError(
                f"journal window must be 0 <= low <= head, got {self.low!r}, {self.head!r}"
            )
        clean: dict[str, int] = {}
        for name, serial in self.content_serials.items():
            if not isinstance(name, str) or not name or not is_serial(serial):
                raise ValueError(f"bad content serial entry {name!r}: {serial!r}")
            if not self.low < serial <= self.head:
                raise ValueError(
                    f"content serial {serial} for {name!r} outside ({self.low}, {self.head}]"
                )
            key = canonicalize_name(name)
            clean[key] = max(serial, clean.get(key, serial))
        object.__setattr__(self, "content_serials", MappingProxyType(clean))
        object.__setattr__(
            self, "removed", frozenset(canonicalize_name(n) for n in self.removed) & clean.keys()
        )
        if self.files is not None:
            events: dict[str, tuple[FileEvent, ...]] = {}
            for name, found in self.files.items():
                found = tuple(found)
                serials = [event[0] for event in found]
                # Checked in bulk (a window holds tens of thousands): kept as they are when
                # oldest first without repeats, as the journal gives them.
                ascending = all(map(operator.lt, serials, serials[1:]))
                if serials and not self.low < min(serials) <= max(serials) <= self.head:
                    raise ValueError(f"file event for {name!r} outside ({self.low}, {self.head}]")
                key = canonicalize_name(name)
                if key in events or not ascending:
                    merged = {e.serial: e for e in (*events.get(key, ()), *found)}
                    found = tuple(merged[n] for n in sorted(merged))
                events[key] = found
            object.__setattr__(self, "files", MappingProxyType(events))

    __hash__ = None  # type: ignore[assignment]  # holds a mapping: not hashable

    def required(self, project: str) -> int | None:
        """The newest content-changing serial of ``project`` in the window, or None.

        A page of ``project`` whose serial is lower than this is stale. None means no
        content change is known in ``(low, head]``; whether that proves the page fresh
        depends on :meth:`covers` for the page's serial.
        """
        return self.content_serials.get(canonicalize_name(project))

    def file_events(self, project: str) -> tuple[FileEvent, ...] | None:
        """``project``'s file events in the window, oldest first; None if none were kept."""
        if self.files is None:
            return None
        return tuple(self.files.get(canonicalize_name(project), ()))

    def covers(self, serial: int) -> bool:
        """Whether every journal entry after ``serial`` is known (``serial >= low``).

        For a page with serial ``s`` and no :meth:`required` serial, ``covers(s)`` means the
        journal proves no content change happened after ``s`` (up to ``head``).
        """
        return serial >= self.low

    def merged(self, other: JournalSummary) -> JournalSummary:
        """Combine two summaries of the same index, losing nothing that is still valid.

        When the windows overlap or touch, the union is contiguous, so it is a valid window
        and the per-project maximum is the newest content change in it. Otherwise the newer
        window (higher head) wins: a gap between windows cannot be claimed as known.
        Used when two processes save the journal at once. File events cover only the window
        of the side that kept them: if one side has none, the side with them wins when it is
        at least as new (else the result has none, and the next reader that needs them goes
        cold).
        """
        if (self.files is None) != (other.files is None):
            kept, bare = (self, other) if self.files is not None else (other, self)
            if kept.head >= bare.head:
                return kept
        if self.low <= other.head and other.low <= self.head:
            content = dict(self.content_serials)
            removed = set(self.removed)
            for name, serial in other.content_serials.items():
                if serial >= content.get(name, serial):
                    content[name] = serial
                    if name in other.removed:
                        removed.add(name)
                    else:
                        removed.discard(name)
            files: dict[str, Sequence[FileEvent]] | None = None
            if self.files is not None and other.files is not None:
                # Both windows hold every journal entry in them, so only the events of one
                # side outside the other's window are new to it.
                base, extra = (other, self) if other.head >= self.head else (self, other)
                assert base.files is not None and extra.files is not None  # for mypy
                files = dict(base.files)
                for name, events in extra.files.items():
                    outside = [e for e in events if not base.low < e.serial <= base.head]
                    if outside:
                        files[name] = (*files.get(name, ()), *outside)
            return JournalSummary(
                min(self.low, other.low),
                max(self.head, other.head),
                content,
                frozenset(removed),
                files,
            )
        return self if self.head >= other.head else other

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the store writes it with :func:`json.dumps`)."""
        data: dict[str, Any] = {
            "low": self.low,
            "head": self.head,
            "content_serials": dict(sorted(self.content_serials.items())),
            "removed": sorted(self.removed),
        }
        if self.files is not None:
            # Events are tuples: json writes them as the [serial, kind, target] lists read back.
            data["files"] = dict(sorted(self.files.items()))
        return data

    @classmethod
    def from_json(cls, data: object) -> JournalSummary:
        """Rebuild from :meth:`to_json` output (a dict, or its JSON text).

        Raises ValueError on anything else: the cache is a file on disk and may be damaged.
        """
        if isinstance(data, (str, bytes, bytearray)):
            try:
                data = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"journal summary is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("journal summary must be a JSON object")
        low, head, content = data.get("low"), data.get("head"), data.get("content_serials")
        if not is_serial(low) or not is_serial(head):
            raise ValueError("journal summary needs integer 'low' and 'head'")
        if not isinstance(content, dict):
            raise ValueError("journal summary needs a 'content_serials' object")
        removed = data.get("removed", [])
        if not isinstance(removed, list) or not all(isinstance(n, str) for n in removed):
            raise ValueError("journal summary 'removed' must be a list of names")
        assert isinstance(low, int) and isinstance(head, int)  # for mypy; checked above
        raw_files = data.get("files")
        files: dict[str, list[FileEvent]] | None = None
        if raw_files is not None:
            if not isinstance(raw_files, dict) or not all(
                isinstance(v, (list, tuple)) for v in raw_files.values()
            ):
                raise ValueError("journal summary 'files' must map names to lists")
            files = {n: [FileEvent.from_json(e) for e in v] for n, v in raw_files.items()}
        return cls(low, head, content, frozenset(removed), files)
