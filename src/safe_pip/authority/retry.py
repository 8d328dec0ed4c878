"""One changelog call, tried again while its failure may pass.

A timeout or a 5xx from the journal is waited out rather than read as "no changelog" (it is the
authority every page is judged by); the backoff doubles from 0.5 s to at most 5 s a sleep, so
the retries stay far inside the index's call budget (PyPI allows about 3,600 calls an hour).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from safe_pip.errors import AuthorityError

logger = logging.getLogger("safe_pip")

_T = TypeVar("_T")


def retry_transient(
    call: Callable[[], _T],
    deadline: float,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> _T:
    """``call()``, tried again on a transient ``AuthorityError`` until ``clock()`` reaches
    ``deadline``; a permanent one, or a transient one past the deadline, is raised."""
    delay = 0.5
    while True:
        try:
            return call()
        except AuthorityError as exc:
            if exc.permanent:
                raise
            remaining = deadline - clock()
            if remaining <= 0:
                raise
            logger.debug("%s; retrying in %.1f s", exc, min(delay, remaining))
            sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
