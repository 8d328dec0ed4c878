"""How the guard's waits are paced: one ``Timing`` shared by its parts, so that a change made
once (``serve`` sets ``sleep`` and ``page_ttl`` after set-up, tests set a clock) reaches all."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: How often a wait is reported on stderr (a calm rate, not once per retry).
PROGRESS_EVERY = 10.0


@dataclass
class Timing:
    max_wait: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: The first pause after a failed round, doubled each round up to ``max_backoff``.
    first_backoff: float = 0.2
    #: The longest pause between changelog, origin and file retries (PyPI allows 3,600
    #: changelog calls an hour).
    max_backoff: float = 1.0
    #: The longest pause between two rounds of a stale page's copies: a purge that reaches
    #: the last edge is then seen within about this long (with 1 s, half the purges waited
    #: longer). Never above ``max_backoff``.
    page_backoff: float = 0.5
    #: How long a verdict (a page proven fresh, or a refusal) is reused. None: for the whole
    #: run, which is right for one install. ``serve`` runs for days, so it re-checks a page
    #: (and re-reads the journal) once its verdict is older than this.
    page_ttl: float | None = None

    def __post_init__(self) -> None:
        self.page_backoff = min(self.page_backoff, self.max_backoff)
