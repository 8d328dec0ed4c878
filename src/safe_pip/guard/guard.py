"""The guard: fetches index pages and files for pip, proves them fresh, or refuses.

``Guard`` puts together the parts, each in its own module: the indexes (``indexes``), the
evidence a page is judged by (``authorities``), the wait over a page's cached copies
(``wait``), the verdicts shared by every caller (``verified``), the files and their hashed
downloads (``files``), the refusals (``refusals``) and the run's record (``report``). The
HTTP server that pip talks to is in ``proxy`` and only translates requests to these calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, NoReturn

from safe_pip.authority.changelog import ChangelogAuthority
from safe_pip.guard.authorities import Authorities
from safe_pip.guard.filecache import FileCache
from safe_pip.guard.files import FileEntry, FileKey, FileRegistry, PrefetchHooks
from safe_pip.guard.indexes import IndexEntry, IndexRegistry
from safe_pip.guard.refusals import (
    ACCESS_DENIED,
    UNGUARDED,
    NotFound,
    Referee,
    Refusal,
    Refused,
    Refuser,
    denials,
)
from safe_pip.guard.report import PageRecord, RunRecord
from safe_pip.guard.timing import Timing
from safe_pip.guard.verified import ServedPage, VerifiedPages
from safe_pip.guard.wait import PageWait
from safe_pip.index.pages import JSON_CONTENT_TYPE, ProjectPage, render_html, render_json
from safe_pip.net.http import Session, TransportSettings

# Names other modules take from here (the guard's face), defined in its parts.
__all__ = [
    "ACCESS_DENIED",
    "UNGUARDED",
    "FileEntry",
    "Guard",
    "IndexEntry",
    "NotFound",
    "PageFilter",
    "PageRecord",
    "Refusal",
    "Refused",
    "ServedPage",
    "denials",
]

#: Transforms a verified page before it is served or returned (``--as-of``: ``asofview``); may
#: refuse the view through the ``Refuser`` it is given. ``None`` in and out means the index
#: has no such project.
PageFilter = Callable[[Refuser, IndexEntry, str, "ProjectPage | None"], "ProjectPage | None"]


class Guard:
    """Proves pages fresh for one run. Thread-safe: pip and prefetchers call it at once.

    ``page_filter`` transforms every verified page (``--as-of``); ``file_cache`` keeps
    verified files by sha256 (None: every request downloads). The waits are paced by
    ``timing`` (see ``Timing`` for the backoffs and ``page_ttl``).
    """

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
        page_filter: PageFilter | None = None,
        file_cache: FileCache | None = None,
    ) -> None:
        self.session = session
        self.transport = transport
        self.strict = strict
        self.say = say
        self.timing = Timing(
            max_wait=max_wait,
            clock=clock,
            sleep=sleep,
            first_backoff=first_backoff,
            max_backoff=max_backoff,
            page_backoff=page_backoff,
            page_ttl=page_ttl,
        )
        self.page_filter = page_filter
        #: Set when the guard shuts down: waits end (with a 503) instead of running on.
        self.closing = threading.Event()
        self.index_registry = IndexRegistry()
        self.referee = Referee(on_refuse)
        self.run = RunRecord(self.referee)
        self.authorities = Authorities(session, transport.timeout, self.timing, self.run)
        self.page_wait = PageWait(
            session,
            transport.timeout,
            self.timing,
            strict=strict,
            say=say,
            indexes=self.index_registry,
            authorities=self.authorities,
            referee=self.referee,
            run=self.run,
        )
        self.verified_pages = VerifiedPages(self._check, self.referee, self.timing)
        self.file_registry = FileRegistry(
            session, transport.timeout, self.timing, self.referee, say, file_cache
        )
        self._proxy_base = ""
        #: Warn once per project whose page pip reads and which PEP 792 marks quarantined or
        #: archived (``install``; PEP 792 lets installers warn about both).
        self.status_warnings = False

    # -- set-up -----------------------------------------------------------------------------

    def serve_at(self, base: str) -> None:
        """Where the proxy listens (``http://127.0.0.1:PORT/TOKEN``, or only ``/TOKEN`` when
        clients reach it by another name): every URL handed to pip starts with it."""
        self._proxy_base = base

    def attach_prefetcher(self, prefetcher: PrefetchHooks) -> None:
        """Let file requests take what ``prefetcher`` fetched ahead of pip, and tell it of
        each verified download."""
        self.file_registry.prefetcher = prefetcher

    def add_index(
        self,
        upstream: str,
        *,
        changelog: ChangelogAuthority | None = None,
        changelog_url: str | None = None,
        origin: str | None = None,
        remembered: dict[str, int] | None = None,
    ) -> IndexEntry:
        return self.index_registry.add(
            upstream,
            changelog=changelog,
            changelog_url=changelog_url,
            origin=origin,
            remembered=remembered,
        )

    def start_authorities(self) -> None:
        """Ask the changelogs in the background while pip starts, so no page waits for it."""
        self.authorities.start(self.indexes)

    # -- what the guard holds ---------------------------------------------------------------

    @property
    def indexes(self) -> list[IndexEntry]:
        return self.index_registry.entries

    @property
    def refusals(self) -> list[Refusal]:
        """The refusals told so far, in order."""
        return self.referee.refusals

    @property
    def file_cache(self) -> FileCache | None:
        return self.file_registry.cache

    @property
    def proxy_base(self) -> str:
        return self._proxy_base

    @property
    def page_ttl(self) -> float | None:
        """How long a verdict is reused (None: the whole run); ``serve`` sets it."""
        return self.timing.page_ttl

    @page_ttl.setter
    def page_ttl(self, seconds: float | None) -> None:
        self.timing.page_ttl = seconds

    @property
    def sleep(self) -> Callable[[float], None]:
        """How every wait sleeps; ``serve`` sets one that a shutdown cuts short."""
        return self.timing.sleep

    @sleep.setter
    def sleep(self, sleep: Callable[[float], None]) -> None:
        self.timing.sleep = sleep

    def seen_serials(self, entry: IndexEntry) -> dict[str, int]:
        """The serials accepted on this index so far (a copy)."""
        return self.index_registry.seen_serials(entry)

    def index_url(self, entry: IndexEntry) -> str:
        return self.index_registry.index_url(entry, self._proxy_base)

    # -- pages ------------------------------------------------------------------------------

    def page(self, number: int, project: str, accept: str) -> ServedPage:
        """The page pip asked for, rendered in a format pip accepts; raises Refused/NotFound."""
        entry = self.index_registry.get(number)
        if entry is None:
            raise NotFound(project)
        checked = self.verified_pages.get(entry, project)
        page = checked.page
        if page is None:
            raise NotFound(project)
        if self.status_warnings and page.status in ("quarantined", "archived"):
            self._warn_status(entry, project, page)
        fmt = "json" if "json" in accept else "html"
        served = checked.rendered.get(fmt)
        if served is not None:  # rendered once per check: serve answers many clients
            return served
        serial = entry.seen.get(project)
        rewrite = self.file_registry.rewriter(entry, project, page, self._proxy_base)
        if fmt == "json":
            body = render_json(page, rewrite_url=rewrite, serial=serial)
            served = ServedPage(body, JSON_CONTENT_TYPE, checked.record)
        else:
            body = render_html(page, rewrite_url=rewrite, serial=serial)
            served = ServedPage(body, "text/html; charset=utf-8", checked.record)
        if self.timing.page_ttl is not None:
            # Kept for the next client (serve); one run's pip asks for a page once, and a
            # big page's rendering is as large as its body.
            checked.rendered[fmt] = served
        return served

    def _warn_status(self, entry: IndexEntry, project: str, page: ProjectPage) -> None:
        if not self.index_registry.first_warning(entry, f"status {project}"):
            return
        what = (
            "quarantined (under review, e.g. for malware)"
            if page.status == "quarantined"
            else "archived (no further releases or fixes are expected)"
        )
        reason = f": {page.status_reason}" if page.status_reason else ""
        self.say(f"warning: {project} is {what} on {entry.display}{reason}")

    def verified(self, entry: IndexEntry, project: str) -> ProjectPage | None:
        """A project's page proven acceptable (None if the index has no such project).

        Checked once per run (or per ``page_ttl``) and shared by every caller; raises
        ``Refused``.
        """
        return self.verified_pages.get(entry, project).page

    def prefetch(self, entry: IndexEntry, project: str) -> ProjectPage | None:
        """``verified`` ahead of pip: the same check, but a refusal is kept, not told.

        Raises ``Refused`` (kept for the moment pip asks for the page); None means the index
        has no such project.
        """
        return self.verified_pages.prefetch(entry, project)

    def _check(self, entry: IndexEntry, project: str, record: PageRecord) -> ProjectPage | None:
        self.authorities.forget(entry, project)  # the origin's answer expires with the verdict
        if self.timing.page_ttl is not None:
            self.run.trim()
        page = self.page_wait.check(entry, project, record)
        if self.page_filter is not None:
            page = self.page_filter(self, entry, project, page)
        return page

    # -- refusals ---------------------------------------------------------------------------

    def refuse(self, refusal: Refusal) -> NoReturn:
        """Refuse the view for a reason found outside the page check (a ``page_filter``)."""
        self.referee.refuse(refusal)

    def refuse_host(self, target: str, client: str) -> NoReturn:
        """Refuse a request that reached the guard as a proxy for another host: whatever put
        that host in the client's hands (an option, a configuration key, a tool's own default)
        went around the guard's indexes, so the whole view is refused."""
        self.referee.refuse(
            Refusal(
                target, target, UNGUARDED, None, None,
                f"{client} tried to reach it directly, not through the guard's indexes "
                "(an index, find-links or file host safe-pip did not place)",
            )
        )

    # -- files ------------------------------------------------------------------------------

    def register_file(
        self,
        url: str,
        filename: str,
        hashes: dict[str, str],
        metadata_hashes: dict[str, str],
        entry: IndexEntry,
    ) -> int:
        return self.file_registry.register(url, filename, hashes, metadata_hashes, entry)

    def fetch_file(self, file_id: FileKey, name: str) -> tuple[IO[bytes], int]:
        """A listed file (or its PEP 658 metadata), verified against the page's hashes."""
        return self.file_registry.fetch(file_id, name)

    def download(
        self, url: str, entry: FileEntry, expected: dict[str, str]
    ) -> tuple[IO[bytes], int]:
        """One download of a file, checked against ``expected`` (a prefetch's)."""
        return self.file_registry.download(url, entry, expected)

    # -- the run's record -------------------------------------------------------------------

    def unproxy(self, text: str) -> str:
        """Text pip wrote (a lock file, a report) with the guard's URLs put back as the index's.

        Credentials are never written back: lock files travel in git.
        """
        text = self.file_registry.unproxy(text, self._proxy_base)
        return self.index_registry.unproxy(text, self._proxy_base)

    def report(self) -> dict[str, object]:
        return self.run.report()
