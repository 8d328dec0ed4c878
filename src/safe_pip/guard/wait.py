"""The check of one page: every cached copy asked in turn, round after round, until one is
proven fresh, or ``--max-wait`` is over and the view is refused."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn

from safe_pip.errors import MalformedPage
from safe_pip.guard.authorities import Authorities
from safe_pip.guard.copies import VARIANTS, Encoding, Format, fetch_page
from safe_pip.guard.indexes import IndexEntry, IndexRegistry
from safe_pip.guard.refusals import (
    ACCESS_DENIED,
    AccessDenied,
    NotFound,
    Referee,
    Refusal,
    Transient,
)
from safe_pip.guard.report import PageRecord, RunRecord
from safe_pip.guard.timing import PROGRESS_EVERY, Timing
from safe_pip.index.pages import ProjectPage, content_fingerprint, page_serial
from safe_pip.index.verdict import FILE_EVENTS, Judgement, Verdict, judge, judge_missing
from safe_pip.net.http import Session

logger = logging.getLogger("safe_pip")


class PageWait:
    """Waits out stale cached copies of a page; thread-safe (one check per page at a time is
    the caller's part)."""

    def __init__(
        self,
        session: Session,
        timeout: float | None,
        timing: Timing,
        *,
        strict: bool,
        say: Callable[[str], None],
        indexes: IndexRegistry,
        authorities: Authorities,
        referee: Referee,
        run: RunRecord,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.timing = timing
        self.strict = strict
        self.say = say
        self.indexes = indexes
        self.authorities = authorities
        self.referee = referee
        self.run = run

    def check(self, entry: IndexEntry, project: str, record: PageRecord) -> ProjectPage | None:
        """The page proven acceptable (None: the index has no such project); raises Refused."""
        timing = self.timing
        started = timing.clock()
        url = f"{entry.upstream}{project}/"
        self.run.add_page(record)
        # The first copy is fetched before the evidence is gathered: the run's first pages are
        # asked while the changelog is still being read, and the copy's round trip then
        # overlaps it. Judged by evidence gathered after it was fetched, a copy can only look
        # staler than it is (and is fetched again), never fresher.
        first: ProjectPage | Exception | None
        try:
            first = fetch_page(self.session, url, *VARIANTS[0], timeout=self.timeout)
        except (NotFound, MalformedPage, Transient, AccessDenied) as exc:
            first = exc
        evidence = self.authorities.evidence(entry, project)
        # --max-wait counts from here, so a hanging index (each read bounded by pip's
        # --timeout) cannot stretch the wait by a whole round of copies.
        first_fetch = timing.clock()
        deadline: float | None = None
        backoff = timing.first_backoff
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
                    if first is None:
                        page = fetch_page(self.session, url, fmt, enc, timeout=self.timeout)
                    elif isinstance(first, Exception):
                        failed, first = first, None
                        raise failed
                    else:
                        page, first = first, None
                except NotFound:
                    missing = judge_missing(evidence)
                    if missing is not None:
                        problem = missing
                        continue
                    self._finish(record, started, "NOT-FOUND", None, None, "404")
                    record.variant = f"{fmt}/{enc}"
                    return None
                except (MalformedPage, Transient) as exc:
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
                verdict = judge(serial, fingerprint, evidence, page.files)
                if serial is None:
                    serialless_copies += 1
                else:
                    gave_serial = True
                if verdict.verdict is Verdict.NO_SERIAL and not entry.serialless:
                    unproven = unproven or (verdict, page, fmt, enc)
                    continue
                if verdict.verdict is Verdict.STALE:
                    logger.debug(
                        "%s on %s (%s/%s copy): STALE by %s: %s",
                        project, entry.display, fmt, enc, verdict.authority, verdict.reason,
                    )  # fmt: skip
                    problem = verdict
                    continue
                if verdict.verdict is Verdict.ROLLBACK:
                    rollback = verdict
                    continue
                self._accept(entry, project, record, verdict, started, f"{fmt}/{enc}")
                return page
            if unproven is not None and not gave_serial:
                if serialless_copies == len(VARIANTS):
                    entry.serialless = True
                verdict, page, fmt, enc = unproven
                self._accept(entry, project, record, verdict, started, f"{fmt}/{enc}")
                return page
            if rollback is not None:
                self._refuse(entry, project, record, rollback, started)
            now = timing.clock()
            if deadline is None:
                deadline = first_fetch + timing.max_wait
            if now >= deadline:
                self._refuse(entry, project, record, problem, started)
            if now - last_report >= PROGRESS_EVERY:
                last_report = now
                self.say(_waiting_line(entry, project, problem, deadline - now))
            timing.sleep(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, timing.page_backoff)

    def _accept(
        self,
        entry: IndexEntry,
        project: str,
        record: PageRecord,
        verdict: Judgement,
        started: float,
        variant: str,
    ) -> None:
        self._finish(
            record, started, str(verdict.verdict), verdict.seen, verdict.required, verdict.reason
        )
        record.authority = verdict.authority
        record.variant = variant
        logger.debug(
            "%s on %s (%s copy): %s by %s: %s",
            project, entry.display, variant, verdict.verdict, verdict.authority, verdict.reason,
        )  # fmt: skip
        if verdict.verdict in (Verdict.UNVERIFIED, Verdict.NO_SERIAL):
            if self.strict:
                self._refuse(entry, project, record, verdict, started, strict=True)
            self._warn_once(entry, verdict.verdict)
        if verdict.seen is not None:
            self.indexes.accept(entry, project, verdict.seen)

    def _finish(
        self,
        record: PageRecord,
        started: float,
        verdict: str,
        seen: int | None,
        required: int | None,
        reason: str,
    ) -> None:
        record.verdict = verdict
        record.serial_seen = seen
        record.serial_required = required
        record.reason = reason
        record.elapsed_ms = int((self.timing.clock() - started) * 1000)
        record.finished_at = time.time()

    def _warn_once(self, entry: IndexEntry, verdict: Verdict) -> None:
        if not self.indexes.first_warning(entry, verdict.value):
            return
        judged_by_files = entry.summary is not None and entry.summary.files is not None
        if verdict is Verdict.NO_SERIAL and judged_by_files:
            self.say(
                f"warning: {entry.display} gives no serials; the freshness of its pages "
                "cannot be proven where they lack files the changelog added (filtered, or "
                "behind: --complete-mirror says it filters nothing; --strict refuses such pages)"
            )
        elif verdict is Verdict.NO_SERIAL:
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

    def _refuse(
        self,
        entry: IndexEntry,
        project: str,
        record: PageRecord,
        problem: Judgement | str,
        started: float,
        *,
        strict: bool = False,
    ) -> NoReturn:
        if isinstance(problem, Judgement):
            verdict = str(problem.verdict)
            seen, required, reason = problem.seen, problem.required, problem.reason
            record.authority = problem.authority
            if strict:
                reason = f"{reason}; --strict refuses what is not proven fresh"
        else:
            verdict, seen, required, reason = "STALE", None, None, problem
        if not strict and verdict == "STALE":
            reason = f"{reason}; still stale after {self.timing.max_wait:g} s"
        self._finish(record, started, f"REFUSED ({verdict})", seen, required, reason)
        self.referee.refuse(Refusal(project, entry.display, verdict, seen, required, reason))

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
        self._finish(record, started, f"REFUSED ({ACCESS_DENIED})", None, None, reason)
        self.referee.refuse(Refusal(project, entry.display, ACCESS_DENIED, None, None, reason))


def _waiting_line(entry: IndexEntry, project: str, problem: Judgement | str, left: float) -> str:
    if isinstance(problem, Judgement) and problem.authority == FILE_EVENTS:
        what = problem.reason  # no serial to show: the file the page lacks or still lists
    elif isinstance(problem, Judgement):
        what = f"serial {problem.seen} seen, {problem.required} required"
    else:
        what = problem
    return (
        f"waiting for a fresh page of {project} on {entry.display}: {what} ({left:.0f} s left)"
    )
