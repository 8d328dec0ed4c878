"""The indexes a guard reaches, numbered in the order added (pip's URLs carry the number),
and the serials accepted on each this run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from safe_pip.authority.changelog import ChangelogAuthority
from safe_pip.index.journal import JournalSummary
from safe_pip.net.urls import redact, strip_credentials


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
    #: declared a complete mirror of its changelog's index (``--complete-mirror``): a page
    #: without a serial that lacks a file the changelog added is stale, not filtered.
    complete_mirror: bool = False

    @property
    def display(self) -> str:
        return redact(self.upstream)


class IndexRegistry:
    """The guard's indexes. Thread-safe: prefetch workers accept serials while pip asks."""

    def __init__(self) -> None:
        self.entries: list[IndexEntry] = []
        self.lock = threading.Lock()

    def add(
        self,
        upstream: str,
        *,
        changelog: ChangelogAuthority | None = None,
        changelog_url: str | None = None,
        origin: str | None = None,
        remembered: dict[str, int] | None = None,
    ) -> IndexEntry:
        upstream = upstream if upstream.endswith("/") else upstream + "/"
        with self.lock:
            for entry in self.entries:
                if entry.upstream == upstream:
                    return entry
            entry = IndexEntry(
                number=len(self.entries),
                upstream=upstream,
                changelog=changelog,
                changelog_url=changelog_url,
                origin=(origin if origin is None or origin.endswith("/") else origin + "/"),
                remembered=dict(remembered or {}),
            )
            self.entries.append(entry)
            return entry

    def get(self, number: int) -> IndexEntry | None:
        return self.entries[number] if 0 <= number < len(self.entries) else None

    def accept(self, entry: IndexEntry, project: str, serial: int) -> None:
        """A page of ``project`` was accepted at ``serial``: never go below it again."""
        with self.lock:
            entry.seen[project] = max(entry.seen.get(project, 0), serial)

    def seen_serials(self, entry: IndexEntry) -> dict[str, int]:
        """The serials accepted on this index so far, copied whole: prefetch workers may still
        be adding to them when the run keeps them."""
        with self.lock:
            return dict(entry.seen)

    def first_warning(self, entry: IndexEntry, key: str) -> bool:
        """Whether ``key`` is warned about for the first time on this index."""
        with self.lock:
            if key in entry.warned:
                return False
            entry.warned.add(key)
            return True

    @staticmethod
    def index_url(entry: IndexEntry, base: str) -> str:
        """The guard's URL for an index, given the proxy's ``base``."""
        return f"{base}/i/{entry.number}/"

    def unproxy(self, text: str, base: str) -> str:
        """``text`` with the guard's index URLs put back as the indexes' (without credentials:
        lock files travel in git)."""
        with self.lock:
            entries = list(self.entries)
        for entry in entries:
            proxied, upstream = self.index_url(entry, base), strip_credentials(entry.upstream)
            text = text.replace(proxied, upstream)
            text = text.replace(proxied.rstrip("/"), upstream.rstrip("/"))
        return text
