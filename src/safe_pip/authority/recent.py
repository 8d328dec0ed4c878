"""The journal's most recent entries, read whole: what ``safe-pip wait`` asks the changelog.

The journal summary (:mod:`safe_pip.authority.changelog`) keeps one serial per project, which is
enough to judge a page but not to say which files a release has; a release gate needs the
``add … file`` entries themselves. They are read from the newest ``window`` entries at a
bounded cost: ``changelog_last_serial`` and one ``changelog_since_serial`` per 50,000 rows
(PyPI allows 3,600 calls an hour).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from safe_pip.authority.changelog_client import ChangelogClient
from safe_pip.authority.retry import retry_transient
from safe_pip.errors import AuthorityError
from safe_pip.index.journal import ChangelogEntry

_T = TypeVar("_T")

#: How far back a release is looked for: the newest 50,000 entries, one call on PyPI.
RECENT_WINDOW = 50_000


@dataclass(frozen=True)
class RecentJournal:
    """Every journal entry with a serial in ``(low, head]``, oldest first."""

    low: int
    head: int
    entries: tuple[ChangelogEntry, ...]


def read_recent(
    client: ChangelogClient,
    *,
    max_wait: float,
    window: int = RECENT_WINDOW,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RecentJournal:
    """The newest ``window`` entries; transient failures are retried until ``max_wait``,
    permanent ones (a 405 from a mirror, a fault) raise ``AuthorityError`` at once."""
    deadline = clock() + max(0.0, max_wait)

    def retrying(call: Callable[[], _T]) -> _T:
        return retry_transient(call, deadline, clock=clock, sleep=sleep)

    head = retrying(client.last_serial)
    low = since = max(0, head - window)
    entries: list[ChangelogEntry] = []
    while since < head:
        rows = retrying(functools.partial(client.since_serial, since))
        if not rows:
            break
        if rows[0].serial <= since:
            raise AuthorityError(
                client.authority,
                f"broken changelog: asked for serials after {since}, got {rows[0].serial}",
                permanent=True,
            )
        entries += rows
        since = rows[-1].serial
    return RecentJournal(low, max(head, since), tuple(entries))
