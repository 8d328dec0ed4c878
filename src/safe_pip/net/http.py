"""The one place that reaches indexes and authorities over HTTP: requests, as pip does.

pip only talks to the loopback guard, so every network set-up pip supports must work from the
guard: the OS trust store (truststore) beside certifi, pip's ``--cert`` and ``--client-cert``,
``--trusted-host``, ``--proxy`` or the environment's proxies with ``no_proxy`` (http, https and
SOCKS proxies), credentials from the URL, netrc and pip's ``--keyring-provider``. The same
stack pip uses (requests, urllib3, truststore) gives all of them, and keeps giving them as pip
changes; a hand-written client had to copy each one and missed several.

What stays the guard's own: TLS is verified unless pip's ``--trusted-host`` names the host
(decided again for every redirect), credentials never reach another host (``_netauth``), and
every failure is a :class:`TransportError` whose message names the URL without credentials.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import threading
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import requests
import requests.adapters
import requests.exceptions
import urllib3.exceptions
import urllib3.util
from requests.structures import CaseInsensitiveDict

from safe_pip import __version__
from safe_pip.net.auth import (
    Credentials,
    Keyring,
    RequestAuth,
    carry_source,
    credentials_sent,
)
from safe_pip.net.urls import proxy_url, redact

#: requests' limit (and pip's).
MAX_REDIRECTS = 30

# An unverified request happens only for a host pip's --trusted-host names: the user's choice,
# which pip does not warn about either (it sets this same filter).
warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


class _Retry(urllib3.util.Retry):
    """One retry, on a new connection, for a request that broke before its answer (a
    kept-alive connection the server had closed): urllib3 retries idempotent methods only,
    so a POST is never sent twice. A timeout is final: waiting twice is no cure."""

    def increment(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> urllib3.util.Retry:
        error = kwargs.get("error")
        if isinstance(error, urllib3.exceptions.TimeoutError):
            raise error
        return super().increment(*args, **kwargs)


@dataclass(frozen=True)
class TransportSettings:
    """What pip's configuration says about reaching the network, applied upstream by the guard.

    pip only ever talks to the loopback guard, so its ``--cert``, ``--client-cert``,
    ``--proxy``, ``--trusted-host`` and ``--keyring-provider`` settings must be honoured by
    the guard instead.
    """

    timeout: float = 15.0
    cert: str | None = None  # a CA bundle (pip --cert, PIP_CERT, REQUESTS_CA_BUNDLE)
    client_cert: str | None = None
    proxy: str | None = None
    trusted_hosts: tuple[str, ...] = field(default_factory=tuple)
    keyring_provider: str = "disabled"  # as pip would use it (see _netauth.keyring_in_use)

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


def _translate(exc: BaseException, url: str) -> TransportError:
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


class Trust:
    """The TLS contexts of one session, one per verification setting, made once.

    The default is pip's: the OS trust store through truststore, with certifi's bundle loaded
    too. A bundle (pip's ``--cert``, else ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``) replaces
    it; ``False`` (pip's ``--trusted-host`` only) verifies nothing.
    """

    def __init__(self, client_cert: str | None) -> None:
        self.client_cert = client_cert
        self._lock = threading.Lock()
        self._contexts: dict[bool | str, ssl.SSLContext] = {}

    def context(self, verify: bool | str) -> ssl.SSLContext:
        if verify is True:
            env = os.environ
            verify = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or True
        with self._lock:
            known = self._contexts.get(verify)
            if known is None:
                known = self._contexts[verify] = self._make(verify)
            return known

    def _make(self, verify: bool | str) -> ssl.SSLContext:
        context: ssl.SSLContext
        if verify is True:
            import certifi
            import truststore

            context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(cafile=certifi.where())
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checked, cert required
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            else:
                try:
                    if os.path.isdir(verify):
                        context.load_verify_locations(capath=verify)
                    else:
                        context.load_verify_locations(cafile=verify)
                except (OSError, ssl.SSLError) as exc:
                    raise TLSFailed(f"{verify}: cannot read this CA bundle: {exc}") from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert)
            except (OSError, ssl.SSLError) as exc:
                raise TLSFailed(
                    f"{self.client_cert}: cannot use this client certificate: {exc}"
                ) from exc
        return context


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter with the guard's trust: decided per URL from the settings (so per
    redirect hop: trust in one host does not follow a redirect to another), with its TLS
    context handed to urllib3 as pip hands its truststore context."""

    def __init__(self, settings: TransportSettings, trust: Trust, pool: int) -> None:
        self.settings = settings
        self.trust = trust
        retries = _Retry(total=1, redirect=0, status=0, other=0, raise_on_status=False)
        super().__init__(pool_connections=pool, pool_maxsize=pool, max_retries=retries)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs["verify"] = self.settings.verify_for(request.url or "")
        kwargs["cert"] = None  # the client certificate sits in the TLS context
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, None)
        pool_kwargs: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if verify else "CERT_NONE"}
        if host_params.get("scheme") == "https":
            pool_kwargs["ssl_context"] = self.trust.context(verify)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # The context carries the CAs and the client certificate; urllib3 must not load
        # requests' bundle into it on every connection.
        conn.cert_reqs = "CERT_REQUIRED" if verify else "CERT_NONE"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if proxy.lower().startswith("https:") and proxy not in self.proxy_manager:
            proxy_kwargs.setdefault(
                "proxy_ssl_context", self.trust.context(self.settings.verify_for(proxy))
            )
        return super().proxy_manager_for(proxy, **proxy_kwargs)


class _Requests(requests.Session):
    """requests' session, reading the environment once per origin instead of on every
    request (scanning every variable for proxies cost a quarter of a request's CPU): proxies
    are given with each request and on each redirect (requests' ``trust_env`` off), and on a
    redirect to another host that host's netrc entry is sent, as requests would."""

    def __init__(self, owner: Session) -> None:
        super().__init__()
        self.trust_env = False
        self._owner = owner

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: Any) -> None:
        super().rebuild_auth(prepared_request, response)  # drops it for another host
        if "Authorization" in prepared_request.headers:
            carry_source(response.request, prepared_request)  # the same host: kept as sent
        else:
            pair = self._owner.credentials.from_netrc(prepared_request.url or "")
            if pair is not None:
                prepared_request.prepare_auth(pair)
                carry_source(None, prepared_request, "netrc")

    def rebuild_proxies(
        self, prepared_request: requests.PreparedRequest, proxies: Any
    ) -> dict[str, str]:
        found = self._owner.proxies(prepared_request.url or "")
        rebuilt: dict[str, str] = super().rebuild_proxies(prepared_request, found)
        return rebuilt


class Response:
    """One answer. Read ``content`` or iterate ``iter_content``; ``close`` (or ``with``) hands
    the connection back to the pool when the body was read to its end."""

    def __init__(self, raw: requests.Response, url: str) -> None:
        self._raw = raw
        self.url = raw.url or url
        self.status_code = raw.status_code
        #: Where the final request's credentials came from (None: it carried none), so that
        #: a 401 or 403 can be told apart: refused credentials, or none to send.
        self.credentials = credentials_sent(raw.request)
        self.reason = raw.reason
        self.headers: CaseInsensitiveDict[str] = raw.headers
        self._content: bytes | None = None

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def iter_content(self, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """The body, decoded, in chunks; a body cut short is :class:`ConnectFailed`."""
        if self._content is not None:
            yield self._content
            return
        try:
            yield from self._raw.iter_content(chunk_size)
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            self._raw.close()
            raise _translate(exc, self.url) from exc
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            self._raw.close()
            raise _translate(exc, self.url) from exc

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_content())
        return self._content

    def close(self) -> None:
        """Give the connection back if the body was read, else close it."""
        self._raw.close()


class Session:
    """Pooled, thread-safe HTTP for the guard, the changelog client and ``check``.

    ``pool`` is how many connections are kept per origin (and per TLS setting).
    """

    def __init__(self, settings: TransportSettings, *, pool: int = 16) -> None:
        self.settings = settings
        self.pool = pool
        self.user_agent = f"safe-pip/{__version__} requests/{requests.__version__}"  # type: ignore[attr-defined]
        self.trust = Trust(settings.client_cert)
        keyring = None
        if settings.keyring_provider not in ("disabled", ""):
            keyring = Keyring(settings.keyring_provider)
        self.credentials = Credentials(keyring)
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        session = _Requests(self)
        session.headers["User-Agent"] = self.user_agent
        # Pinned as pip pins it: the guard asks for the encodings it names, never brotli or
        # zstd because some module happens to be importable.
        session.headers["Accept-Encoding"] = "gzip, deflate"
        session.max_redirects = MAX_REDIRECTS
        adapter = _Adapter(settings, self.trust, pool)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        self._session = session

    def add_index(self, url: str) -> None:
        """An index pip was given: its credentials serve its other URLs, its URL is the
        keyring's service name (as pip asks it)."""
        self.credentials.add_index(url)

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        auth: tuple[str, str] | None = None,
        stream: bool = False,
    ) -> Response:
        """GET, following redirects. Without ``stream`` the body is read before returning."""
        response = self._request("GET", url, None, headers, timeout, auth, redirects=True)
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
    ) -> Response:
        """POST, not following redirects (a 301/302 would turn it into a GET); body read."""
        response = self._request("POST", url, data, headers, timeout, None, redirects=False)
        response.content  # noqa: B018
        return response

    def _request(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
        auth: tuple[str, str] | None,
        *,
        redirects: bool,
    ) -> Response:
        timeout = self.settings.timeout if timeout is None else timeout
        try:
            raw = self._session.request(
                method,
                url,
                data=data,
                headers=dict(headers or {}),
                timeout=timeout,
                auth=RequestAuth(self.credentials, auth),
                proxies=self.proxies(url),
                allow_redirects=redirects,
                stream=True,
            )
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise _translate(exc, url) from exc
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            raise _translate(exc, url) from exc
        return Response(raw, url)

    def close(self) -> None:
        """Close the pooled connections (a response still being read closes its own)."""
        self._session.close()

    def proxies(self, url: str) -> dict[str, str]:
        """The proxies for a request to ``url``: pip's ``--proxy`` for every request (as pip's
        session), else the environment's unless ``no_proxy`` exempts the host, read with
        requests' own functions once per origin."""
        if self.settings.proxy:
            proxy = proxy_url(self.settings.proxy)
            return {"http": proxy, "https": proxy}
        try:
            parts = urllib.parse.urlsplit(url)
            key = (parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower())
        except ValueError:
            return {}  # requests names the bad URL itself
        found = self._proxies.get(key)
        if found is None:
            from requests.utils import get_environ_proxies

            found = self._proxies[key] = get_environ_proxies(url)
        return found

    def proxy_for(self, url: str) -> str | None:
        """The one proxy a request for ``url`` goes through, if any."""
        from requests.utils import select_proxy

        found = select_proxy(url, self.proxies(url))
        return proxy_url(found) if found else None

    def open_tunnel(self, host: str, port: int, timeout: float | None = None) -> socket.socket:
        """A TCP connection to ``host:port`` for a client's own TLS (a proxy's CONNECT), made
        the way this session reaches that host: through its proxy when it has one. Failures
        are :class:`OSError`."""
        timeout = self.settings.timeout if timeout is None else timeout
        named = f"[{host}]" if ":" in host else host
        proxy = self.proxy_for(f"https://{named}:{port}/")
        if proxy is None:
            return socket.create_connection((host, port), timeout=timeout)
        try:
            parts = urllib.parse.urlsplit(proxy)
            scheme, proxy_host, proxy_port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError as exc:
            raise OSError(f"{redact(proxy)}: bad proxy URL") from exc
        if not proxy_host:
            raise OSError(f"{redact(proxy)}: bad proxy URL: no host")
        user = urllib.parse.unquote(parts.username) if parts.username is not None else None
        password = urllib.parse.unquote(parts.password or "") if user is not None else None
        if scheme.startswith("socks"):
            return _socks_tunnel(
                scheme, proxy_host, proxy_port, user, password, (host, port), timeout
            )
        conn: http.client.HTTPConnection
        if scheme == "https":
            context = self.trust.context(self.settings.verify_for(proxy))
            conn = http.client.HTTPSConnection(
                proxy_host, proxy_port or 443, timeout=timeout, context=context
            )
        elif scheme == "http":
            conn = http.client.HTTPConnection(proxy_host, proxy_port or 80, timeout=timeout)
        else:
            raise OSError(f"{redact(proxy)}: a proxy scheme this client cannot use")
        tunnel_headers = None
        if user is not None:
            from requests.auth import _basic_auth_str

            tunnel_headers = {"Proxy-Authorization": _basic_auth_str(user, password or "")}
        conn.set_tunnel(host, port, headers=tunnel_headers)
        try:
            conn.connect()
        except http.client.HTTPException as exc:
            conn.close()
            raise OSError(f"proxy {redact(proxy)}: {exc}") from exc
        assert conn.sock is not None
        return conn.sock


def _socks_tunnel(
    scheme: str,
    proxy_host: str,
    proxy_port: int | None,
    user: str | None,
    password: str | None,
    target: tuple[str, int],
    timeout: float,
) -> socket.socket:
    """A connection through a SOCKS proxy, read as urllib3 reads its URL: ``socks5h`` and
    ``socks4a`` let the proxy resolve the name."""
    import socks  # PySocks, which requests[socks] brings

    kind = socks.SOCKS4 if scheme.startswith("socks4") else socks.SOCKS5
    sock: socket.socket = socks.create_connection(
        target,
        timeout=timeout,
        proxy_type=kind,
        proxy_addr=proxy_host,
        proxy_port=proxy_port or 1080,
        proxy_rdns=scheme in ("socks5h", "socks4a"),
        proxy_username=user,
        proxy_password=password,
    )
    return sock


def make_session(settings: TransportSettings, *, pool: int = 16) -> Session:
    """The session every command uses: the user's TLS and proxy settings, a big pool."""
    return Session(settings, pool=pool)
