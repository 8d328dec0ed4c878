"""The XML-RPC client of an index's changelog: ``changelog_last_serial``,
``changelog_since_serial`` and ``list_packages_with_serial``, over the same HTTP session as
everything else.

Why the changelog: XML-RPC calls are POSTs, which the CDN in front of an index does not
cache, so these answer from the index database itself. That makes the journal the one
authority that cannot be stale in the way the project pages are.
"""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from safe_pip.errors import AuthorityError
from safe_pip.index.journal import ChangelogEntry, entry_from_row, is_serial
from safe_pip.net.http import BadURL, Response, Session, TimedOut, TLSFailed, TransportError
from safe_pip.net.urls import strip_credentials

__all__ = ["DEFAULT_PAGE_SIZE", "CallRecord", "ChangelogClient"]

_T = TypeVar("_T")

#: The XML-RPC ``changelog_since_serial`` limit of the reference index (rows per call).
DEFAULT_PAGE_SIZE = 50_000


@dataclass(frozen=True)
class CallRecord:
    """One XML-RPC call, as reported to ``on_call`` (for the guard's report)."""

    method: str
    url: str  # credentials removed
    status: int | None  # HTTP status, None when no response arrived
    elapsed_ms: float
    error: str | None  # None on success


def _scrub(text: str, url: str) -> str:
    """Remove the credentials of ``url`` from ``text`` (library messages may quote them)."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        text = text.replace(userinfo + "@", "")
        for secret in (parts.password, parts.username):
            if secret and len(secret) > 2:
                text = text.replace(secret, "***")
    return text


#: Where a request's credentials came from (``Response.credentials``), as the user knows them.
_SOURCES = {"url": "its URL", "netrc": "netrc", "given": "its URL", "header": "a header"}


def _refused_because(status: int, credentials: str | None) -> str:
    """Why the changelog answered 401 or 403, as far as the credentials go (never them): a
    permanent failure, so the user is told once what to fix instead of a bare status."""
    source = _SOURCES.get(credentials or "")
    if status == 401:
        if source:
            return f"it refused the credentials from {source}"
        return "it needs credentials and none were sent: none in its URL or netrc"
    if source:
        return f"it refused access with the credentials from {source}"
    return "it refused access; no credentials were sent: none in its URL or netrc"


class _CallFailed(Exception):
    """Internal: a call failed; carries what the CallRecord and AuthorityError need."""

    def __init__(self, reason: str, *, permanent: bool, status: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.status = status


class _BadShape(ValueError):
    """Internal: a parsed XML-RPC value that is not what the method returns."""


class ChangelogClient:
    """XML-RPC changelog calls over the caller's :class:`Session`.

    Not :class:`xmlrpc.client.ServerProxy`: it would bypass the session's TLS settings
    (client certificates, CA bundle), proxies and timeouts, which must be the same ones pip
    and the rest of safe-pip use for this index.

    ``url`` is the XML-RPC endpoint (``<index host>/pypi``). Each call is reported to
    ``on_call``; failures raise :class:`AuthorityError` with ``permanent`` set for errors that
    retrying cannot fix (4xx, redirects, XML-RPC faults, unparsable answers) and clear for
    those that may pass (5xx, 408, 429, timeouts, connection errors).
    """

    def __init__(
        self,
        url: str,
        session: Session,
        *,
        timeout: float = 15.0,
        on_call: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self._url = url
        self._display_url = strip_credentials(url)
        self._session = session
        self._timeout = timeout
        self._on_call = on_call
        self.authority = f"changelog {self._display_url}"

    @property
    def url(self) -> str:
        """The endpoint without credentials (safe to print)."""
        return self._display_url

    def last_serial(self) -> int:
        """The index's global serial (``changelog_last_serial``)."""
        return self._call("changelog_last_serial", (), self._to_serial)

    def since_serial(self, n: int) -> list[ChangelogEntry]:
        """Journal rows with serial > ``n``, oldest first, at most one page (index-defined)."""
        if not is_serial(n) or n < 0:
            raise ValueError(f"serial must be a non-negative int, got {n!r}")
        return self._call("changelog_since_serial", (n,), self._to_entries)

    def packages_with_serial(self) -> dict[str, int]:
        """Every project the index lists, normalised, with its last serial
        (``list_packages_with_serial``: one call, however many projects; the index may answer
        from a copy up to an hour old)."""
        return self._call("list_packages_with_serial", (), self._to_packages)

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _to_serial(result: object) -> int:
        if not isinstance(result, int) or isinstance(result, bool) or result < 0:
            raise _BadShape(f"not a serial: {result!r:.80}")
        return result

    @staticmethod
    def _to_entries(result: object) -> list[ChangelogEntry]:
        if not isinstance(result, list):
            raise _BadShape(f"expected a list, got {type(result).__name__}")
        try:
            return [entry_from_row(row) for row in result]
        except ValueError as exc:
            raise _BadShape(str(exc)) from None

    @staticmethod
    def _to_packages(result: object) -> dict[str, int]:
        if not isinstance(result, dict):
            raise _BadShape(f"expected a struct, got {type(result).__name__}")
        packages: dict[str, int] = {}
        for name, serial in result.items():
            if not isinstance(name, str) or not name or not is_serial(serial) or serial < 0:
                raise _BadShape(f"bad package entry {name!r:.80}: {serial!r:.40}")
            key = canonicalize_name(name)
            packages[key] = max(serial, packages.get(key, serial))
        return packages

    def _call(self, method: str, params: tuple[Any, ...], convert: Callable[[Any], _T]) -> _T:
        """POST one XML-RPC request, convert its value, report the call, return the value.

        ``convert`` raises :class:`_BadShape` for a well-formed answer of the wrong shape,
        which is permanent: whatever answers there is not a changelog.
        """
        body = xmlrpc.client.dumps(params, method, allow_none=True).encode("utf-8")
        start = time.monotonic()
        status: int | None = None
        try:
            try:
                response = self._session.post(
                    self._url,
                    data=body,
                    headers={"Content-Type": "text/xml; charset=utf-8", "Accept": "text/xml"},
                    timeout=self._timeout,
                )  # never follows a redirect: a 301/302 would turn the POST into a GET
            except TLSFailed as exc:
                raise _CallFailed(f"TLS error: {exc}", permanent=True, status=None) from exc
            except TimedOut as exc:
                raise _CallFailed(
                    f"timed out after {self._timeout:g} s: {exc}", permanent=False, status=None
                ) from exc
            except BadURL as exc:
                raise _CallFailed(f"bad URL: {exc}", permanent=True, status=None) from exc
            except TransportError as exc:
                raise _CallFailed(
                    f"connection failed: {exc}", permanent=False, status=None
                ) from exc
            status = response.status_code
            self._check_status(response)
            try:
                result = convert(self._parse(response.content, status))
            except _BadShape as exc:
                raise _CallFailed(
                    f"unexpected response: {exc}", permanent=True, status=status
                ) from None
        except _CallFailed as failed:
            reason = _scrub(failed.reason, self._url)
            self._report(method, failed.status, start, reason)
            raise AuthorityError(
                self.authority, f"{method}: {reason}", permanent=failed.permanent
            ) from failed.__cause__
        self._report(method, status, start, None)
        return result

    def _check_status(self, response: Response) -> None:
        """Map the HTTP status to retryable or not (see the class docstring)."""
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"HTTP {status} {response.reason or ''}".rstrip()
        if 300 <= status < 400:
            location = strip_credentials(response.headers.get("Location", "?"))
            raise _CallFailed(f"{reason}, redirected to {location}", permanent=True, status=status)
        if status == 405:
            reason += " (this index has no XML-RPC changelog)"
        elif status in (401, 403):
            reason += f" ({_refused_because(status, response.credentials)})"
        # 408 and 429 say "later"; other 4xx (404, 405, 403 ...) will not change by retrying.
        permanent = 400 <= status < 500 and status not in (408, 429)
        if status < 200:
            permanent = True
        raise _CallFailed(reason, permanent=permanent, status=status)

    @staticmethod
    def _parse(content: bytes, status: int) -> Any:
        """Decode an XML-RPC method response into its single value."""
        try:
            params, _ = xmlrpc.client.loads(content, use_builtin_types=True)
        except xmlrpc.client.Fault as fault:
            raise _CallFailed(
                f"XML-RPC fault {fault.faultCode}: {fault.faultString}",
                permanent=True,
                status=status,
            ) from fault
        except Exception as exc:  # noqa: BLE001 - untrusted bytes: any parser error is garbage
            raise _CallFailed(
                f"unparsable XML-RPC response ({type(exc).__name__}: {exc})",
                permanent=True,
                status=status,
            ) from exc
        if len(params) != 1:
            raise _CallFailed(
                f"unparsable XML-RPC response ({len(params)} values)",
                permanent=True,
                status=status,
            )
        return params[0]

    def _report(self, method: str, status: int | None, start: float, error: str | None) -> None:
        if self._on_call is not None:
            elapsed_ms = (time.monotonic() - start) * 1000.0
            self._on_call(CallRecord(method, self._display_url, status, elapsed_ms, error))
