"""The ``--as-of`` view: the guard's ``page_filter`` that reads each index's journal once and
serves every verified page as it stood at the point (the transformation is in
``safe_pip.index.asof``).

Why one journal read per index and not per project: Warehouse allows about 3,600 XML-RPC calls
an hour, so ``changelog_last_serial`` and ``changelog_since_serial(point)``, paged until the
head, give every project's entries after the point at once. A page newer than the journal read
(published meanwhile) makes the view read on up to it, so a file uploaded during the run is
never taken for an old one.

What cannot be made as of the point is said, never hidden: files whose age cannot be
established are dropped with a warning, files removed after the point are named, and
``--strict`` refuses both (exit 75), as it refuses any view it cannot prove.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from safe_pip.authority.changelog import ChangelogClient
from safe_pip.authority.retry import retry_transient
from safe_pip.errors import AuthorityError, MalformedPage
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import Refusal, Refuser
from safe_pip.index.asof import (
    AsOf,
    Basis,
    JournalAfter,
    PageAtPoint,
    ProjectHistory,
    find_point,
    fold_journal,
    page_as_of,
)
from safe_pip.index.names import brief_list
from safe_pip.index.pages import ProjectPage, page_serial

__all__ = ["AsOfView"]

_T = TypeVar("_T")


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
        self, guard: Refuser, entry: IndexEntry, project: str, page: ProjectPage | None
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

    def _judge(self, guard: Refuser, state: _IndexPoint, project: str, result: PageAtPoint) -> None:
        entry = state.entry
        if result.unknown:
            why = self._why_unknown(state)
            if self.strict:
                guard.refuse(
                    Refusal(
                        project, entry.display, "AS-OF", None, state.point_serial,
                        f"the age of {brief_list(result.unknown)} cannot be established ({why}); "
                        "--strict refuses it",
                    )
                )
            self.say(
                f"warning: --as-of {self.point}: dropped {brief_list(result.unknown)} of {project} "
                f"from {entry.display}: its age cannot be established ({why}; --strict refuses)"
            )
        if result.lost:
            if self.strict:
                guard.refuse(
                    Refusal(
                        project, entry.display, "AS-OF", None, state.point_serial,
                        f"{brief_list(result.lost)} removed after the point cannot be restored; "
                        "--strict refuses a view that is not the one as of the point",
                    )
                )
            self.say(
                f"warning: --as-of {self.point}: {brief_list(result.lost)} of {project} were "
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

    def _load(self, guard: Refuser, state: _IndexPoint, project: str) -> None:
        with state.lock:
            if not state.loaded:
                state.loaded = True
                self._load_locked(state, project)
        if state.refusal is not None:
            guard.refuse(state.refusal)

    def _load_locked(self, state: _IndexPoint, project: str) -> None:
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
                projects = copy.deepcopy(dict(journal.projects))  # readers keep the old one
                head, projects = self._read(
                    state.client, journal.point, journal.head, serial, deadline, projects
                )
                state.journal = JournalAfter(journal.point, head, projects)
            except AuthorityError as exc:
                state.error = f"{state.client.authority}: {exc.reason}"
                state.journal = None
            return state.journal

    def _retrying(self, call: Callable[[], _T], deadline: float) -> _T:
        return retry_transient(call, deadline, clock=self.clock, sleep=self.sleep)

    def _warn_once(self, state: _IndexPoint, key: str, line: str) -> None:
        if key not in state.warned:
            state.warned.add(key)
            self.say(line)

