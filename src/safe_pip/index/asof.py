"""``--as-of SERIAL|DATETIME``: every index page served as it stood at one point of its history.

Why: freshness makes an install see the newest state; repeatability needs the same state
twice. pip 26's ``--uploaded-prior-to`` and uv's ``--exclude-newer`` filter by PEP 700
``upload-time`` only: they cannot undo a yank made after the point, and pip errors on files
without an upload time while uv drops them. The index's journal (the changelog) knows more:
every ``add <pyver> file <filename>``, ``yank release``, ``unyank release`` and ``remove …``
after the point, with its serial and timestamp.

How: one ``changelog_since_serial(point)`` read, paged until the head, gives every
file-level entry after the point for every project at once: the cost is bounded by the
number of journal entries after the point, never by the number of projects (the index allows
about 3,600 XML-RPC calls an hour). A DATETIME is turned into a serial by
bisection over the journal's timestamps (about log2(serial / page) calls). Then, per page:

* files added after the point are removed;
* a release whose first yank entry after the point is ``yank release`` was not yanked at the
  point (the yank is undone); one whose first is ``unyank release`` was yanked (re-yanked,
  the reason is not in the journal); yanks and removals before the point are kept;
* files removed after the point cannot be put back: the page no longer lists them (and with
  them their hashes). They are named in one warning line, and ``--strict`` refuses the view,
  because it is not the view as of the point.

Without a changelog, a DATETIME falls back to PEP 700 ``upload-time`` (JSON pages), and yanks
cannot be undone (said once per index). A file whose age cannot be established (no upload
time, a SERIAL on an index without a readable journal) is refused under ``--strict`` and
dropped with a warning otherwise. A page whose serial is at most the point is shown as is:
nothing changed on it since.

A point after the index's newest serial is in the future of the view: the changelog is asked
again until ``--max-wait`` is spent, then the view is refused as stale (exit 75).

This module is pure (the point, the journal folded by project, the page at the point, and the
bisection given a journal reader); :mod:`safe_pip.guard.asofview` does the reading for the
guard.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Literal

from packaging.utils import (
    canonicalize_name,
)
from packaging.version import InvalidVersion, Version

from safe_pip.errors import AuthorityError, UsageError
from safe_pip.index.journal import ADD_FILE, REMOVE_FILE, ChangelogEntry
from safe_pip.index.pages import DistFile, ProjectPage
from safe_pip.index.release import version_of

__all__ = [
    "AsOf",
    "JournalAfter",
    "PageAtPoint",
    "ProjectHistory",
    "find_point",
    "fold_journal",
    "page_as_of",
    "parse_as_of",
]

_DIGITS = re.compile(r"[0-9]+")
#: Bisection never needs more than this many calls (2**64 serials); a guard against a journal
#: whose timestamps go backwards making it loop.
_MAX_BISECT_CALLS = 64


# ------------------------------------------------------------------------------- the point


@dataclass(frozen=True)
class AsOf:
    """A point in an index's history: a journal serial, or a moment (UTC)."""

    serial: int | None = None
    moment: datetime | None = None  # timezone-aware, UTC

    def __post_init__(self) -> None:
        if (self.serial is None) == (self.moment is None):
            raise ValueError("an as-of point is a serial or a moment, not both or neither")

    def __str__(self) -> str:
        if self.serial is not None:
            return str(self.serial)
        assert self.moment is not None
        return self.moment.isoformat().replace("+00:00", "Z")


def parse_as_of(text: str, where: str = "--as-of") -> AsOf:
    """A serial (digits) or an ISO 8601 date or datetime; no offset means UTC.

    UTC, not local time as pip's ``--uploaded-prior-to`` takes it: a lock made on one machine
    must name the same point on every machine of a fleet, whatever its time zone.
    """
    value = text.strip()
    if _DIGITS.fullmatch(value):
        return AsOf(serial=int(value))
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        if len(iso) == 10:
            day = date.fromisoformat(iso)
            moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(
            f"{where}: expected a serial or an ISO 8601 date/datetime "
            f"(2026-01-31T12:00:00Z), not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return AsOf(moment=moment.astimezone(timezone.utc))


# ---------------------------------------------------------------------- the journal after it


@dataclass
class ProjectHistory:
    """One project's content entries after the point (what must be undone)."""

    added: dict[str, int] = field(default_factory=dict)  # filename -> serial
    removed_files: dict[str, int] = field(default_factory=dict)
    first_yank: dict[str, str] = field(default_factory=dict)  # version -> "yank" | "unyank"
    new_releases: set[str] = field(default_factory=set)
    removed_releases: set[str] = field(default_factory=set)
    created: bool = False
    removed_project: bool = False


@dataclass(frozen=True)
class JournalAfter:
    """Every content entry in ``(point, head]``, by normalised project name."""

    point: int
    head: int
    projects: Mapping[str, ProjectHistory]

    def history(self, project: str) -> ProjectHistory:
        return self.projects.get(canonicalize_name(project)) or ProjectHistory()


def _version_key(version: str | None) -> str:
    """Compare versions as the index does: normalised (PEP 440), else as written."""
    if version is None:
        return ""
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def fold_journal(
    point: int, entries: Iterable[ChangelogEntry], into: dict[str, ProjectHistory] | None = None
) -> dict[str, ProjectHistory]:
    """Group the content entries after ``point`` by project (pure; entries oldest first)."""
    projects = {} if into is None else into
    for entry in entries:
        if entry.serial <= point:
            continue
        action = entry.action.strip()
        history = projects.setdefault(entry.name, ProjectHistory())
        version = _version_key(entry.version)
        lowered = action.lower()
        if match := ADD_FILE.fullmatch(action):
            history.added[match["filename"].strip()] = entry.serial
        elif match := REMOVE_FILE.fullmatch(action):
            history.removed_files[match["filename"].strip()] = entry.serial
        elif lowered in ("yank release", "unyank release"):
            history.first_yank.setdefault(version, lowered.split()[0])
        elif lowered == "new release":
            history.new_releases.add(version)
        elif lowered == "remove release":
            history.removed_releases.add(version)
        elif lowered == "create":
            history.created = True
        elif lowered == "remove project":
            history.removed_project = True
    return projects


# ------------------------------------------------------------------- the page at the point

Basis = Literal["journal", "upload-time", "serial-only", "none"]


@dataclass(frozen=True)
class PageAtPoint:
    """A page as it stood at the point, and what could not be made so."""

    page: ProjectPage | None
    dropped: tuple[str, ...] = ()  # files added after the point
    unknown: tuple[str, ...] = ()  # files whose age cannot be established
    lost: tuple[str, ...] = ()  # files/releases removed after the point (cannot be restored)
    unyanked: tuple[str, ...] = ()  # versions whose yank after the point was undone
    reyanked: tuple[str, ...] = ()  # versions yanked at the point but unyanked since


def _upload_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def page_as_of(
    page: ProjectPage | None,
    *,
    serial: int | None,
    basis: Basis,
    point_serial: int | None = None,
    moment: datetime | None = None,
    history: ProjectHistory | None = None,
) -> PageAtPoint:
    """The page as it stood at the point (pure).

    ``basis`` says what is known: ``journal`` (``history`` holds every content entry after
    ``point_serial``), ``upload-time`` (only PEP 700 times, compared with ``moment``),
    ``serial-only`` (the point is a serial of this index but its journal is unreadable) or
    ``none`` (nothing places this index's files in time). ``serial`` is the page's own.
    """
    if basis == "journal":
        assert history is not None
        return _by_journal(page, history)
    if page is None:
        return PageAtPoint(None)
    unchanged = serial is not None and point_serial is not None and serial <= point_serial
    if basis == "serial-only" and unchanged:
        return PageAtPoint(page)
    kept: list[DistFile] = []
    dropped: list[str] = []
    unknown: list[str] = []
    for dist in page.files:
        uploaded = _upload_moment(dist.upload_time) if basis == "upload-time" else None
        if uploaded is None or moment is None:
            unknown.append(dist.filename)
        elif uploaded > moment:
            dropped.append(dist.filename)
        else:
            kept.append(dist)
    return PageAtPoint(
        _with_files(page, kept, removed_versions=set()),
        dropped=tuple(dropped),
        unknown=tuple(unknown),
    )


def _by_journal(page: ProjectPage | None, history: ProjectHistory) -> PageAtPoint:
    # Lost: gone from the page since the point, though there at it (a stale page that still
    # lists a removed file keeps it, and loses nothing).
    listed = {f.filename for f in page.files} if page is not None else set()
    listed_versions = {version_of(name) for name in listed}
    lost = [f for f in history.removed_files if f not in history.added and f not in listed]
    lost += [
        f"release {v}"
        for v in sorted(history.removed_releases)
        if v not in history.new_releases and v not in listed_versions
    ]
    if history.removed_project and not history.created and page is None:
        lost.append("the whole project")
    if page is None:
        return PageAtPoint(None, lost=tuple(lost))
    kept: list[DistFile] = []
    dropped: list[str] = []
    unknown: list[str] = []
    unyanked: set[str] = set()
    reyanked: set[str] = set()
    for dist in page.files:
        if dist.filename in history.added or history.created:
            dropped.append(dist.filename)
            continue
        if not history.first_yank:
            kept.append(dist)
            continue
        version = version_of(dist.filename)
        if version is None:
            unknown.append(dist.filename)  # cannot tell whether a yank after the point is its
            continue
        first = history.first_yank.get(version)
        if first == "yank" and dist.yanked:
            dist = dataclasses.replace(dist, yanked=False, yanked_reason=None)
            unyanked.add(version)
        elif first == "unyank" and not dist.yanked:
            dist = dataclasses.replace(dist, yanked=True, yanked_reason=None)
            reyanked.add(version)
        kept.append(dist)
    return PageAtPoint(
        _with_files(page, kept, removed_versions=history.new_releases),
        dropped=tuple(dropped),
        unknown=tuple(unknown),
        lost=tuple(lost),
        unyanked=tuple(sorted(unyanked)),
        reyanked=tuple(sorted(reyanked)),
    )


def _with_files(
    page: ProjectPage, kept: list[DistFile], *, removed_versions: set[str]
) -> ProjectPage:
    """``page`` listing only ``kept``; PEP 700 ``versions`` loses releases made after the point
    and releases whose every listed file was dropped."""
    versions = page.versions
    if versions is not None:
        listed = {version_of(f.filename) for f in page.files}
        remaining = {version_of(f.filename) for f in kept}
        versions = tuple(
            v
            for v in versions
            if _version_key(v) not in removed_versions
            and not (_version_key(v) in listed and _version_key(v) not in remaining)
        )
    return dataclasses.replace(page, files=tuple(kept), versions=versions)


# ------------------------------------------------------------------ reading the journal


def find_point(
    moment: datetime, last: int, since: Callable[[int], list[ChangelogEntry]]
) -> int:
    """The highest serial whose journal timestamp is at or before ``moment`` (0: none).

    Bisection over ``since(n)`` (``changelog_since_serial``): the first row of an answer is the
    entry after ``n``, and a whole answer is searched at once, so a point within one page of
    the head costs one call. Journal timestamps are whole seconds.
    """
    limit = moment.timestamp()
    lo, hi = 0, last  # the point is in [lo, hi]
    for _ in range(_MAX_BISECT_CALLS):
        if lo >= hi:
            return lo
        mid = (lo + hi) // 2
        rows = [r for r in since(mid) if r.serial > mid]
        if not rows or rows[0].timestamp > limit:
            hi = mid
            continue
        before = [r for r in rows if r.timestamp <= limit]
        last_before = before[-1].serial
        if len(before) < len(rows) or rows[-1].serial >= hi:
            return last_before
        lo = last_before
    raise AuthorityError("changelog", "journal timestamps are not in order", permanent=True)
