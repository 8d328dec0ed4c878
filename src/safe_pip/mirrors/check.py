"""A mirror check: read the index's journal, read the mirror's pages, judge each, and (for
devpi) have the wrong ones refetched and judge them again.

The journal is read first and the pages after, so a page newer than the journal read is one
the mirror fetched meanwhile: before calling a page ``ahead``, the journal is read on once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from safe_pip.index.asof import AsOf
from safe_pip.mirrors.judge import Seen, judge
from safe_pip.mirrors.pages import MirrorPages
from safe_pip.mirrors.upstream import Journal, Reader
from safe_pip.report.mirror import MirrorFinding, MirrorKind, MirrorResult, Refreshed

__all__ = ["MirrorCheck", "Progress"]

#: What ``--refresh`` asks devpi to refetch: the kinds a refetch from upstream can mend.
_REFRESHABLE = {MirrorKind.BEHIND, MirrorKind.MISSING}


@dataclass
class Progress:
    """Pages done of pages to read, and findings so far (for a progress line)."""

    done: int
    total: int
    findings: int


class MirrorCheck:
    """Check one mirror against the journal ``reader`` reads."""

    def __init__(
        self,
        pages: MirrorPages,
        reader: Reader,
        *,
        on_progress: Callable[[Progress], None] = lambda progress: None,
        clock: Callable[[], float] = time.monotonic,
        complete: bool = False,
    ) -> None:
        self.pages = pages
        #: the mirror carries every file of the index (``--complete-mirror``): a page
        #: without a serial that lacks an added file is then behind, not unverifiable
        self.complete = complete
        self.reader = reader
        self.on_progress = on_progress
        self.clock = clock

    def run(self, since: AsOf | None, *, everything: bool, refresh: bool) -> MirrorResult:
        """The findings; raises :class:`~safe_pip.errors.AuthorityError` when the journal
        cannot be read (nothing is judged then)."""
        start = self.clock()
        journal = self.reader.window(since, everything=everything)
        projects = journal.selected()
        seen: dict[str, Seen] = {}
        findings: dict[str, MirrorFinding] = {}
        progress = Progress(0, len(projects), 0)
        for project, answer in self.pages.read_all(projects):
            finding = self._judge(project, answer, journal)
            if finding is not None:
                # Only these may be judged again: a full audit of a big index must not keep
                # every page's file list.
                seen[project] = answer
                findings[project] = finding
            progress.done += 1
            progress.findings = len(findings)
            self.on_progress(progress)
        if everything:
            self._reach_back(journal, seen, findings)
        if any(f.kind is MirrorKind.AHEAD for f in findings.values()):
            self.reader.read_to(journal)  # one call: did the index move on meanwhile?
            self._again(journal, seen, findings, [MirrorKind.AHEAD])
        result = MirrorResult(
            mirror=self.pages.display,
            changelog=self.reader.client.url,
            selection="all" if everything else "since" if since is not None else "window",
            low=journal.low,
            head=journal.head,
            projects=len(projects),
        )
        if refresh:
            result.refreshed = self._refresh(journal, findings)
        result.findings = list(findings.values())
        result.seconds = self.clock() - start
        return result

    def _judge(self, project: str, seen: Seen, journal: Journal) -> MirrorFinding | None:
        return judge(project, seen, journal.upstream(project), complete=self.complete)

    def _reach_back(
        self, journal: Journal, seen: dict[str, Seen], findings: dict[str, MirrorFinding]
    ) -> None:
        """Pages behind the index's listed serial from before the window: read the journal
        back to the oldest of them (bounded), then judge those again."""
        undecided = [
            f.mirror_serial
            for f in findings.values()
            if f.kind is MirrorKind.UNVERIFIABLE and f.mirror_serial is not None
        ]
        if undecided:
            self.reader.reach_back(journal, min(undecided))
            self._again(journal, seen, findings, [MirrorKind.UNVERIFIABLE])

    def _again(
        self,
        journal: Journal,
        seen: dict[str, Seen],
        findings: dict[str, MirrorFinding],
        kinds: list[MirrorKind],
    ) -> None:
        for project in [p for p, f in findings.items() if f.kind in kinds]:
            finding = self._judge(project, seen[project], journal)
            if finding is None:
                del findings[project]
            else:
                findings[project] = finding

    def _refresh(
        self, journal: Journal, findings: dict[str, MirrorFinding]
    ) -> list[Refreshed]:
        """Ask the mirror to refetch each project it has wrong (``jobs`` at a time, as the
        pages were read), then judge it again."""
        befores = {p: f for p, f in sorted(findings.items()) if f.kind in _REFRESHABLE}
        wrong = list(befores)

        def again(project: str) -> MirrorFinding | None:
            before = befores[project]
            failure = self.pages.refresh(project)
            if failure is None:
                return self._judge(project, self.pages.read(project), journal)
            return replace(before, message=f"{before.message}; refresh failed: {failure}")

        refreshed = []
        with ThreadPoolExecutor(self.pages.jobs, thread_name_prefix="mirror-refresh") as pool:
            for project, after in zip(wrong, pool.map(again, wrong), strict=True):
                refreshed.append(Refreshed(project, befores[project].kind, after))
                if after is None:
                    del findings[project]
                else:
                    findings[project] = after
        return refreshed
