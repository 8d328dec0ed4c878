"""What the index says, read from its changelog at a bounded number of calls.

The index allows about 3,600 XML-RPC calls an hour per address, so a check asks the journal
a fixed number of times whatever the number of projects: ``changelog_last_serial`` once,
``changelog_since_serial`` once per 50,000 entries of the window, ``list_packages_with_serial``
once for ``--all``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from safe_pip.authority.changelog_client import DEFAULT_PAGE_SIZE, ChangelogClient
from safe_pip.authority.retry import retry_transient
from safe_pip.index.asof import AsOf, find_point
from safe_pip.index.journal import ChangelogEntry, is_content_change
from safe_pip.mirrors.judge import Upstream

__all__ = ["DEFAULT_WINDOW", "EXTEND_CALLS", "Journal", "Reader"]

_T = TypeVar("_T")

#: Entries read by default: the window the guard reads cold.
DEFAULT_WINDOW = 50_000
#: For ``--all``, at most this many more calls reach back before the window for projects the
#: mirror has at an older serial than the index (to tell content changes from role entries).
EXTEND_CALLS = 20


@dataclass
class Journal:
    """The entries of ``(low, head]`` by normalised project, oldest first."""

    low: int
    head: int
    entries: dict[str, list[ChangelogEntry]] = field(default_factory=dict)
    listed: dict[str, int] | None = None  # list_packages_with_serial, for --all

    def add(self, rows: Iterable[ChangelogEntry]) -> None:
        for row in rows:
            if row.serial > self.head:
                self.entries.setdefault(row.name, []).append(row)
                self.head = row.serial

    def selected(self) -> list[str]:
        """The projects to check: every listed one (``--all``), else those with a content
        change in the window."""
        if self.listed is not None:
            return sorted(set(self.listed) | self._changed())
        return sorted(self._changed())

    def _changed(self) -> set[str]:
        return {
            name
            for name, rows in self.entries.items()
            if any(is_content_change(r.action) for r in rows)
        }

    def upstream(self, project: str) -> Upstream:
        listed = None if self.listed is None else self.listed.get(project)
        return Upstream(self.low, self.head, tuple(self.entries.get(project, ())), listed)


class Reader:
    """Reads the journal through one client, retrying what may pass within ``max_wait``."""

    def __init__(
        self,
        client: ChangelogClient,
        *,
        max_wait: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock
        self.calls = 0
        #: rows one ``changelog_since_serial`` answers: PyPI's 50,000, or more if seen
        self.rows_per_call = DEFAULT_PAGE_SIZE

    def window(self, since: AsOf | None, *, everything: bool) -> Journal:
        """The journal after ``since`` (default: the last 50,000 entries); with
        ``everything``, every project the index lists, with its last serial."""
        head = self._retrying(self.client.last_serial)
        if since is None:
            low = max(0, head - DEFAULT_WINDOW)
        elif since.moment is not None:
            low = find_point(since.moment, head, self._since)
        else:
            assert since.serial is not None
            low = min(since.serial, head)
        journal = Journal(low, low)
        self.read_to(journal, head)
        if everything:
            journal.listed = self._retrying(self.client.packages_with_serial)
        return journal

    def read_to(self, journal: Journal, target: int | None = None) -> None:
        """Read on from the journal's head: to ``target``, or one call when None."""
        while True:
            before = journal.head
            journal.add(self._since(journal.head))
            if journal.head == before or target is None or journal.head >= target:
                return

    def reach_back(self, journal: Journal, low: int, *, calls: int | None = None) -> None:
        """Read the entries of ``(low, journal.low]`` too, in at most ``calls`` calls
        (:data:`EXTEND_CALLS`): the window then starts at ``low``, or as far back as that
        many calls of the size the index answers reach. The journal reads only forwards, so
        a stretch that takes more calls (an index answering fewer rows a call) is not kept
        at all: a window has no gaps."""
        calls = EXTEND_CALLS if calls is None else calls
        start = max(low, journal.low - calls * self.rows_per_call)
        if start >= journal.low:
            return
        older = Journal(start, start)
        for _ in range(calls + 1):  # one more: a short first page
            answered = self._since(older.head)
            rows = [r for r in answered if r.serial <= journal.low]
            before = older.head
            older.add(rows)
            if older.head >= journal.low or older.head == before or len(rows) < len(answered):
                break
        else:
            return
        for name, rows in older.entries.items():
            journal.entries[name] = rows + journal.entries.get(name, [])
        journal.low = start

    def _since(self, serial: int) -> list[ChangelogEntry]:
        rows = self._retrying(functools.partial(self.client.since_serial, serial))
        self.rows_per_call = max(self.rows_per_call, len(rows))
        return rows

    def _retrying(self, call: Callable[[], _T]) -> _T:
        """Run ``call``, retrying transient failures (0.5 s doubling, at most 5 s a sleep)
        until ``max_wait`` has passed since this call began."""

        def attempt() -> _T:
            self.calls += 1
            return call()

        deadline = self.clock() + self.max_wait
        return retry_transient(attempt, deadline, clock=self.clock, sleep=self.sleep)
