"""Watching a release reach every cached copy of its project's page, and the file host.

Right after an upload some cached copies of the page (JSON and HTML, gzip and plain: each is
its own copy at the CDN) still lack the release, and the file host may answer 404 for a
while; a pipeline that installs what it just uploaded then fails, or takes the previous
release. :class:`ReleaseGate` polls every copy and every file until all of them show the whole
release, or ``--max-wait`` is spent.

What "the whole release" is comes from a reference, the best one the index offers: the
changelog's ``add … file`` entries (and the serial a page must carry to list them), else the
uncached origin's page, else the copy with the newest serial seen.

A copy without a serial, with the changelog as the reference, is judged by the guard's content
rule (:func:`~safe_pip.index.contents.compare_listing_with_journal`): it must not still list a
file of the release the changelog removed, nor show a yank mark the changelog changed; and it
must list every file of the release only on an index declared a complete mirror
(``--complete-mirror``). Elsewhere a lacking file may be filtered on purpose (a platform, a
pre-release filter), so one file of the release listed is enough and files no copy lists are
not asked of the file host: a filtering mirror must not hold a pipeline for files it never
carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from safe_pip.authority.changelog_client import ChangelogClient
from safe_pip.authority.recent import RECENT_WINDOW, read_recent
from safe_pip.errors import AuthorityError, MalformedPage
from safe_pip.guard.copies import VARIANTS, fetch_page
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import NotFound, Transient
from safe_pip.guard.timing import PROGRESS_EVERY, Timing
from safe_pip.index.contents import compare_listing_with_journal
from safe_pip.index.journal import ChangelogEntry, FileEvent, file_event_of
from safe_pip.index.model import DistFile, ProjectPage, page_serial
from safe_pip.index.release import release_files, release_in_journal
from safe_pip.net.http import Session, TransportError
from safe_pip.net.urls import redact

#: Files asked for at once (the session keeps as many connections per host).
PROBES = 16
#: The references, best first, as the output names them.
CHANGELOG, ORIGIN, NEWEST = "changelog", "origin", "newest serial seen"


@dataclass
class CopyState:
    """One cached copy of the page (``json/gzip`` …), as last seen."""

    variant: str
    serial: int | None = None
    listed: int = 0  # files of the release it lists
    shows: bool = False
    first_shown: float | None = None  # seconds after the start when it first showed it all
    problem: str | None = None  # why the last fetch gave no page
    disagrees: str | None = None  # without a serial: what it shows against the file events


@dataclass
class FileState:
    filename: str
    url: str | None = None  # as the first copy listing it gives it
    served_after: float | None = None
    problem: str | None = "not listed by any copy yet"


@dataclass
class ReleaseWatch:
    """One ``PROJECT==VERSION`` and what was seen of it."""

    project: str
    version: str
    reference: str = NEWEST
    reference_note: str = ""  # what the reference said (its serial, its files)
    fallback: str = ""  # why a better reference was not used
    required: int | None = None  # the serial a copy must carry (changelog reference)
    expected: tuple[str, ...] = ()  # the release's files; learnt from copies without a reference
    #: the project's file events in the changelog's window (changelog reference only): what
    #: a copy without a serial is judged by
    events: tuple[FileEvent, ...] | None = None
    copies: dict[str, CopyState] = field(default_factory=dict)
    files: dict[str, FileState] = field(default_factory=dict)
    visible_after: float | None = None
    no_release: str | None = None  # why there is no such release (exit 1)

    def __post_init__(self) -> None:
        for fmt, enc in VARIANTS:
            self.copies[f"{fmt}/{enc}"] = CopyState(f"{fmt}/{enc}")

    def lagging(self) -> list[str]:
        """What still lacks the release, one phrase per copy or file."""
        out = []
        for copy in self.copies.values():
            if copy.shows:
                continue
            if copy.problem is not None:
                out.append(f"{copy.variant}: {copy.problem}")
            elif copy.disagrees is not None:
                out.append(f"{copy.variant} (no serial): {copy.disagrees}")
            elif copy.serial is not None and copy.serial < (self.required or 0):
                out.append(f"{copy.variant} serial {copy.serial}, {self.required} required")
            elif not self.expected:
                out.append(f"{copy.variant} lists no file of {self.version}")
            else:
                out.append(f"{copy.variant} lists {copy.listed} of {len(self.expected)} files")
        for state in self.files.values():
            if state.served_after is None:
                out.append(f"{state.filename}: {state.problem}")
        return out


class ReleaseGate:
    """Polls one index's copies of each release's page, and its files (see the module)."""

    def __init__(
        self,
        session: Session,
        entry: IndexEntry,
        timing: Timing,
        *,
        changelog: ChangelogClient | None,
        on_progress: Callable[[ReleaseWatch, float], None],
    ) -> None:
        self.session = session
        self.entry = entry
        self.timing = timing
        self.changelog = changelog
        self.on_progress = on_progress
        self.timeout = session.settings.timeout

    # -- the reference ------------------------------------------------------------------------

    def references(self, wanted: list[tuple[str, str]]) -> list[ReleaseWatch]:
        """A watch per release, with what the best reference says it has."""
        watches = [ReleaseWatch(project, version) for project, version in wanted]
        note = ""
        if self.changelog is not None:
            try:
                recent = read_recent(
                    self.changelog,
                    max_wait=self.timing.max_wait,
                    clock=self.timing.clock,
                    sleep=self.timing.sleep,
                )
            except AuthorityError as exc:
                note = str(exc)
            else:
                for watch in watches:
                    self._from_journal(watch, recent.entries, recent.low, recent.head)
                return watches
        for watch in watches:
            watch.fallback = note
            if self.entry.origin is not None:
                self._from_origin(watch)
            elif not note:
                watch.fallback = "no changelog or origin is known for this index"
        return watches

    def _from_journal(
        self, watch: ReleaseWatch, entries: Sequence[ChangelogEntry], low: int, head: int
    ) -> None:
        watch.reference = CHANGELOG
        release = release_in_journal(entries, watch.project, watch.version)
        span = f"its newest {RECENT_WINDOW:,} entries (serials {low + 1} to {head})"
        if release is None:
            watch.no_release = (
                f"the changelog has no upload of it in {span}: never uploaded, or a typo"
            )
        elif release.removed:
            watch.no_release = f"the changelog shows it removed (serial {release.serial})"
        else:
            watch.required = release.serial
            watch.expected = release.files
            watch.events = tuple(
                event
                for entry in entries
                if entry.name == watch.project and (event := file_event_of(entry)) is not None
            )
            watch.reference_note = f"serial {release.serial}, {_files(len(release.files))}"
            for name in release.files:
                watch.files[name] = FileState(name)

    def _from_origin(self, watch: ReleaseWatch) -> None:
        assert self.entry.origin is not None
        url = f"{self.entry.origin}{watch.project}/"
        watch.reference = ORIGIN
        try:
            page = fetch_page(
                self.session, url, "json", "gzip", timeout=self.timeout, authority=True
            )
        except NotFound:
            watch.no_release = f"the origin {redact(url)} has no such project"
            return
        except (MalformedPage, Transient) as exc:
            watch.reference = NEWEST
            watch.fallback = "; ".join(filter(None, [watch.fallback, f"origin: {exc}"]))
            return
        listed = release_files(page, watch.project, watch.version)
        if not listed:
            watch.no_release = f"the origin {redact(url)} lists no file of it"
            return
        watch.expected = tuple(listed)
        watch.reference_note = _files(len(listed))
        for name, dist in listed.items():
            watch.files[name] = FileState(name, dist.url)

    # -- the wait -----------------------------------------------------------------------------

    def wait(self, watches: list[ReleaseWatch]) -> None:
        """Poll until every release is visible everywhere, or ``max_wait`` is spent."""
        timing = self.timing
        started = timing.clock()
        deadline = started + timing.max_wait
        backoff = timing.first_backoff
        last_report = started
        while True:
            pending = [w for w in watches if w.visible_after is None]
            for watch in pending:
                self._round(watch, started)
            now = timing.clock()
            pending = [w for w in pending if w.visible_after is None]
            if not pending or now >= deadline:
                return
            if now - last_report >= PROGRESS_EVERY or last_report == started:
                last_report = now
                for watch in pending:
                    self.on_progress(watch, deadline - now)
            timing.sleep(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, timing.page_backoff)

    def _round(self, watch: ReleaseWatch, started: float) -> None:
        url = f"{self.entry.upstream}{watch.project}/"
        pages: dict[str, tuple[ProjectPage, float]] = {}
        for (fmt, enc), copy in zip(VARIANTS, watch.copies.values(), strict=True):
            try:
                page = fetch_page(self.session, url, fmt, enc, timeout=self.timeout)
                copy.serial = page_serial(page, url)
            except NotFound:
                copy.problem, copy.shows = "answered 404 (no such project yet)", False
                continue
            except (MalformedPage, Transient) as exc:
                copy.problem, copy.shows = str(exc), False
                continue
            copy.problem = None
            pages[copy.variant] = page, self.timing.clock() - started
        if watch.reference == NEWEST:
            self._learn(watch, [page for page, _ in pages.values()])
        for variant, (page, at) in pages.items():
            copy = watch.copies[variant]
            listed = release_files(page, watch.project, watch.version)
            copy.listed = sum(name in listed for name in watch.expected)
            copy.shows = self._shows(watch, copy, page, listed)
            if copy.shows and copy.first_shown is None:
                copy.first_shown = at
            for name, dist in listed.items():
                state = watch.files.get(name)
                if state is not None and state.url is None:
                    state.url, state.problem = dist.url, "not fetched yet"
        # Not declared complete, no copy giving a serial: a file no copy lists may be filtered.
        filtering = (
            watch.events is not None
            and not self.entry.complete_mirror
            and all(c.serial is None for c in watch.copies.values())
        )
        needed = [f for f in watch.files.values() if f.url is not None or not filtering]
        probes = [f for f in needed if f.served_after is None and f.url is not None]
        if probes:
            # A release can have dozens of wheels: asked at once, over the session's pool.
            with ThreadPoolExecutor(max_workers=min(PROBES, len(probes))) as pool:
                list(pool.map(lambda state: self._probe(state, started), probes))
        if all(c.shows for c in watch.copies.values()) and all(
            f.served_after is not None for f in needed
        ):
            watch.visible_after = self.timing.clock() - started

    def _shows(
        self, watch: ReleaseWatch, copy: CopyState, page: ProjectPage, listed: dict[str, DistFile]
    ) -> bool:
        """Whether one copy shows the whole release (see the module docstring)."""
        copy.disagrees = None
        if copy.serial is not None or watch.events is None:
            fresh = watch.required is None or copy.serial is None or copy.serial >= watch.required
            return bool(watch.expected) and copy.listed == len(watch.expected) and fresh
        complete = self.entry.complete_mirror
        verdict = compare_listing_with_journal(page.files, watch.events, complete=complete)
        ours = {*watch.expected, *listed}  # the release's files: other releases are not waited on
        stale = [d for d in verdict.stale if d.filename in ours]
        if stale:
            copy.disagrees = str(max(stale, key=lambda d: d.serial))
            return False
        if complete:
            return copy.listed == len(watch.expected)
        return copy.listed > 0

    def _learn(self, watch: ReleaseWatch, pages: list[ProjectPage]) -> None:
        """Without a reference, the release is what the copy with the newest serial lists
        (every copy's listing together when none gives a serial)."""
        ranked = sorted(pages, key=lambda p: max(p.serials.values(), default=-1))
        if not ranked:
            return
        newest = max(ranked[-1].serials.values(), default=None)
        best = [p for p in ranked if max(p.serials.values(), default=None) == newest]
        names = dict.fromkeys(watch.expected)
        for page in best:
            names.update(dict.fromkeys(release_files(page, watch.project, watch.version)))
        watch.expected = tuple(names)
        if newest is not None:
            watch.reference_note = f"serial {newest}"
        for name in names:
            watch.files.setdefault(name, FileState(name))

    def _probe(self, state: FileState, started: float) -> None:
        """Ask the file host for the file's first byte: served, or not yet."""
        assert state.url is not None
        try:
            with self.session.get(
                state.url, headers={"Range": "bytes=0-0"}, timeout=self.timeout, stream=True
            ) as resp:
                status = resp.status_code
                if status == 206:
                    resp.content  # noqa: B018 - one byte: the connection goes back to the pool
        except TransportError as exc:
            state.problem = str(exc)
            return
        if status in (200, 206):
            state.served_after, state.problem = self.timing.clock() - started, None
        else:
            state.problem = f"the file host answered HTTP {status}"


def _files(count: int) -> str:
    return f"{count} file" + ("" if count == 1 else "s")
