"""Each page's verdict, checked once and shared by every caller (pip, prefetchers, serve's
clients) until it expires."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import Referee, Refusal, Refused
from safe_pip.guard.report import PageRecord
from safe_pip.guard.timing import Timing
from safe_pip.index.pages import ProjectPage
from safe_pip.net.urls import redact

#: Checks one page for this record: the page proven acceptable, None if the index has no such
#: project; raises ``Refused``.
Check = Callable[[IndexEntry, str, PageRecord], "ProjectPage | None"]


@dataclass
class ServedPage:
    body: bytes
    content_type: str
    record: PageRecord | None = None  # the check behind the answer (shared by cached answers)


@dataclass
class Checked:
    """One check of a page and its outcome, reused until it expires (``Timing.page_ttl``)."""

    page: ProjectPage | None
    record: PageRecord | None
    at: float
    refusal: Refusal | None = None
    rendered: dict[str, ServedPage] = field(default_factory=dict)  # by format
    told: bool = True  # False: a prefetch's refusal, told only when pip asks for the page


class VerifiedPages:
    """One check per page at a time; thread-safe."""

    def __init__(self, check: Check, referee: Referee, timing: Timing) -> None:
        self._check = check
        self.referee = referee
        self.timing = timing
        self._lock = threading.Lock()
        self._page_locks: dict[tuple[int, str], threading.Lock] = {}
        self._pages: dict[tuple[int, str], Checked] = {}

    def get(self, entry: IndexEntry, project: str) -> Checked:
        """The page's check, made now unless a fresh enough one exists; raises ``Refused``."""
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
            # before: a page pip never asks for is no reason to refuse.
            if not self.referee.quiet:
                with self._lock:
                    tell, checked.told = not checked.told, True
                if tell:
                    self.referee.refuse(checked.refusal)
            raise Refused(checked.refusal)
        return checked

    def prefetch(self, entry: IndexEntry, project: str) -> ProjectPage | None:
        """:meth:`get` ahead of pip: the same check, but a refusal is kept, not told."""
        with self.referee.quietly():
            return self.get(entry, project).page

    def _fresh_enough(self, checked: Checked) -> bool:
        ttl = self.timing.page_ttl
        return ttl is None or self.timing.clock() - checked.at < ttl

    def _recheck(self, entry: IndexEntry, project: str, key: tuple[int, str]) -> Checked:
        url = redact(f"{entry.upstream}{project}/")
        record = PageRecord(url=url, index=entry.display, project=project)
        record.prefetched = self.referee.quiet
        try:
            page = self._check(entry, project, record)
        except Refused as exc:
            quiet = self.referee.quiet
            self._pages[key] = Checked(
                None, record, self.timing.clock(), exc.refusal, told=not quiet
            )
            raise
        checked = Checked(page, record, self.timing.clock())
        self._pages[key] = checked
        return checked
