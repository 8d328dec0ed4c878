"""The one place that reaches indexes and authorities over HTTP.

A small client on the standard library's :mod:`http.client`, not requests: the guard starts
beside pip, on the same two cores, and requests with urllib3 cost about 0.12 s of CPU to import
and most of the guard's per-request CPU (issue 7). It keeps what requests gave the guard:

- kept-alive connections, pooled per origin and shared by threads;
- proxies: pip's ``--proxy``, else ``http_proxy`` / ``https_proxy`` / ``all_proxy`` with
  ``no_proxy`` from the environment (``https`` through ``CONNECT``);
- TLS: the CA bundle (pip's ``--cert``, else ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``, else
  the system's CAs with certifi's), pip's ``--client-cert`` and ``--trusted-host``;
- credentials from the URL, else from ``~/.netrc`` (``NETRC``), dropped on a redirect to
  another host, port or scheme (but http:80 to https:443), as requests drops them;
- redirects (at most 30), ``gzip`` and ``deflate`` bodies, timeouts.

What the environment says (proxy variables, netrc, CAs) is read in ``_netenv``. Errors are
:class:`TransportError` subclasses, with the URL never carrying credentials.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import urllib.parse
import weakref
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from safe_pip import __version__
from safe_pip._netenv import (
    basic,
    bypassed,
    environment_bundle,
    environment_proxies,
    load_default_trust,
    netrc_auth,
)
from safe_pip._urls import proxy_url, redact, split_url

#: Where a request's Authorization came from: the caller's ``auth``, the URL's user-info,
#: netrc, or an Authorization header the caller set.
Credentials = Literal["given", "url", "netrc", "header"]

#: requests' limit, which the guard had before this client.
MAX_REDIRECTS = 30
_REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class TransportSettings:
    """What pip's configuration says about reaching the network, applied upstream by the guard.

    pip only ever talks to the loopback guard, so its ``--cert``, ``--client-cert``,
    ``--proxy`` and ``--trusted-host`` settings must be honoured by the guard instead.
    """

    timeout: float = 15.0
    cert: str | None = None  # a CA bundle (pip --cert, PIP_CERT, REQUESTS_CA_BUNDLE)
    client_cert: str | None = None
    proxy: str | None = None
    trusted_hosts: tuple[str, ...] = field(default_factory=tuple)

    def verify_for(self, url: str) -> bool | str:
        """TLS verification for one URL: never weakened, except for pip's trusted hosts."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        hostport = f"{host}:{parts.port}" if parts.port else host
        for trusted in self.trusted_hosts:
            if trusted in (host, hostport):
                return False
        return self.cert if self.cert else True


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


@dataclass(frozen=True)
class _Target:
    """Where one request goes: the origin, and the proxy it goes through (if any)."""

    scheme: str
    host: str
    port: int
    path: str  # the request target for a direct request: path and query
    auth: str | None  # an Authorization header value from the URL's user-info
    proxy: _Proxy | None

    @property
    def origin(self) -> str:
        port = "" if self.port == _DEFAULT_PORTS[self.scheme] else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"


@dataclass(frozen=True)
class _Proxy:
    scheme: str
    host: str
    port: int
    auth: str | None  # a Proxy-Authorization header value


def _split(url: str, what: str = "URL") -> tuple[urllib.parse.SplitResult, str, int]:
    try:
        parts = split_url(url)
    except ValueError as exc:
        raise BadURL(f"{redact(url)}: bad {what}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise BadURL(f"{redact(url)}: bad {what}: the scheme must be http or https")
    host = parts.hostname
    if not host:
        raise BadURL(f"{redact(url)}: bad {what}: no host")
    return parts, host, parts.port or _DEFAULT_PORTS[scheme]


def _keeps_credentials(first: tuple[str, str, int], new: tuple[str, str, int]) -> bool:
    """Whether credentials given for the origin ``first`` may go on to ``new`` (requests'
    rule): the same scheme, host and port, or only the move from http:80 to https:443."""
    scheme, host, port = first
    return new == first or ((scheme, port) == ("http", 80) and new == ("https", host, 443))


def _user_info(parts: urllib.parse.SplitResult) -> tuple[str, str] | None:
    if parts.username is None:
        return None
    return urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; a repeated field's values are joined
    with ", " (RFC 9110 5.3), as requests did."""

    def __init__(self, fields: Iterable[tuple[str, str]]) -> None:
        self._fields: dict[str, tuple[str, str]] = {}
        for name, value in fields:
            key = name.lower()
            if key in self._fields:
                first, joined = self._fields[key]
                self._fields[key] = (first, f"{joined}, {value}")
            else:
                self._fields[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class Response:
    """One answer. Read ``content`` or iterate ``iter_content``; ``close`` (or ``with``) hands
    the connection back to the pool when the body was read to its end."""

    def __init__(
        self,
        session: Session,
        key: tuple[Any, ...],
        conn: http.client.HTTPConnection,
        raw: http.client.HTTPResponse,
        url: str,
        credentials: Credentials | None = None,
    ) -> None:
        self._session = session
        self._key = key
        self._conn: http.client.HTTPConnection | None = conn
        self._raw = raw
        self.url = url
        #: Where the request's credentials came from (None: it carried none), so that a 401
        #: or 403 can be told apart: refused credentials, or none to send.
        self.credentials = credentials
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = Headers(raw.headers.items())
        self._content: bytes | None = None

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _decoder(self) -> Any:
        coding = (self.headers.get("Content-Encoding") or "").strip().lower()
        if coding in ("gzip", "x-gzip"):
            return _Gzip()
        if coding == "deflate":
            return _Deflate()
        return None

    def iter_content(self, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """The body, decoded, in chunks; the connection goes back to the pool at its end."""
        if self._content is not None:
            yield self._content
            return
        decoder = self._decoder()
        try:
            while True:
                chunk = self._raw.read(chunk_size)
                if not chunk:
                    if self._raw.length:  # read(amt) ends a body cut short without a word
                        raise http.client.IncompleteRead(b"", self._raw.length)
                    break
                if decoder is not None:
                    chunk = decoder.decompress(chunk)
                    if not chunk:
                        continue
                yield chunk
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    yield tail
        except zlib.error as exc:
            self._discard()
            raise ConnectFailed(f"{redact(self.url)}: the body does not decode: {exc}") from exc
        except http.client.IncompleteRead as exc:
            self._discard()
            more = f", {exc.expected} more expected" if exc.expected is not None else ""
            raise ConnectFailed(
                f"{redact(self.url)}: the answer broke off (IncompleteRead{more})"
            ) from exc
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            self._discard()
            raise ConnectFailed(
                f"{redact(self.url)}: the answer broke off ({type(exc).__name__}: {exc})"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise _wrap(exc, self.url) from exc
        self._release()

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_content())
        return self._content

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._raw.will_close or not self._raw.isclosed():
            conn.close()
        else:
            self._session._put(self._key, conn)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Give the connection back if the body was read, else close it."""
        if self._conn is not None and self._raw.isclosed():
            self._release()
        else:
            self._discard()


class _Gzip:
    """``gzip``, of one member or several (as gzip(1) concatenates them); what follows the
    first member and is no gzip is ignored, as urllib3 did."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._later = False  # past the first member
        self._ignore = False

    def decompress(self, data: bytes) -> bytes:
        out = b""
        while data and not self._ignore:
            try:
                out += self._obj.decompress(data)
            except zlib.error:
                if not self._later:
                    raise
                self._ignore = True
                break
            data = self._obj.unused_data
            if data:
                self._later = True
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return out

    def flush(self) -> bytes:
        return b"" if self._ignore else self._obj.flush()


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or (wrongly, but often) raw. The data is
    kept until it decodes, as a read of one byte cannot tell the two apart."""

    def __init__(self) -> None:
        self._seen: bytes | None = b""  # the body so far, until the first output
        self._obj = zlib.decompressobj()

    def decompress(self, data: bytes) -> bytes:
        if self._seen is None:
            return self._obj.decompress(data)
        self._seen += data
        try:
            out = self._obj.decompress(data)
        except zlib.error:
            data, self._seen = self._seen, None
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._obj.decompress(data)
        if out:
            self._seen = None
        return out

    def flush(self) -> bytes:
        return self._obj.flush()


def _wrap(exc: BaseException, url: str) -> TransportError:
    where = redact(url)
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return TLSFailed(f"{where}: TLS error: {exc}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TimedOut(f"{where}: timed out ({exc or 'no answer'})")
    if isinstance(exc, http.client.InvalidURL):
        return BadURL(f"{where}: bad URL: {exc}")
    if isinstance(exc, http.client.HTTPException):
        name = type(exc).__name__
        return ConnectFailed(f"{where}: broken answer: {name}: {exc}".rstrip(": "))
    return ConnectFailed(f"{where}: connection failed: {type(exc).__name__}: {exc}")


class Session:
    """Pooled, thread-safe HTTP for the guard, the changelog client and ``check``.

    ``pool`` is how many idle connections are kept per origin (and per TLS setting).
    """

    def __init__(self, settings: TransportSettings, *, pool: int = 16) -> None:
        self.settings = settings
        self.pool = pool
        self.user_agent = f"safe-pip/{__version__} (+http.client)"
        self._lock = threading.Lock()
        self._idle: dict[tuple[Any, ...], list[http.client.HTTPConnection]] = {}
        self._contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
        self._proxies: dict[str, str] | None = None
        self._netrc: dict[str, str | None] = {}
        # Idle connections are closed when the session goes, as urllib3's pools did.
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    # -- public -------------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        verify: bool | str | None = None,
        auth: tuple[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """GET, following redirects. Without ``stream`` the body is read before returning."""
        response = self._follow("GET", url, None, headers, timeout, verify, auth)
        if not stream:
            response.content  # noqa: B018 - read now, hand the connection back
        return response

    def post(
        self,
        url: str,
        *,
        data: bytes,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        verify: bool | str | None = None,
    ) -> Response:
        """POST, not following redirects (a 301/302 would turn it into a GET); body read."""
        response = self._send("POST", url, data, headers, timeout, verify, auth=None)
        response.content  # noqa: B018
        return response

    def close(self) -> None:
        """Close the idle connections (a response still being read closes its own)."""
        _close_idle(self._idle, self._lock)

    # -- requests -----------------------------------------------------------------------------

    def _follow(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
        verify: bool | str | None,
        auth: tuple[str, str] | None,
    ) -> Response:
        parts, host, port = _split(url)
        first = (parts.scheme.lower(), host, port)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, data, headers, timeout, verify, auth)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            _drain(response)
            try:
                new = urllib.parse.urljoin(url, location)
            except ValueError as exc:  # an unclosed "[" in the Location
                raise BadURL(f"{redact(url)}: a bad redirect: {exc}") from None
            if "#" not in new and "#" in url:
                new += url[url.index("#") :]
            parts, host, port = _split(new)
            if not _keeps_credentials(first, (parts.scheme.lower(), host, port)):
                # Credentials stay with the origin they were given for (never sent in clear
                # after https), the caller's Authorization header too.
                auth = None
                if headers is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            verify = None  # the settings' rule for the new URL (pip's trusted hosts are per host)
            url = new
        raise TooManyRedirects(f"{redact(url)}: more than {MAX_REDIRECTS} redirects")

    def _send(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
        verify: bool | str | None,
        auth: tuple[str, str] | None,
    ) -> Response:
        target = self._target(url)
        if verify is None:
            verify = self.settings.verify_for(url)
        timeout = self.settings.timeout if timeout is None else timeout
        given = {name.lower(): (name, value) for name, value in (headers or {}).items()}
        sent = {
            "User-Agent": self.user_agent,
            "Accept-Encoding": "gzip, deflate",
            "Accept": "*/*",
        }
        sent = {k: v for k, v in sent.items() if k.lower() not in given}
        sent.update(given.values())
        credentials: Credentials | None = "header" if "authorization" in given else None
        if "authorization" not in given:
            if auth is not None:
                sent["Authorization"], credentials = basic(*auth), "given"
            elif target.auth is not None:
                sent["Authorization"], credentials = target.auth, "url"
            else:
                from_netrc = self._netrc_for(target.host)
                if from_netrc:
                    sent["Authorization"], credentials = from_netrc, "netrc"
        path = target.path
        if target.proxy is not None and target.scheme == "http":
            path = target.origin + target.path  # an absolute form for a forwarding proxy
            if target.proxy.auth:
                sent["Proxy-Authorization"] = target.proxy.auth
        key = (target.scheme, target.host, target.port, target.proxy, verify)
        for attempt in (0, 1):
            try:
                conn, reused = self._get(key, target, verify, timeout)
            except http.client.InvalidURL as exc:  # a host it refuses, as one with a space
                raise _wrap(exc, url) from exc
            try:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                conn.request(method, path, body=data, headers=sent)
                raw = conn.getresponse()
            except BaseException as exc:
                conn.close()
                stale = reused and isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if stale and attempt == 0:
                    continue  # a kept-alive connection the server had closed: once more, fresh
                if isinstance(exc, (OSError, http.client.HTTPException, ValueError)):
                    raise _wrap(exc, url) from exc
                raise
            return Response(self, key, conn, raw, url, credentials)
        raise AssertionError("unreachable")  # pragma: no cover

    def _target(self, url: str) -> _Target:
        parts, host, port = _split(url)
        scheme = parts.scheme.lower()
        creds = _user_info(parts)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return _Target(
            scheme=scheme,
            host=host,
            port=port,
            path=path,
            auth=basic(*creds) if creds else None,
            proxy=self._proxy_for(scheme, host, port),
        )

    def _proxy_for(self, scheme: str, host: str, port: int) -> _Proxy | None:
        proxy = self.settings.proxy  # pip's --proxy: every request, as pip's session does
        if not proxy:
            if self._proxies is None:
                self._proxies = environment_proxies()
            found = self._proxies
            proxy = found.get(scheme) or found.get("all")
            if not proxy or bypassed(host, port, found.get("no", "")):
                return None
        proxy = proxy_url(proxy)
        parts, proxy_host, proxy_port = _split(proxy, "proxy URL")
        proxy_scheme = parts.scheme.lower()
        if proxy_scheme == "https" and scheme == "https":
            raise BadURL(
                f"{redact(proxy)}: an https:// proxy for https:// pages is not supported; "
                "give the proxy as http://"
            )
        creds = _user_info(parts)
        return _Proxy(proxy_scheme, proxy_host, proxy_port, basic(*creds) if creds else None)

    def open_tunnel(self, host: str, port: int, timeout: float | None = None) -> socket.socket:
        """A TCP connection to ``host:port`` for a client's own TLS (a proxy's CONNECT), made
        the way this session reaches that host: through its proxy when it has one."""
        timeout = self.settings.timeout if timeout is None else timeout
        proxy = self._proxy_for("https", host, port)
        if proxy is None:
            return socket.create_connection((host, port), timeout=timeout)
        conn: http.client.HTTPConnection
        if proxy.scheme == "https":
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=timeout, context=self._context(True)
            )
        else:
            conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
        conn.set_tunnel(
            host, port, headers={"Proxy-Authorization": proxy.auth} if proxy.auth else None
        )
        conn.connect()
        assert conn.sock is not None
        return conn.sock

    def _netrc_for(self, host: str) -> str | None:
        try:
            return self._netrc[host]  # a dict read needs no lock (every request asks)
        except KeyError:
            pass
        found = netrc_auth(host)
        with self._lock:
            self._netrc[host] = found
        return found

    # -- connections --------------------------------------------------------------------------

    def _get(
        self, key: tuple[Any, ...], target: _Target, verify: bool | str, timeout: float
    ) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn, True
                conn.close()
        return self._connect(target, verify, timeout), False

    def _put(self, key: tuple[Any, ...], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.pool:
                idle.append(conn)
                return
        conn.close()

    def _connect(
        self, target: _Target, verify: bool | str, timeout: float
    ) -> http.client.HTTPConnection:
        proxy = target.proxy
        if proxy is None:
            if target.scheme == "https":
                return http.client.HTTPSConnection(
                    target.host, target.port, timeout=timeout, context=self._context(verify)
                )
            return http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        if target.scheme == "http":  # forwarded by the proxy: a connection to the proxy
            if proxy.scheme == "https":
                return http.client.HTTPSConnection(
                    proxy.host, proxy.port, timeout=timeout, context=self._context(True)
                )
            return http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)
        conn = http.client.HTTPSConnection(
            proxy.host, proxy.port, timeout=timeout, context=self._context(verify)
        )
        tunnel_headers = {"Proxy-Authorization": proxy.auth} if proxy.auth else None
        conn.set_tunnel(target.host, target.port, headers=tunnel_headers)
        return conn

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        key = (verify, self.settings.client_cert)
        with self._lock:
            known = self._contexts.get(key)
        if known is not None:
            return known
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checked, cert required
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            bundle = verify if isinstance(verify, str) else environment_bundle()
            try:
                if bundle is None:
                    load_default_trust(context)
                elif os.path.isdir(bundle):
                    context.load_verify_locations(capath=bundle)
                else:
                    context.load_verify_locations(cafile=bundle)
            except (OSError, ssl.SSLError) as exc:
                raise TLSFailed(f"{bundle}: cannot read this CA bundle: {exc}") from exc
        if self.settings.client_cert:
            try:
                context.load_cert_chain(self.settings.client_cert)
            except (OSError, ssl.SSLError) as exc:
                raise TLSFailed(
                    f"{self.settings.client_cert}: cannot use this client certificate: {exc}"
                ) from exc
        with self._lock:
            return self._contexts.setdefault(key, context)


def _close_idle(
    idle: dict[tuple[Any, ...], list[http.client.HTTPConnection]], lock: threading.Lock
) -> None:
    with lock:
        conns = [conn for pooled in idle.values() for conn in pooled]
        idle.clear()
    for conn in conns:
        conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether a kept-alive connection was closed by the server (it is readable while idle)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _drain(response: Response) -> None:
    """Read a redirect's (small) body so its connection can be kept; else close it."""
    try:
        for _ in response.iter_content(64 * 1024):
            pass
    except TransportError:
        pass
    response.close()


def make_session(settings: TransportSettings, *, pool: int = 16) -> Session:
    """The session every command uses: the user's TLS and proxy settings, a big pool."""
    return Session(settings, pool=pool)
