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
about 3,600 XML-RPC calls an hour, DESIGN.md). A DATETIME is turned into a serial by
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
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Literal, TypeVar

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from safe_pip._changelog import ChangelogClient, ChangelogEntry
from safe_pip._errors import AuthorityError, MalformedPage, UsageError
from safe_pip._pages import DistFile, ProjectPage, page_serial

if TYPE_CHECKING:
    from safe_pip._guard import Guard, IndexEntry, Refusal

__all__ = [
    "AsOf",
    "AsOfView",
    "JournalAfter",
    "PageAtPoint",
    "ProjectHistory",
    "find_point",
    "fold_journal",
    "page_as_of",
    "parse_as_of",
]

_T = TypeVar("_T")
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


_ADD_FILE = re.compile(r"add (?!owner |maintainer )\S+ file (?P<filename>\S.*)", re.IGNORECASE)
_REMOVE_FILE = re.compile(r"remove file (?P<filename>\S.*)", re.IGNORECASE)


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
        if match := _ADD_FILE.fullmatch(action):
            history.added[match["filename"].strip()] = entry.serial
        elif match := _REMOVE_FILE.fullmatch(action):
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


def _file_version(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


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
    lost = [f for f in history.removed_files if f not in history.added]
    lost += [
        f"release {v}" for v in sorted(history.removed_releases) if v not in history.new_releases
    ]
    if history.removed_project and not history.created:
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
        version = _file_version(dist.filename)
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
        listed = {_file_version(f.filename) for f in page.files}
        remaining = {_file_version(f.filename) for f in kept}
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


@dataclass
class _IndexPoint:
    entry: IndexEntry
    client: ChangelogClient | None
    main: bool
    loaded: bool = False
    journal: JournalAfter | None = None
    point_serial: int | None = None
    error: str | None = None
    refusal: Refusal | None = None
    warned: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class AsOfView:
    """The ``Guard.page_filter`` for ``--as-of``: reads each index's journal once, then
    transforms every verified page (see the module docstring)."""

    def __init__(
        self,
        point: AsOf,
        *,
        strict: bool,
        max_wait: float,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.point = point
        self.strict = strict
        self.max_wait = max_wait
        self.say = say
        self.clock = clock
        self.sleep = sleep
        self._indexes: dict[int, _IndexPoint] = {}
        self._lock = threading.Lock()
        self.pages: list[dict[str, object]] = []  # for the guard report

    def add_index(self, entry: IndexEntry, client: ChangelogClient | None, *, main: bool) -> None:
        with self._lock:
            self._indexes.setdefault(entry.number, _IndexPoint(entry, client, main))

    def point_serial(self, entry: IndexEntry) -> int | None:
        """The journal serial the point is on this index (once a page was served), or None."""
        state = self._indexes.get(entry.number)
        return None if state is None else state.point_serial

    # -- the filter -----------------------------------------------------------------------

    def __call__(
        self, guard: Guard, entry: IndexEntry, project: str, page: ProjectPage | None
    ) -> ProjectPage | None:
        with self._lock:
            state = self._indexes.setdefault(entry.number, _IndexPoint(entry, None, False))
        self._load(guard, state, project)
        serial: int | None = None
        if page is not None:
            try:
                serial = page_serial(page, entry.upstream)
            except MalformedPage:
                serial = None
        journal = state.journal
        if journal is not None and serial is not None and serial > journal.head:
            journal = self._extend(state, serial)
        if journal is not None:
            result = page_as_of(
                page, serial=serial, basis="journal", history=journal.history(project)
            )
        elif self.point.moment is not None:
            result = page_as_of(page, serial=serial, basis="upload-time", moment=self.point.moment)
        else:
            basis: Basis = "serial-only" if state.main else "none"
            result = page_as_of(page, serial=serial, basis=basis, point_serial=self.point.serial)
        with self._lock:
            self.pages.append(
                {
                    "index": entry.display,
                    "project": project,
                    "serial": serial,
                    "dropped": list(result.dropped),
                    "unknown": list(result.unknown),
                    "lost": list(result.lost),
                    "unyanked": list(result.unyanked),
                    "reyanked": list(result.reyanked),
                }
            )
        self._judge(guard, state, project, result)
        return result.page

    def _judge(self, guard: Guard, state: _IndexPoint, project: str, result: PageAtPoint) -> None:
        from safe_pip._guard import Refusal

        entry = state.entry
        if result.unknown:
            why = self._why_unknown(state)
            if self.strict:
                guard.refuse(
                    Refusal(
                        project, entry.display, "AS-OF", None, state.point_serial,
                        f"the age of {_names(result.unknown)} cannot be established ({why}); "
                        "--strict refuses it",
                    )
                )
            self.say(
                f"warning: --as-of {self.point}: dropped {_names(result.unknown)} of {project} "
                f"from {entry.display}: its age cannot be established ({why}; --strict refuses)"
            )
        if result.lost:
            if self.strict:
                guard.refuse(
                    Refusal(
                        project, entry.display, "AS-OF", None, state.point_serial,
                        f"{_names(result.lost)} removed after the point cannot be restored; "
                        "--strict refuses a view that is not the one as of the point",
                    )
                )
            self.say(
                f"warning: --as-of {self.point}: {_names(result.lost)} of {project} were "
                f"removed from {entry.display} after the point and cannot be restored "
                "(--strict refuses)"
            )

    def _why_unknown(self, state: _IndexPoint) -> str:
        if state.journal is not None:
            return "no version in the file name, and the release's yanks changed since"
        if self.point.moment is not None:
            return "no PEP 700 upload-time on the page and no changelog"
        if not state.main:
            return "a serial names a point in the main index's journal only"
        return state.error or "no changelog to place the files in time"

    def report(self) -> dict[str, object]:
        with self._lock:
            states = list(self._indexes.values())
            pages = list(self.pages)
        return {
            "point": str(self.point),
            "indexes": [
                {
                    "url": s.entry.display,
                    "point_serial": s.point_serial,
                    "journal_head": s.journal.head if s.journal else None,
                    "error": s.error,
                }
                for s in states
            ],
            "pages": pages,
        }

    # -- reading the journal ----------------------------------------------------------------

    def _load(self, guard: Guard, state: _IndexPoint, project: str) -> None:
        with state.lock:
            if not state.loaded:
                state.loaded = True
                self._load_locked(state, project)
        if state.refusal is not None:
            guard.refuse(state.refusal)

    def _load_locked(self, state: _IndexPoint, project: str) -> None:
        from safe_pip._guard import Refusal

        client, entry = state.client, state.entry
        if self.point.serial is not None and not state.main:
            return  # a serial of the main index means nothing here
        if client is None:
            if self.point.moment is not None:
                self._warn_once(
                    state, "no-changelog",
                    f"warning: --as-of {self.point}: {entry.display} has no changelog; files "
                    "are placed by PEP 700 upload-time, and yanks and removals after the point "
                    "cannot be undone",
                )
            else:
                state.point_serial = self.point.serial
            return
        deadline = self.clock() + self.max_wait
        try:
            last = self._retrying(client.last_serial, deadline)
            if self.point.moment is not None:
                point = find_point(
                    self.point.moment,
                    last,
                    lambda n: self._retrying(functools.partial(client.since_serial, n), deadline),
                )
            else:
                assert self.point.serial is not None
                point = self.point.serial
                backoff = 0.5
                while last < point:  # the point is in the future of this view
                    now = self.clock()
                    if now >= deadline:
                        state.refusal = Refusal(
                            project, entry.display, "STALE", last, point,
                            f"--as-of {point} is after the newest serial of the index "
                            f"(its changelog is at {last}); still so after {self.max_wait:g} s",
                        )
                        return
                    self.sleep(min(backoff, max(0.0, deadline - now)))
                    backoff = min(backoff * 2, 5.0)
                    last = self._retrying(client.last_serial, deadline)
            state.point_serial = point
            state.journal = JournalAfter(
                point, *self._read(client, point, point, last, deadline, {})
            )
        except AuthorityError as exc:
            state.error = f"{client.authority}: {exc.reason}"
            if self.point.serial is not None:
                state.point_serial = self.point.serial
            fallback = (
                "falling back to PEP 700 upload-time"
                if self.point.moment is not None
                else "files on pages changed after the point cannot be placed in time"
            )
            self._warn_once(
                state, "error",
                f"warning: --as-of {self.point}: cannot read the journal of {entry.display} "
                f"({state.error}); {fallback}",
            )

    def _read(
        self,
        client: ChangelogClient,
        point: int,
        head: int,
        target: int,
        deadline: float,
        projects: dict[str, ProjectHistory],
    ) -> tuple[int, dict[str, ProjectHistory]]:
        """Fold every entry in ``(head, target]`` (at least) into ``projects``, paging past
        the index's per-call limit (50,000 rows on PyPI); the new head."""
        while head < target:
            rows = self._retrying(functools.partial(client.since_serial, head), deadline)
            rows = [r for r in rows if r.serial > head]
            if not rows:
                break
            fold_journal(point, rows, projects)
            head = rows[-1].serial
        return max(head, target), projects

    def _extend(self, state: _IndexPoint, serial: int) -> JournalAfter | None:
        """A page newer than the journal read: read on up to it, so a file published meanwhile
        is never taken for an old one (one more call per index, not per project)."""
        with state.lock:
            journal = state.journal
            if journal is None or serial <= journal.head:
                return journal
            assert state.client is not None
            try:
                deadline = self.clock() + self.max_wait
                projects = {k: dataclasses.replace(v) for k, v in journal.projects.items()}
                head, projects = self._read(
                    state.client, journal.point, journal.head, serial, deadline, projects
                )
                state.journal = JournalAfter(journal.point, head, projects)
            except AuthorityError as exc:
                state.error = f"{state.client.authority}: {exc.reason}"
                state.journal = None
            return state.journal

    def _retrying(self, call: Callable[[], _T], deadline: float) -> _T:
        delay = 0.5
        while True:
            try:
                return call()
            except AuthorityError as exc:
                if exc.permanent or self.clock() >= deadline:
                    raise
                self.sleep(min(delay, max(0.0, deadline - self.clock())))
                delay = min(delay * 2, 5.0)

    def _warn_once(self, state: _IndexPoint, key: str, line: str) -> None:
        if key not in state.warned:
            state.warned.add(key)
            self.say(line)


def _names(items: tuple[str, ...], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown
