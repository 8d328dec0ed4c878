"""The run's record, as written to the guard report: each page checked, each call to an
authority, and the refusals."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from safe_pip.guard.refusals import Referee


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
    prefetched: bool = False  # checked ahead of pip by the prefetcher


class RunRecord:
    """What one run did, for the guard report. Thread-safe: pip and prefetchers add to it."""

    def __init__(self, referee: Referee) -> None:
        self.pages: list[PageRecord] = []
        self.calls: list[dict[str, object]] = []
        self.referee = referee
        self._lock = threading.Lock()

    def add_page(self, record: PageRecord) -> None:
        with self._lock:
            self.pages.append(record)

    def add_call(
        self,
        authority: str,
        method: str,
        url: str,
        status: int | None,
        elapsed_ms: int,
        error: str | None,
    ) -> None:
        """One call to an authority (``url`` without credentials)."""
        call: dict[str, object] = {
            "authority": authority,
            "method": method,
            "url": url,
            "status": status,
            "elapsed_ms": elapsed_ms,
            "error": error,
        }
        with self._lock:
            self.calls.append(call)

    def trim(self, keep: int = 1000) -> None:
        """A long-running guard keeps only its latest records (the report is per run)."""
        with self._lock:
            for history in (self.pages, self.calls):
                del history[:-keep]
        self.referee.trim(keep)

    def report(self) -> dict[str, object]:
        with self._lock:
            pages = [
                # A prefetch still under way when the run ended has no verdict yet.
                {**asdict(r), "verdict": r.verdict or "UNFINISHED"}
                for r in self.pages
            ]
            calls = list(self.calls)
        with self.referee.lock:
            refusals = [asdict(r) for r in self.referee.refusals]
        return {"pages": pages, "authority_calls": calls, "refusals": refusals}
