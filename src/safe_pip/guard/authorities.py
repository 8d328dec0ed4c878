"""What the guard knows of a page's serial besides its copies: the serials remembered and
accepted, the changelog's summary of the journal, and the origin's own answer."""

from __future__ import annotations

import threading

from packaging.utils import canonicalize_name

from safe_pip.errors import AuthorityError, MalformedPage
from safe_pip.guard.copies import fetch_page
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import AccessDenied, NotFound, Transient
from safe_pip.guard.report import RunRecord
from safe_pip.guard.timing import Timing
from safe_pip.index.pages import ProjectPage, content_fingerprint, page_serial
from safe_pip.index.verdict import Evidence
from safe_pip.net.http import Session
from safe_pip.net.urls import redact


class Authorities:
    """Gathers the ``Evidence`` a page is judged by. Thread-safe."""

    def __init__(
        self, session: Session, timeout: float | None, timing: Timing, run: RunRecord
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.timing = timing
        self.run = run
        self._summary_threads: list[threading.Thread] = []
        #: Set when an index's summary (or why there is none) is known: pages wait for this,
        #: not for the summary to be saved.
        self._summaries_known: list[threading.Event] = []
        self._origin_pages: dict[tuple[int, str], tuple[bool, ProjectPage | None]] = {}

    def start(self, entries: list[IndexEntry]) -> None:
        """Ask the changelogs in the background while pip starts, so no page waits for it."""
        for entry in entries:
            if entry.changelog is not None:
                known = threading.Event()
                thread = threading.Thread(
                    target=self._load_summary, args=(entry, known), daemon=True, name="changelog"
                )
                thread.start()
                self._summary_threads.append(thread)
                self._summaries_known.append(known)

    def finish(self) -> None:
        """Wait for the summaries to be saved (before the process exits)."""
        for thread in self._summary_threads:
            thread.join()

    def _load_summary(self, entry: IndexEntry, known: threading.Event | None = None) -> None:
        assert entry.changelog is not None
        started = self.timing.clock()
        try:
            entry.summary = entry.changelog.summary(keep=False)
            entry.summary_error = None
        except AuthorityError as exc:
            entry.summary = None  # an old summary cannot prove anything newer fresh
            entry.summary_error = str(exc)
        entry.summary_at = started
        if known is not None:
            known.set()
        entry.changelog.keep()

    def _renew_summary(self, entry: IndexEntry, page_ttl: float) -> None:
        """Read the journal again once the summary is older than ``page_ttl`` (serve only).

        One caller renews while the others wait, so the changelog is asked at most once per
        ``page_ttl`` per index, however many clients ask (PyPI allows 3,600 calls an hour).
        """
        assert entry.renew_changelog is not None
        with entry.renew_lock:
            at = entry.summary_at
            if at is not None and self.timing.clock() - at < page_ttl:
                return
            entry.changelog = entry.renew_changelog()
            self._load_summary(entry)

    def forget(self, entry: IndexEntry, project: str) -> None:
        """The origin's answer expires with the verdict it went into."""
        self._origin_pages.pop((entry.number, project), None)

    def evidence(self, entry: IndexEntry, project: str) -> Evidence:
        # What this run accepted counts as memory too: serve checks a page again and again,
        # and must never go back below what it has already served.
        known = (entry.remembered.get(project), entry.seen.get(project))
        memory = [serial for serial in known if serial is not None]
        ev: dict[str, object] = {"remembered": max(memory) if memory else None}
        if entry.changelog is not None:
            for ready in self._summaries_known:
                ready.wait()
            page_ttl = self.timing.page_ttl
            if page_ttl is not None and entry.renew_changelog is not None:
                self._renew_summary(entry, page_ttl)
            if entry.summary is not None:
                summary = entry.summary
                ev.update(
                    changelog_available=True,
                    changelog_required=summary.required(project),
                    changelog_low=summary.low,
                    changelog_head=summary.head,
                    changelog_removed=canonicalize_name(project) in summary.removed,
                    changelog_files=summary.file_events(project),
                    complete_mirror=entry.complete_mirror,
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
        """(whether the origin answered, its page or None if it has no such project)."""
        key = (entry.number, project)
        if key in self._origin_pages:
            return self._origin_pages[key]
        assert entry.origin is not None
        url = f"{entry.origin}{project}/"
        timing = self.timing
        deadline = timing.clock() + timing.max_wait
        result: tuple[bool, ProjectPage | None] = (False, None)
        backoff = timing.first_backoff
        while True:
            t0 = timing.clock()
            status: int | None = None
            error: str | None = None
            try:
                page = fetch_page(
                    self.session, url, "json", "gzip", timeout=self.timeout, authority=True
                )
                result, status = (True, page), 200
                break
            except NotFound:
                result, status = (True, None), 404
                break
            except (MalformedPage, Transient, AccessDenied) as exc:
                error = str(exc)
                if isinstance(exc, AccessDenied):
                    status = exc.status
                # An origin that refuses the credentials will not accept them later either:
                # unavailable at once, as a changelog answering 401 or 403 is.
                permanent = isinstance(exc, (MalformedPage, AccessDenied))
                if permanent or timing.clock() >= deadline:
                    entry.summary_error = entry.summary_error or f"origin {redact(url)}: {error}"
                    break
            finally:
                elapsed_ms = int((timing.clock() - t0) * 1000)
                self.run.add_call("origin", "GET", redact(url), status, elapsed_ms, error)
            timing.sleep(backoff)
            backoff = min(backoff * 2, timing.max_backoff)
        self._origin_pages[key] = result
        return result
