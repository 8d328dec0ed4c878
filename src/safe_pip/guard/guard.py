"""The guard: fetches index pages and files for pip, proves them fresh, or refuses.

This module holds the decisions (which copy to ask for, how long to wait, when to refuse); the
HTTP server that pip talks to is in ``_proxy`` and only translates requests to these calls.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Literal, NoReturn, Protocol

from packaging.utils import canonicalize_name

from safe_pip.authority.changelog import ChangelogAuthority
from safe_pip.errors import AuthorityError, MalformedPage
from safe_pip.guard.filecache import FileCache
from safe_pip.index.journal import JournalSummary
from safe_pip.index.pages import (
    HTML_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    ProjectPage,
    content_fingerprint,
    page_serial,
    parse_page,
    render_html,
    render_json,
)
from safe_pip.index.verdict import Evidence, Judgement, Verdict, judge, judge_missing
from safe_pip.net.http import Session, TransportError, TransportSettings
from safe_pip.net.urls import credentials_of, netloc_of, redact, strip_credentials

logger = logging.getLogger("safe_pip")

Format = Literal["json", "html"]
Encoding = Literal["gzip", "identity"]

#: Every cached copy of a page the guard may ask for. HTML and JSON, gzip and plain are
#: separate copies at the CDN; asking another is the one cache bypass that works (warehouse #8568).
VARIANTS: tuple[tuple[Format, Encoding], ...] = (
    ("json", "gzip"),
    ("html", "gzip"),
    ("json", "identity"),
    ("html", "identity"),
)
_ACCEPT = {
    "json": JSON_CONTENT_TYPE,
    "html": f"{HTML_CONTENT_TYPE}, text/html;q=0.9",
}

#: How often a wait is reported on stderr (a calm rate, not once per retry).
PROGRESS_EVERY = 10.0


@dataclass
class IndexEntry:
    """One index pip uses, as the guard reaches it."""

    number: int
    upstream: str  # ends with "/", may carry credentials (never shown)
    changelog: ChangelogAuthority | None = None
    changelog_url: str | None = None
    origin: str | None = None  # uncached simple index URL, ends with "/"
    remembered: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # serials accepted this run
    warned: set[str] = field(default_factory=set)
    summary: JournalSummary | None = None
    summary_error: str | None = None
    #: serve: builds a new authority to read the journal again once the summary is older than
    #: the guard's ``page_ttl`` (a ChangelogAuthority answers once; a long-running guard must ask
    #: again, or it would judge today's pages by the journal of the day it started).
    renew_changelog: Callable[[], ChangelogAuthority] | None = None
    summary_at: float | None = None
    renew_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: every copy of a page on this index came back without a serial: a static mirror, whose
    #: pages are then taken as they come instead of after every copy has been read.
    serialless: bool = False

    @property
    def display(self) -> str:
        return redact(self.upstream)


@dataclass(frozen=True, slots=True)  # slots: one per file of every page served
class FileEntry:
    """A file listed on a page the guard served, and what the page says its bytes are."""

    url: str
    filename: str
    hashes: dict[str, str]
    metadata_hashes: dict[str, str]
    index: IndexEntry


@dataclass
class PageRecord:
    """One checked page, as written to the guard report."""

    url: str
    index: str
    project: str
    serial_seen: int | None = None
    serial_required: int | None = None
    attempts: int = 0
    verdict: str = ""
    authority: str = ""
    reason: str = ""
    variant: str = ""
    elapsed_ms: int = 0
    finished_at: float = 0.0  # wall-clock time of the verdict (epoch seconds)
    prefetched: bool = False  # checked ahead of pip by the prefetcher (``_prefetch``)


#: The verdict for a request that tried to reach a host other than the guard.
UNGUARDED = "UNGUARDED"
#: The verdict for a page the index would not give (HTTP 401 or 403): refused credentials, or
#: none to send. Not staleness: waiting cannot fix it, so it is refused at once, and told
#: apart from a refused view (pip's own exit code, not 75).
ACCESS_DENIED = "ACCESS-DENIED"


@dataclass(frozen=True)
class Refusal:
    """Why the guard refused a view (one line per refused project on stderr)."""

    project: str
    index: str
    verdict: str
    seen: int | None
    required: int | None
    reason: str

    def __str__(self) -> str:
        if self.verdict == UNGUARDED:
            return f"refused a request to {self.project}: {self.reason}"
        if self.verdict == ACCESS_DENIED:
            return f"the index {self.index} {self.reason}"
        seen = "none" if self.seen is None else str(self.seen)
        required = "unknown" if self.required is None else str(self.required)
        return (
            f"refused {self.project} from {self.index}: {self.verdict}, serial {seen} seen, "
            f"{required} required ({self.reason})"
        )


def denials(refusals: list[Refusal]) -> list[Refusal]:
    """The refusals of access among ``refusals``, the first per index: one line says it (every
    page of an index that refuses the credentials is refused alike)."""
    first: dict[str, Refusal] = {}
    for refusal in refusals:
        if refusal.verdict == ACCESS_DENIED:
            first.setdefault(refusal.index, refusal)
    return list(first.values())


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(str(refusal))


#: Transforms a verified page before it is served or returned (``--as-of``, ``_asof``); may
#: call ``Guard.refuse``. ``None`` in and out means the index has no such project.
PageFilter = Callable[["Guard", IndexEntry, str, "ProjectPage | None"], "ProjectPage | None"]


@dataclass
class ServedPage:
    body: bytes
    content_type: str
    record: PageRecord | None = None  # the check behind the answer (shared by cached answers)


@dataclass
class _Checked:
    """One check of a page and its outcome, reused until it expires (``Guard.page_ttl``)."""

    page: ProjectPage | None
    record: PageRecord | None
    at: float
    refusal: Refusal | None = None
    rendered: dict[str, ServedPage] = field(default_factory=dict)
    told: bool = True  # False: a prefetch's refusal, fired only when pip asks for the page


class PrefetchHooks(Protocol):
    """What ``fetch_file`` asks the prefetcher (``_prefetch``): bytes it has, and news."""

    def file_ready(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int] | None:
        """Verified bytes for ``url`` fetched ahead of pip (or kept from an earlier run)."""

    def file_seen(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str], handle: IO[bytes]
    ) -> None:
        """A verified download is about to reach pip (metadata names the next pages)."""


class NotFound(Exception):
    """The index has no such project (passed to pip as a 404, which pip reads as "none")."""


class _Transient(Exception):
    """A fetch that may work when tried again (5xx, timeouts, resets, truncated bodies)."""


#: Where the credentials a request carried came from, as the user knows them.
_SOURCES = {
    "url": "the index URL",
    "given": "the index URL",
    "netrc": "netrc",
    "keyring": "the keyring",
    "header": "a header",
}


class AccessDenied(Exception):
    """The index answered 401 or 403: it refused the credentials sent, or needs some.

    ``credentials`` is where those sent came from (``_netauth.Source``), None if none were.
    """

    def __init__(self, url: str, final_url: str, status: int, credentials: str | None) -> None:
        self.url = url
        self.final_url = final_url
        self.status = status
        self.credentials = credentials
        super().__init__(f"{redact(final_url)} answered HTTP {status}")

    def reason(self, project: str) -> str:
        """What the refusal line says after the index's name (never a credential)."""
        source = _SOURCES.get(self.credentials or "")
        what = f"HTTP {self.status} for {project}"
        moved = netloc_of(self.final_url) != netloc_of(self.url)
        if moved:
            what += f" at {redact(self.final_url)}"
        # Credentials stay with their host: after a redirect elsewhere none are sent, which
        # is a different story from having none at all.
        none = (
            f"credentials are not sent to {netloc_of(self.final_url)} after a redirect"
            if moved
            else "none in the index URL, netrc or the keyring"
        )
        if self.status == 401:
            if source:
                return f"refused the credentials from {source} ({what})"
            return f"needs credentials and none were available ({what}; {none})"
        if source:
            return f"refused access with the credentials from {source} ({what})"
        return f"refused access; no credentials were sent ({what}; {none})"


class Guard:
    """Proves pages fresh for one run. Thread-safe: pip and prefetchers call it at once."""

    def __init__(
        self,
        session: Session,
        transport: TransportSettings,
        *,
        max_wait: float,
        strict: bool,
        on_refuse: Callable[[Refusal], None],
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        first_backoff: float = 0.2,
        max_backoff: float = 1.0,
        page_backoff: float = 0.5,
        page_ttl: float | None = None,
    ) -> None:
        self.session = session
        self.transport = transport
        self.max_wait = max_wait
        self.strict = strict
        self.on_refuse = on_refuse
        self.say = say
        self.clock = clock
        self.sleep = sleep
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        #: The longest pause between two rounds of a stale page's copies. A purge that reaches
        #: the last edge is then seen within about this long (issue 7: within 0.5 s); with 1 s,
        #: half the purges waited longer. Changelog and file retries keep ``max_backoff``
        #: (PyPI allows 3,600 changelog calls an hour).
        self.page_backoff = min(page_backoff, max_backoff)
        #: How long a verdict (a page proven fresh, or a refusal) is reused. None: for the whole
        #: run, which is right for one install. ``serve`` runs for days, so it re-checks a page
        #: (and re-reads the journal) once its verdict is older than this.
        self.page_ttl = page_ttl
        self.indexes: list[IndexEntry] = []
        self.records: list[PageRecord] = []
        self.authority_calls: list[dict[str, object]] = []
        self.refusals: list[Refusal] = []
        self.files: dict[int, FileEntry] = {}
        self._file_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._page_locks: dict[tuple[int, str], threading.Lock] = {}
        self._pages: dict[tuple[int, str], _Checked] = {}
        self._origin_pages: dict[tuple[int, str], tuple[bool, ProjectPage | None]] = {}
        self._summary_threads: list[threading.Thread] = []
        self.proxy_base = ""  # set by the proxy once it listens: http://127.0.0.1:PORT/TOKEN
        self.closing = threading.Event()
        self.page_filter: PageFilter | None = None
        #: Pages and files fetched ahead of pip (``_prefetch.Prefetcher`` sets itself here).
        self.prefetcher: PrefetchHooks | None = None
        #: Verified files kept by sha256 (between runs, and for the several range requests a
        #: client such as uv makes for one wheel); None: every request downloads.
        self.file_cache: FileCache | None = None
        self._file_locks: dict[str, threading.Lock] = {}
        self._quiet = threading.local()  # set while a prefetch checks a page

    # -- set-up -----------------------------------------------------------------------------

    def add_index(
        self,
        upstream: str,
        *,
        changelog: ChangelogAuthority | None = None,
        changelog_url: str | None = None,
        origin: str | None = None,
        remembered: dict[str, int] | None = None,
    ) -> IndexEntry:
        upstream = upstream if upstream.endswith("/") else upstream + "/"
        with self._lock:
            for entry in self.indexes:
                if entry.upstream == upstream:
                    return entry
            entry = IndexEntry(
                number=len(self.indexes),
                upstream=upstream,
                changelog=changelog,
                changelog_url=changelog_url,
                origin=(origin if origin is None or origin.endswith("/") else origin + "/"),
                remembered=dict(remembered or {}),
            )
            self.indexes.append(entry)
            return entry

    def seen_serials(self, entry: IndexEntry) -> dict[str, int]:
        """The serials accepted on this index so far, copied whole: prefetch workers may still
        be adding to them when the run keeps them."""
        with self._lock:
            return dict(entry.seen)

    def start_authorities(self) -> None:
        """Ask the changelogs in the background while pip starts, so no page waits for it."""
        for entry in self.indexes:
            if entry.changelog is not None:
                thread = threading.Thread(
                    target=self._load_summary, args=(entry,), daemon=True, name="changelog"
                )
                thread.start()
                self._summary_threads.append(thread)

    def _load_summary(self, entry: IndexEntry) -> None:
        assert entry.changelog is not None
        started = self.clock()
        try:
            entry.summary = entry.changelog.summary()
            entry.summary_error = None
        except AuthorityError as exc:
            entry.summary = None  # an old summary cannot prove anything newer fresh
            entry.summary_error = str(exc)
        entry.summary_at = started

    def _renew_summary(self, entry: IndexEntry) -> None:
        """Read the journal again once the summary is older than ``page_ttl`` (serve only).

        One caller renews while the others wait, so the changelog is asked at most once per
        ``page_ttl`` per index, however many clients ask (PyPI allows 3,600 calls an hour).
        """
        assert self.page_ttl is not None and entry.renew_changelog is not None
        with entry.renew_lock:
            at = entry.summary_at
            if at is not None and self.clock() - at < self.page_ttl:
                return
            entry.changelog = entry.renew_changelog()
            self._load_summary(entry)

    def index_url(self, entry: IndexEntry) -> str:
        return f"{self.proxy_base}/i/{entry.number}/"

    # -- pages ------------------------------------------------------------------------------

    def page(self, number: int, project: str, accept: str) -> ServedPage:
        """The page pip asked for, rendered in a format pip accepts; raises Refused/NotFound."""
        if number >= len(self.indexes):
            raise NotFound(project)
        entry = self.indexes[number]
        checked = self._verified(entry, project)
        page = checked.page
        if page is None:
            raise NotFound(project)
        fmt = "json" if "json" in accept else "html"
        served = checked.rendered.get(fmt)
        if served is not None:  # rendered once per check: serve answers many clients
            return served
        serial = entry.seen.get(project)
        if fmt == "json":
            served = ServedPage(
                render_json(page, rewrite_url=self._rewrite_for(entry, page), serial=serial),
                JSON_CONTENT_TYPE,
                checked.record,
            )
        else:
            served = ServedPage(
                render_html(page, rewrite_url=self._rewrite_for(entry, page), serial=serial),
                "text/html; charset=utf-8",
                checked.record,
            )
        if self.page_ttl is not None:
            # Kept for the next client (serve); one run's pip asks for a page once, and a
            # big page's rendering is as large as its body.
            checked.rendered[fmt] = served
        return served

    def verified(self, entry: IndexEntry, project: str) -> ProjectPage | None:
        """A project's page proven acceptable (None if the index has no such project).

        Checked once per run (or per ``page_ttl``) and shared by every caller; raises
        ``Refused``.
        """
        return self._verified(entry, project).page

    def _verified(self, entry: IndexEntry, project: str) -> _Checked:
        key = (entry.number, project)
        checked = self._pages.get(key)
        if checked is None or not self._fresh_enough(checked):
            with self._lock:
                lock = self._page_locks.setdefault(key, threading.Lock())
            with lock:
                checked = self._pages.get(key)
                if checked is None or not self._fresh_enough(checked):
                    checked = self._recheck(entry, project, key)
        if checked.refusal is not None:
            # Told once (on_refuse, the refusals list); later callers get the same answer. A
            # refusal found by a prefetch is told when pip (or another caller) asks, never
            # before: a page pip never asks for is no reason to refuse (issue 7).
            if not getattr(self._quiet, "on", False):
                with self._lock:
                    tell, checked.told = not checked.told, True
                if tell:
                    self._refused(checked.refusal)
            raise Refused(checked.refusal)
        return checked

    def prefetch(self, entry: IndexEntry, project: str) -> ProjectPage | None:
        """``verified`` ahead of pip: the same check, but a refusal is kept, not fired.

        Raises ``Refused`` (kept for the moment pip asks for the page); None means the index
        has no such project.
        """
        self._quiet.on = True
        try:
            return self._verified(entry, project).page
        finally:
            self._quiet.on = False

    def _fresh_enough(self, checked: _Checked) -> bool:
        return self.page_ttl is None or self.clock() - checked.at < self.page_ttl

    def _recheck(self, entry: IndexEntry, project: str, key: tuple[int, str]) -> _Checked:
        self._origin_pages.pop(key, None)  # the origin's answer expires with the verdict
        if self.page_ttl is not None:
            self._trim_history()
        url = redact(f"{entry.upstream}{project}/")
        record = PageRecord(url=url, index=entry.display, project=project)
        record.prefetched = getattr(self._quiet, "on", False)
        try:
            page = self._check(entry, project, record)
            if self.page_filter is not None:
                page = self.page_filter(self, entry, project, page)
        except Refused as exc:
            quiet = getattr(self._quiet, "on", False)
            self._pages[key] = _Checked(None, record, self.clock(), exc.refusal, told=not quiet)
            raise
        checked = _Checked(page, record, self.clock())
        self._pages[key] = checked
        return checked

    def _trim_history(self, keep: int = 1000) -> None:
        """A long-running guard keeps only its latest records (the report is per run)."""
        with self._lock:
            for history in (self.records, self.refusals, self.authority_calls):
                if len(history) > keep:
                    del history[:-keep]

    def _check(self, entry: IndexEntry, project: str, record: PageRecord) -> ProjectPage | None:
        started = self.clock()
        url = f"{entry.upstream}{project}/"
        with self._lock:
            self.records.append(record)
        evidence = self._evidence(entry, project)
        # --max-wait counts from the first fetch, so a hanging index (each read bounded by
        # pip's --timeout) cannot stretch the wait by a whole round of copies.
        first_fetch = self.clock()
        deadline: float | None = None
        backoff = self.first_backoff
        last_report = 0.0
        problem: Judgement | str = "no answer"
        # Some indexes put the serial in one format only (a mirror's JSON, not its HTML): a
        # copy without a serial must not be taken while another copy shows the page stale.
        gave_serial = False
        while True:
            rollback: Judgement | None = None
            unproven: tuple[Judgement, ProjectPage, Format, Encoding] | None = None
            serialless_copies = 0
            for fmt, enc in VARIANTS:
                record.attempts += 1
                try:
                    page = self._fetch(url, fmt, enc)
                except NotFound:
                    missing = judge_missing(evidence)
                    if missing is not None:
                        problem = missing
                        continue
                    self._finish(record, started, "NOT-FOUND", None, None, "", "404", fmt, enc)
                    return None
                except (MalformedPage, _Transient) as exc:
                    problem = str(exc)
                    continue
                except AccessDenied as exc:
                    self._deny(entry, project, record, exc, started)
                try:
                    serial = page_serial(page, url)
                except MalformedPage as exc:
                    problem = str(exc)
                    continue
                # Only an origin's answer is compared with the content: a page of thousands of
                # files is not fingerprinted for nothing.
                fingerprint = (
                    content_fingerprint(page) if evidence.origin_fingerprint is not None else ()
                )
                verdict = judge(serial, fingerprint, evidence)
                if serial is None:
                    serialless_copies += 1
                else:
                    gave_serial = True
                if verdict.verdict is Verdict.NO_SERIAL and not entry.serialless:
                    unproven = unproven or (verdict, page, fmt, enc)
                    continue
                if verdict.verdict is Verdict.STALE:
                    problem = verdict
                    continue
                if verdict.verdict is Verdict.ROLLBACK:
                    rollback = verdict
                    continue
                self._accept(entry, project, record, verdict, started, fmt, enc)
                return page
            if unproven is not None and not gave_serial:
                if serialless_copies == len(VARIANTS):
                    entry.serialless = True
                verdict, page, fmt, enc = unproven
                self._accept(entry, project, record, verdict, started, fmt, enc)
                return page
            if rollback is not None:
                self._refuse(entry, project, record, rollback, started)
            now = self.clock()
            if deadline is None:
                deadline = first_fetch + self.max_wait
            if now >= deadline:
                self._refuse(entry, project, record, problem, started)
            if now - last_report >= PROGRESS_EVERY:
                last_report = now
                self.say(self._waiting_line(entry, project, problem, deadline - now))
            self.sleep(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, self.page_backoff)

    def _waiting_line(
        self, entry: IndexEntry, project: str, problem: Judgement | str, left: float
    ) -> str:
        if isinstance(problem, Judgement):
            what = f"serial {problem.seen} seen, {problem.required} required"
        else:
            what = problem
        return (
            f"waiting for a fresh page of {project} on {entry.display}: {what} "
            f"({left:.0f} s left)"
        )

    def _accept(
        self,
        entry: IndexEntry,
        project: str,
        record: PageRecord,
        verdict: Judgement,
        started: float,
        fmt: str,
        enc: str,
    ) -> None:
        self._finish(
            record,
            started,
            str(verdict.verdict),
            verdict.seen,
            verdict.required,
            verdict.authority,
            verdict.reason,
            fmt,
            enc,
        )
        if verdict.verdict in (Verdict.UNVERIFIED, Verdict.NO_SERIAL):
            if self.strict:
                self._refuse(entry, project, record, verdict, started, strict=True)
            self._warn_once(entry, verdict.verdict)
        if verdict.seen is not None:
            with self._lock:
                entry.seen[project] = max(entry.seen.get(project, 0), verdict.seen)

    def _warn_once(self, entry: IndexEntry, verdict: Verdict) -> None:
        with self._lock:
            if verdict.value in entry.warned:
                return
            entry.warned.add(verdict.value)
        if verdict is Verdict.NO_SERIAL:
            self.say(
                f"warning: {entry.display} gives no serials; the freshness of its pages "
                "cannot be proven (--strict refuses such pages)"
            )
        else:
            why = entry.summary_error or "no changelog or origin is known for this index"
            self.say(
                f"warning: freshness not proven on {entry.display}: {why}; pages are checked "
                "only against serials seen before (--strict refuses such pages)"
            )

    def _finish(
        self,
        record: PageRecord,
        started: float,
        verdict: str,
        seen: int | None,
        required: int | None,
        authority: str,
        reason: str,
        fmt: str,
        enc: str,
    ) -> None:
        record.verdict = verdict
        record.serial_seen = seen
        record.serial_required = required
        record.authority = authority
        record.reason = reason
        record.variant = f"{fmt}/{enc}"
        record.elapsed_ms = int((self.clock() - started) * 1000)
        record.finished_at = time.time()

    def _refuse(
        self,
        entry: IndexEntry,
        project: str,
        record: PageRecord,
        problem: Judgement | str,
        started: float,
        *,
        strict: bool = False,
    ) -> None:
        if isinstance(problem, Judgement):
            verdict = str(problem.verdict)
            seen, required, reason = problem.seen, problem.required, problem.reason
            if strict:
                reason = f"{reason}; --strict refuses what is not proven fresh"
        else:
            verdict, seen, required, reason = "STALE", None, None, problem
        if not strict and verdict == "STALE":
            reason = f"{reason}; still stale after {self.max_wait:g} s"
        refusal = Refusal(project, entry.display, verdict, seen, required, reason)
        record.verdict = f"REFUSED ({verdict})"
        record.serial_seen, record.serial_required, record.reason = seen, required, reason
        record.elapsed_ms = int((self.clock() - started) * 1000)
        record.finished_at = time.time()
        self._refused(refusal)

    def _deny(
        self,
        entry: IndexEntry,
        project: str,
        record: PageRecord,
        denied: AccessDenied,
        started: float,
    ) -> NoReturn:
        """Refuse at once a page the index would not give (401, 403): no copy, and no wait,
        brings credentials the index accepts."""
        reason = denied.reason(project)
        record.verdict = f"REFUSED ({ACCESS_DENIED})"
        record.reason = reason
        record.elapsed_ms = int((self.clock() - started) * 1000)
        record.finished_at = time.time()
        self._refused(Refusal(project, entry.display, ACCESS_DENIED, None, None, reason))
        raise AssertionError("not reached: _refused raises")

    def _refused(self, refusal: Refusal) -> None:
        if getattr(self._quiet, "on", False):
            raise Refused(refusal)  # a prefetch: kept with the page, told when pip asks
        with self._lock:
            self.refusals.append(refusal)
        self.on_refuse(refusal)
        raise Refused(refusal)

    def refuse_host(self, target: str, client: str) -> NoReturn:
        """Refuse a request that reached the guard as a proxy for another host: whatever put
        that host in the client's hands (an option, a configuration key, a tool's own default)
        went around the guard's indexes, so the whole view is refused."""
        self._refused(
            Refusal(
                target, target, UNGUARDED, None, None,
                f"{client} tried to reach it directly, not through the guard's indexes "
                "(an index, find-links or file host safe-pip did not place)",
            )
        )
        raise AssertionError("not reached: _refused raises")

    def refuse(self, refusal: Refusal) -> NoReturn:
        """Refuse the view for a reason found outside the page check (a ``page_filter``)."""
        self._refused(refusal)
        raise Refused(refusal)  # not reached: _refused raises

    def _evidence(self, entry: IndexEntry, project: str) -> Evidence:
        # What this run accepted counts as memory too: serve checks a page again and again,
        # and must never go back below what it has already served.
        known = (entry.remembered.get(project), entry.seen.get(project))
        memory = [serial for serial in known if serial is not None]
        ev: dict[str, object] = {"remembered": max(memory) if memory else None}
        if entry.changelog is not None:
            for thread in self._summary_threads:
                thread.join()
            if self.page_ttl is not None and entry.renew_changelog is not None:
                self._renew_summary(entry)
            if entry.summary is not None:
                summary = entry.summary
                ev.update(
                    changelog_available=True,
                    changelog_required=summary.required(project),
                    changelog_low=summary.low,
                    changelog_head=summary.head,
                    changelog_removed=canonicalize_name(project) in summary.removed,
                )
        if entry.origin is not None:
            available, origin_page = self._origin_page(entry, project)
            if available:
                ev["origin_available"] = True
                if origin_page is not None:
                    try:
                        ev["origin_serial"] = page_serial(origin_page, entry.origin)
                    except MalformedPage:
                        ev["origin_serial"] = None
                    ev["origin_fingerprint"] = content_fingerprint(origin_page)
        return Evidence(**ev)  # type: ignore[arg-type]

    def _origin_page(self, entry: IndexEntry, project: str) -> tuple[bool, ProjectPage | None]:
        key = (entry.number, project)
        if key in self._origin_pages:
            return self._origin_pages[key]
        assert entry.origin is not None
        url = f"{entry.origin}{project}/"
        deadline = self.clock() + self.max_wait
        result: tuple[bool, ProjectPage | None] = (False, None)
        backoff = self.first_backoff
        while True:
            t0 = self.clock()
            status: int | None = None
            error: str | None = None
            try:
                result = (True, self._fetch(url, "json", "gzip", authority=True))
                status = 200
                break
            except NotFound:
                result, status = (True, None), 404
                break
            except (MalformedPage, _Transient, AccessDenied) as exc:
                error = str(exc)
                if isinstance(exc, AccessDenied):
                    status = exc.status
                # An origin that refuses the credentials will not accept them later either:
                # unavailable at once, as a changelog answering 401 or 403 is.
                permanent = isinstance(exc, (MalformedPage, AccessDenied))
                if permanent or self.clock() >= deadline:
                    entry.summary_error = entry.summary_error or f"origin {redact(url)}: {error}"
                    break
            finally:
                self._call("origin", "GET", url, status, t0, error)
            self.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        self._origin_pages[key] = result
        return result

    def _call(
        self, authority: str, method: str, url: str, status: int | None, t0: float, err: str | None
    ) -> None:
        with self._lock:
            self.authority_calls.append(
                {
                    "authority": authority,
                    "method": method,
                    "url": redact(url),
                    "status": status,
                    "elapsed_ms": int((self.clock() - t0) * 1000),
                    "error": err,
                }
            )

    def _fetch(
        self, url: str, fmt: Format, enc: Encoding, *, authority: bool = False
    ) -> ProjectPage:
        headers = {"Accept": _ACCEPT[fmt], "Accept-Encoding": enc}
        if authority:
            headers["Cache-Control"] = "no-cache"
        try:
            resp = self.session.get(url, headers=headers, timeout=self.transport.timeout)
            body = resp.content
        except TransportError as exc:  # its message names the URL, without credentials
            raise _Transient(str(exc)) from exc
        if resp.status_code == 404 or resp.status_code == 410:
            raise NotFound(url)
        if resp.status_code in (401, 403):
            raise AccessDenied(url, resp.url, resp.status_code, resp.credentials)
        if resp.status_code != 200:
            raise _Transient(f"{redact(url)} answered HTTP {resp.status_code}")
        return parse_page(
            body,
            content_type=resp.headers.get("Content-Type", ""),
            url=resp.url,
            headers=resp.headers,
        )

    # -- files ------------------------------------------------------------------------------

    def _rewrite_for(self, entry: IndexEntry, page: ProjectPage) -> Callable[[str], str]:
        """The proxy URL of each file the page lists. All of them are registered at once,
        under one lock (a page can list thousands); the page's hash dicts are shared, not
        copied (nothing changes them), to keep a big page's registry small."""
        proxied: dict[str, str] = {}
        base = f"{self.proxy_base}/f/"
        with self._lock:
            for dist in page.files:
                meta = dist.core_metadata
                file_id = self._register(
                    dist.url,
                    dist.filename,
                    _own_dict(dist.hashes),
                    _own_dict(meta) if isinstance(meta, dict) else {},
                    entry,
                )
                # (A URL listed twice: the last file wins, for its entry and its link.)
                proxied[dist.url] = f"{base}{file_id}/{_quote(dist.filename)}"

        def rewrite(url: str) -> str:
            found = proxied.get(url)
            if found is not None:
                return found
            filename = url.rsplit("/", 1)[-1].split("?")[0]
            file_id = self.register_file(url, filename, {}, {}, entry)
            return f"{base}{file_id}/{urllib.parse.quote(filename)}"

        return rewrite

    def register_file(
        self,
        url: str,
        filename: str,
        hashes: dict[str, str],
        metadata_hashes: dict[str, str],
        entry: IndexEntry,
    ) -> int:
        with self._lock:
            return self._register(url, filename, hashes, metadata_hashes, entry)

    def _register(
        self,
        url: str,
        filename: str,
        hashes: dict[str, str],
        metadata_hashes: dict[str, str],
        entry: IndexEntry,
    ) -> int:
        file_id = self._file_ids.get(url)
        if file_id is None:
            file_id = len(self._file_ids)
            self._file_ids[url] = file_id
        self.files[file_id] = FileEntry(url, filename, hashes, metadata_hashes, entry)
        return file_id

    def fetch_file(self, file_id: int, name: str) -> tuple[IO[bytes], int]:
        """A listed file (or its PEP 658 metadata), verified against the page's hashes.

        The bytes are spooled to disk while hashed and only then handed to pip, so a wrong or
        truncated file can be fetched again instead of reaching pip (a page can be fresher than
        the file host, DESIGN.md). Memory stays flat whatever the file's size.
        """
        entry = self.files.get(file_id)
        if entry is None:
            raise NotFound(name)
        if name == entry.filename:
            url, expected = entry.url, entry.hashes
        elif name == entry.filename + ".metadata":
            url, expected = _metadata_url(entry.url), entry.metadata_hashes
        else:
            raise NotFound(name)
        hooks = self.prefetcher
        ready = hooks.file_ready(entry, name, url, expected) if hooks is not None else None
        if ready is not None:
            return ready
        with self._lock:
            lock = self._file_locks.setdefault(url, threading.Lock())
        # One download per file at a time: a second request for it (uv asks for a wheel's
        # ranges one by one) waits for the first and is then answered from the cache.
        with lock:
            kept = self.file_cache.get(expected) if self.file_cache is not None else None
            if kept is not None:
                if hooks is not None:
                    hooks.file_seen(entry, name, url, expected, kept[0])
                return kept
            return self._fetch_file(entry, name, url, expected)

    def _fetch_file(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int]:
        hooks = self.prefetcher
        deadline = self.clock() + self.max_wait
        backoff = self.first_backoff
        last_report = self.clock()
        while True:
            try:
                handle, size = self._download(url, entry, expected)
                if hooks is not None:
                    hooks.file_seen(entry, name, url, expected, handle)
                return handle, size
            except NotFound:
                problem = f"{redact(url)} answered 404"
            except _Transient as exc:
                problem = str(exc)
            except AccessDenied as exc:
                # Credentials do not arrive by waiting. A 403 is waited out (below): object
                # stores answer 403 for a file not stored yet.
                what = f"{name} on {netloc_of(exc.final_url)}"
                self._refused(
                    Refusal(
                        entry.filename, entry.index.display, ACCESS_DENIED, None, None,
                        exc.reason(what),
                    )
                )
            now = self.clock()
            if now >= deadline:
                self._refused(
                    Refusal(
                        entry.filename,
                        entry.index.display,
                        "FILE",
                        None,
                        None,
                        f"{problem}; still failing after {self.max_wait:g} s",
                    )
                )
            if now - last_report >= PROGRESS_EVERY:
                last_report = now
                self.say(f"waiting for {name}: {problem} ({deadline - now:.0f} s left)")
            self.sleep(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, self.max_backoff)

    def _download(
        self, url: str, entry: FileEntry, expected: dict[str, str]
    ) -> tuple[IO[bytes], int]:
        auth = None
        creds = credentials_of(entry.index.upstream)
        if creds and netloc_of(url) == netloc_of(entry.index.upstream):
            auth = creds
        hashers = {
            name: hashlib.new(name) for name in expected if name in hashlib.algorithms_available
        }
        cache = self.file_cache
        # Handed to the caller. A spool in the file cache's directory makes keeping the file
        # once verified a link, not a copy made while the client waits.
        spool = cache.spool() if cache is not None else None
        if spool is None:
            spool = tempfile.TemporaryFile(prefix="safe-pip-")  # noqa: SIM115
        size = 0
        try:
            with self.session.get(
                url,
                stream=True,
                auth=auth,
                timeout=self.transport.timeout,
            ) as resp:
                if resp.status_code in (404, 410):
                    raise NotFound(url)
                if resp.status_code == 401:
                    raise AccessDenied(url, resp.url, 401, resp.credentials)
                if resp.status_code != 200:
                    raise _Transient(f"{redact(url)} answered HTTP {resp.status_code}")
                for chunk in resp.iter_content(chunk_size=256 * 1024):
                    spool.write(chunk)
                    size += len(chunk)
                    for hasher in hashers.values():
                        hasher.update(chunk)
        except TransportError as exc:  # its message names the URL, without credentials
            spool.close()
            raise _Transient(str(exc)) from exc
        except BaseException:
            spool.close()
            raise
        for name, hasher in hashers.items():
            if hasher.hexdigest() != expected[name].lower():
                spool.close()
                raise _Transient(f"{redact(url)}: {name} does not match the page's hash")
        if cache is not None:
            cache.adopt(expected, spool, size)
        spool.seek(0)
        return spool, size

    def unproxy(self, text: str) -> str:
        """Text pip wrote (a lock file, a report) with the guard's URLs put back as the index's.

        Credentials are never written back: lock files travel in git.
        """
        with self._lock:
            files = dict(self.files)
            indexes = list(self.indexes)
        for file_id, entry in files.items():
            proxied = f"{self.proxy_base}/f/{file_id}/{urllib.parse.quote(entry.filename)}"
            text = text.replace(proxied, strip_credentials(entry.url))
        for index in indexes:
            proxied, upstream = self.index_url(index), strip_credentials(index.upstream)
            text = text.replace(proxied, upstream)
            text = text.replace(proxied.rstrip("/"), upstream.rstrip("/"))
        return text

    # -- the run's record ---------------------------------------------------------------------

    def report(self) -> dict[str, object]:
        with self._lock:
            return {
                # A prefetch still under way when the run ended has no verdict yet.
                "pages": [
                    {**asdict(r), "verdict": r.verdict or "UNFINISHED"} for r in self.records
                ],
                "authority_calls": list(self.authority_calls),
                "refusals": [asdict(r) for r in self.refusals],
            }


#: File names ``urllib.parse.quote`` leaves as they are (wheel names nearly always are).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.\-~/]*")


def _quote(filename: str) -> str:
    return filename if _UNQUOTED.fullmatch(filename) else urllib.parse.quote(filename)


def _own_dict(mapping: Mapping[str, str]) -> dict[str, str]:
    return mapping if isinstance(mapping, dict) else dict(mapping)


def _metadata_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path + ".metadata"))


def iter_file(handle: IO[bytes], size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """Read a spooled file back in chunks (the proxy writes them to pip's socket)."""
    left = size
    while left > 0:
        data = handle.read(min(chunk, left))
        if not data:
            break
        left -= len(data)
        yield data
