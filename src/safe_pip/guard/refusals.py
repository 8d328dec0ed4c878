"""Refusals: why the guard refused a view, the exceptions its checks raise, and when a refusal
is told (at once, or, for one a prefetch found, only when pip asks for that page)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn, Protocol

from safe_pip.net.urls import netloc_of, redact

#: The verdict for a request that tried to reach a host other than the guard.
UNGUARDED = "UNGUARDED"
#: The verdict for a page the index would not give (HTTP 401 or 403): refused credentials, or
#: none to send. Not staleness: waiting cannot fix it, so it is refused at once, and told
#: apart from a refused view (pip's own exit code, not 75).
ACCESS_DENIED = "ACCESS-DENIED"


@dataclass(frozen=True)
class Refusal:
    """Why the guard refused a view (one line per refused project on stderr)."""

    project: str
    index: str
    verdict: str
    seen: int | None
    required: int | None
    reason: str

    def __str__(self) -> str:
        if self.verdict == UNGUARDED:
            return f"refused a request to {self.project}: {self.reason}"
        if self.verdict == ACCESS_DENIED:
            return f"the index {self.index} {self.reason}"
        seen = "none" if self.seen is None else str(self.seen)
        required = "unknown" if self.required is None else str(self.required)
        return (
            f"refused {self.project} from {self.index}: {self.verdict}, serial {seen} seen, "
            f"{required} required ({self.reason})"
        )


def denials(refusals: list[Refusal]) -> list[Refusal]:
    """The refusals of access among ``refusals``, the first per index: one line says it (every
    page of an index that refuses the credentials is refused alike)."""
    first: dict[str, Refusal] = {}
    for refusal in refusals:
        if refusal.verdict == ACCESS_DENIED:
            first.setdefault(refusal.index, refusal)
    return list(first.values())


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(str(refusal))


class NotFound(Exception):
    """The index has no such project (passed to pip as a 404, which pip reads as "none")."""


class Transient(Exception):
    """A fetch that may work when tried again (5xx, timeouts, resets, truncated bodies)."""


#: Where the credentials a request carried came from, as the user knows them.
_SOURCES = {
    "url": "the index URL",
    "given": "the index URL",
    "netrc": "netrc",
    "keyring": "the keyring",
    "header": "a header",
}


class AccessDenied(Exception):
    """The index answered 401 or 403: it refused the credentials sent, or needs some.

    ``credentials`` is where those sent came from (``net.auth``'s source), None if none were.
    """

    def __init__(self, url: str, final_url: str, status: int, credentials: str | None) -> None:
        self.url = url
        self.final_url = final_url
        self.status = status
        self.credentials = credentials
        super().__init__(f"{redact(final_url)} answered HTTP {status}")

    def reason(self, project: str) -> str:
        """What the refusal line says after the index's name (never a credential)."""
        source = _SOURCES.get(self.credentials or "")
        what = f"HTTP {self.status} for {project}"
        moved = netloc_of(self.final_url) != netloc_of(self.url)
        if moved:
            what += f" at {redact(self.final_url)}"
        # Credentials stay with their host: after a redirect elsewhere none are sent, which
        # is a different story from having none at all.
        none = (
            f"credentials are not sent to {netloc_of(self.final_url)} after a redirect"
            if moved
            else "none in the index URL, netrc or the keyring"
        )
        if self.status == 401:
            if source:
                return f"refused the credentials from {source} ({what})"
            return f"needs credentials and none were available ({what}; {none})"
        if source:
            return f"refused access with the credentials from {source} ({what})"
        return f"refused access; no credentials were sent ({what}; {none})"


class Refuser(Protocol):
    """What may refuse the view (the guard, or its referee): a ``page_filter`` is given one."""

    def refuse(self, refusal: Refusal) -> NoReturn: ...


class Referee:
    """Tells each refusal of the run once (``on_refuse``) and keeps them for the report.

    A page pip never asks for is no reason to refuse: a refusal found while a prefetch checks
    a page ahead of pip (:meth:`quietly`) is only raised, kept with the page, and told when
    pip asks for it.
    """

    def __init__(self, on_refuse: Callable[[Refusal], None]) -> None:
        self.on_refuse = on_refuse
        self.refusals: list[Refusal] = []
        self.lock = threading.Lock()
        self._quiet = threading.local()

    @property
    def quiet(self) -> bool:
        """Whether this thread is checking a page ahead of pip."""
        return bool(getattr(self._quiet, "on", False))

    @contextmanager
    def quietly(self) -> Iterator[None]:
        self._quiet.on = True
        try:
            yield
        finally:
            self._quiet.on = False

    def refuse(self, refusal: Refusal) -> NoReturn:
        if self.quiet:
            raise Refused(refusal)  # a prefetch: kept with the page, told when pip asks
        with self.lock:
            self.refusals.append(refusal)
        self.on_refuse(refusal)
        raise Refused(refusal)

    def trim(self, keep: int) -> None:
        with self.lock:
            del self.refusals[:-keep]
