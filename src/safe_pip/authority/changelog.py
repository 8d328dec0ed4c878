"""The changelog authority: one journal summary per run, at a bounded number of calls.

Why bounded cost: the index allows about 3,600 XML-RPC calls an hour per address, so a run
asks the journal a fixed number of times (two calls cold, one warm), never once per project.
What is kept of the journal, and why, is in :mod:`safe_pip.index.journal`; the calls are made
by :class:`~safe_pip.authority.changelog_client.ChangelogClient`, also importable from here.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from safe_pip.authority.changelog_client import DEFAULT_PAGE_SIZE, CallRecord, ChangelogClient
from safe_pip.authority.retry import retry_transient
from safe_pip.authority.state import StateStore
from safe_pip.errors import AuthorityError, SafePipError
from safe_pip.index.journal import (
    ChangelogEntry,
    FileEvent,
    JournalSummary,
    fold_content_changes,
)

__all__ = ["CallRecord", "ChangelogAuthority", "ChangelogClient", "Mode"]

logger = logging.getLogger("safe_pip")

_T = TypeVar("_T")

#: How a summary was obtained in this run, for the report.
Mode = Literal["cold", "warm", "warm-then-cold"]


class ChangelogAuthority:
    """Builds one :class:`JournalSummary` per run at a bounded number of calls.

    Warm (a summary is cached in the store): one ``changelog_since_serial(cached.head)``;
    more only when a full page came back. If the new entries exceed ``cold_window`` (the
    cache is old), it starts over cold rather than page through the whole backlog.
    Cold: ``changelog_last_serial`` then ``changelog_since_serial(G - cold_window)``.

    Transient errors are retried with backoff (0.5 s doubling, at most 5 s per sleep) until
    ``max_wait`` seconds have passed since the first attempt; permanent ones raise at once.
    The deadline is checked between attempts, so one call's own timeout may run past it.

    ``keep_files``: keep each project's file events too (for an index whose pages carry no
    serial and are judged by what they list); a cached summary without them is started over
    cold, since a window without its events cannot prove a page fresh.

    The cached summary is an optimisation: a state store that cannot be read or written
    costs a warning and a cold start, never the authority.

    :meth:`summary` is thread-safe and computed once: later callers get the same summary,
    or the same exception.
    """

    def __init__(
        self,
        client: ChangelogClient,
        store: StateStore,
        index_url: str,
        *,
        max_wait: float,
        cold_window: int = 50_000,
        page_size: int = DEFAULT_PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        keep_files: bool = False,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._client = client
        self._store = store
        self._index_url = index_url
        self._max_wait = max(0.0, max_wait)
        self._cold_window = max(0, cold_window)
        self._page_size = page_size
        self._sleep = sleep
        self._clock = clock
        self.keep_files = keep_files
        self._lock = threading.Lock()
        self._keep_lock = threading.Lock()
        self._kept = False
        self._done = False
        self._result: JournalSummary | None = None
        self._error: Exception | None = None
        self._deadline = 0.0
        self.calls = 0  #: XML-RPC calls made (every attempt, including failed ones)
        self.mode: Mode | None = None  #: how the summary was built (after :meth:`summary`)

    @property
    def authority(self) -> str:
        """The authority's name in messages (``changelog <url>``)."""
        return self._client.authority

    def summary(self, *, keep: bool = True) -> JournalSummary:
        """The journal summary for this run (computed by the first caller, then reused).

        ``keep``: save it in the store before returning (:meth:`keep`); with False the caller
        keeps it later, so that what waits for the summary does not wait for the disk too.
        """
        with self._lock:
            if not self._done:
                try:
                    self._result = self._compute()
                except Exception as exc:
                    self._error = exc
                    self._done = True
                    raise
                self._done = True
            if self._error is not None:
                raise self._error
            assert self._result is not None
            result = self._result
        if keep:
            self.keep()
        return result

    def keep(self) -> None:
        """Save this run's summary in the store, once; nothing if there is none (yet).

        The cached summary is an optimisation: a store that cannot be written costs a warning.
        """
        with self._keep_lock:
            if self._kept or self._result is None:
                return
            self._kept = True
            try:
                self._store.save_journal(self._index_url, self._result)
            except (SafePipError, OSError) as exc:
                logger.warning("could not save the changelog summary: %s", exc)

    # -- internals -----------------------------------------------------------------------------

    def _compute(self) -> JournalSummary:
        self._deadline = self._clock() + self._max_wait
        try:
            cached = self._store.load_journal(self._index_url)
        except SafePipError as exc:  # e.g. a symlink planted for the cache: refused, not read
            logger.warning("not using the cached changelog summary: %s", exc)
            cached = None
        summary: JournalSummary | None = None
        if cached is not None and self.keep_files and cached.files is None:
            cached = None  # its window's file events were not kept: start over cold
        if cached is not None:
            summary = self._warm(cached)
            self.mode = "warm" if summary is not None else "warm-then-cold"
        if summary is None:
            summary = self._cold()
            if self.mode is None:
                self.mode = "cold"
        return summary

    def _warm(self, cached: JournalSummary) -> JournalSummary | None:
        """Fold new entries into ``cached``; None when the backlog is too long (go cold)."""
        content = dict(cached.content_serials)
        removed = set(cached.removed)
        files = self._files(cached)
        head = cached.head
        fetched = 0
        while True:
            rows = self._retrying(functools.partial(self._client.since_serial, head))
            head = self._fold(rows, head, content, removed, files)
            fetched += len(rows)
            if len(rows) < self._page_size:
                return JournalSummary(cached.low, head, content, frozenset(removed), files)
            if fetched >= self._cold_window:
                logger.info(
                    "cached changelog is %d+ entries old; starting afresh", fetched
                )
                return None

    def _cold(self) -> JournalSummary:
        """Ask for the global serial, then read the last ``cold_window`` entries."""
        global_serial = self._retrying(self._client.last_serial)
        low = max(0, global_serial - self._cold_window)
        content: dict[str, int] = {}
        removed: set[str] = set()
        files = self._files(None)
        head = low
        while head < global_serial:
            rows = self._retrying(functools.partial(self._client.since_serial, head))
            head = self._fold(rows, head, content, removed, files)
            if len(rows) < self._page_size:
                break
        return JournalSummary(low, head, content, frozenset(removed), files)

    def _files(self, cached: JournalSummary | None) -> dict[str, list[FileEvent]] | None:
        if not self.keep_files:
            return None
        if cached is None or cached.files is None:
            return {}
        return {name: list(events) for name, events in cached.files.items()}

    def _fold(
        self,
        rows: list[ChangelogEntry],
        since: int,
        content: dict[str, int],
        removed: set[str],
        files: dict[str, list[FileEvent]] | None,
    ) -> int:
        try:
            return fold_content_changes(rows, since, content, removed, files)
        except ValueError as exc:
            raise AuthorityError(
                self.authority, f"broken changelog: {exc}", permanent=True
            ) from None

    def _retrying(self, call: Callable[[], _T]) -> _T:
        """Run ``call``, retrying transient AuthorityErrors until the deadline."""
        attempts = 0

        def attempt() -> _T:
            nonlocal attempts
            attempts += 1
            self.calls += 1
            return call()

        try:
            return retry_transient(attempt, self._deadline, clock=self._clock, sleep=self._sleep)
        except AuthorityError as exc:
            if exc.permanent:
                raise
            raise AuthorityError(
                exc.authority,
                f"{exc.reason} (gave up after {attempts} attempt"
                f"{'s' if attempts != 1 else ''} in {self._max_wait:g} s)",
                permanent=False,
            ) from exc
