"""The errors of the guard's HTTP client: every failure of a request, at one boundary.

requests, urllib3 and the socket layer each raise their own; :func:`translate` turns them into
a :class:`TransportError` whose message names the URL that failed, without credentials (and a
library's message quoting a proxy URL gets its user-info masked).
"""

from __future__ import annotations

import re
import socket
import ssl

import requests.exceptions
import urllib3.exceptions

from safe_pip.net.urls import redact

#: requests' limit (and pip's).
MAX_REDIRECTS = 30


class TransportError(Exception):
    """A request that got no HTTP answer. ``str()`` names the URL (without credentials)."""


class ConnectFailed(TransportError):
    """No connection, or the connection broke before the answer was complete."""


class TimedOut(ConnectFailed):
    """The server (or proxy) did not answer within the timeout."""


class TLSFailed(TransportError):
    """The TLS handshake failed: an untrusted or wrong certificate, or a bad client cert."""


class BadURL(TransportError):
    """A URL this client cannot request (no host, an unknown scheme, a bad proxy)."""


class TooManyRedirects(TransportError):
    """More than :data:`MAX_REDIRECTS` redirects."""


_USERINFO = re.compile(r"(?<=://)[^/@\s'\"]+@")


def _scrub(text: str) -> str:
    """A library's message with any URL's user-info masked: it may quote a proxy URL."""
    return _USERINFO.sub("****@", text)


def _timed_out(exc: BaseException) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            return False  # urllib3 derives it from ConnectTimeoutError; it is a refusal
        if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError)):
            return True
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return True
        reason = getattr(exc, "reason", None)
        nested = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = reason if isinstance(reason, BaseException) else nested or exc.__context__  # type: ignore[assignment]
    return False


def _root(exc: BaseException) -> BaseException:
    """The error under requests' and urllib3's wrappers (a refusal, a certificate, a reset)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        if inner is None:
            inner = exc.__cause__
        if inner is None:
            break
        exc = inner
    return exc


def translate(exc: BaseException, url: str) -> TransportError:
    """A requests/urllib3/socket error as the project's own, at the one boundary; it names
    the URL that failed (after redirects, the last one), without credentials."""
    failed = getattr(getattr(exc, "request", None), "url", None)
    where = redact(failed if isinstance(failed, str) and failed else url)
    root = _root(exc)
    detail = _scrub(f"{type(root).__name__}: {root}")
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return TLSFailed(f"{where}: TLS error: {detail}")
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return TooManyRedirects(f"{where}: more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return ConnectFailed(f"{where}: the body does not decode: {detail}")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return ConnectFailed(f"{where}: the answer broke off ({detail})")
    if _timed_out(exc):
        return TimedOut(f"{where}: timed out ({detail})")
    bad = (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
        requests.exceptions.URLRequired,
        requests.exceptions.InvalidHeader,
        ValueError,  # a Location or proxy that does not parse (an unclosed "[")
    )
    if isinstance(exc, bad):
        return BadURL(f"{where}: a bad URL or a bad redirect: {detail}")
    return ConnectFailed(f"{where}: connection failed: {detail}")

