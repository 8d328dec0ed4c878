"""The one place that reaches indexes and authorities over HTTP: requests, as pip does.

pip only talks to the loopback guard, so every network set-up pip supports must work from the
guard: the OS trust store (truststore) beside certifi, pip's ``--cert`` and ``--client-cert``,
``--trusted-host``, ``--proxy`` or the environment's proxies with ``no_proxy`` (http, https and
SOCKS proxies), credentials from the URL, netrc and pip's ``--keyring-provider``. The same
stack pip uses (requests, urllib3, truststore) gives all of them, and keeps giving them as pip
changes.

What stays the guard's own: TLS is verified unless pip's ``--trusted-host`` names the host
(decided again for every redirect), credentials never reach another host
(:mod:`safe_pip.net.auth`), and every failure is a :class:`TransportError`
(:mod:`safe_pip.net.errors`) whose message names the URL without credentials.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import requests
import requests.adapters
import requests.exceptions
import urllib3.exceptions
import urllib3.util
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies, select_proxy

from safe_pip import __version__
from safe_pip.net.auth import (
    Credentials,
    Keyring,
    RequestAuth,
    carry_source,
    credentials_sent,
)
from safe_pip.net.errors import (
    MAX_REDIRECTS,
    BadURL,
    ConnectFailed,
    TimedOut,
    TLSFailed,
    TooManyRedirects,
    TransportError,
    translate,
)
from safe_pip.net.settings import TransportSettings, Trust
from safe_pip.net.tunnel import connect_through
from safe_pip.net.urls import proxy_url

#: The client's API in one place: its errors and settings live in their own modules.
__all__ = [
    "MAX_REDIRECTS",
    "BadURL",
    "ConnectFailed",
    "Response",
    "Session",
    "TLSFailed",
    "TimedOut",
    "TooManyRedirects",
    "TransportError",
    "TransportSettings",
    "make_session",
]

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
    request (requests scans every variable for proxies each time): proxies are given with
    each request and on each redirect (requests' ``trust_env`` off), and on a redirect to
    another host that host's netrc entry is sent, as requests would."""

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
            raise translate(exc, self.url) from exc
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            self._raw.close()
            raise translate(exc, self.url) from exc

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
            raise translate(exc, url) from exc
        except (urllib3.exceptions.HTTPError, http.client.HTTPException) as exc:
            raise translate(exc, url) from exc
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
            found = self._proxies[key] = get_environ_proxies(url)
        return found

    def proxy_for(self, url: str) -> str | None:
        """The one proxy a request for ``url`` goes through, if any."""
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
        return connect_through(proxy, (host, port), timeout, self._tls_context)

    def _tls_context(self, url: str) -> ssl.SSLContext:
        return self.trust.context(self.settings.verify_for(url))


def make_session(settings: TransportSettings, *, pool: int = 16) -> Session:
    """The session every command uses: the user's TLS and proxy settings, a big pool."""
    return Session(settings, pool=pool)
