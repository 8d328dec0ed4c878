"""The one place that builds the HTTP session used to reach indexes and authorities."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import requests.adapters

from safe_pip import __version__

if TYPE_CHECKING:
    from requests.sessions import _Settings


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


class _Session(requests.Session):
    """A session whose own CA bundle beats the environment's.

    requests lets ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` override ``Session.verify`` for
    any request that does not pass ``verify`` itself (requests #3829, #4726), so pip's ``--cert``
    would silently not apply to the changelog's POSTs on a machine that sets either.
    """

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple[Any, ...], _Settings] = {}

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        """requests' merge, once per scheme and host: it reads every proxy variable of the
        environment and checks ``no_proxy`` for the host on each request (about a tenth of the
        guard's CPU time on a run of small pages), and nothing it reads changes in a run."""
        key = None
        if isinstance(url, str) and not proxies:
            scheme, _, rest = url.partition("://")
            key = (scheme, rest.split("/", 1)[0], stream, verify, cert)
            try:
                known = self._merged.get(key)
            except TypeError:  # an unhashable cert or verify: not cached
                known, key = None, None
            if known is not None:
                return {**known, "proxies": dict(known["proxies"])}
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            merged["verify"] = self.verify
        if key is not None:
            self._merged[key] = {**merged, "proxies": dict(merged["proxies"])}
        return merged


def make_session(settings: TransportSettings, *, pool: int = 16) -> requests.Session:
    """A session with a descriptive User-Agent, the user's TLS and proxy settings, a big pool."""
    session = _Session()
    session.headers["User-Agent"] = f"safe-pip/{__version__} (+{requests.__name__})"
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if settings.client_cert:
        session.cert = settings.client_cert
    if settings.cert:
        # The default for every request made without an explicit ``verify`` (the changelog's
        # POSTs): pip's --cert / PIP_CERT must cover the authority as well as the pages.
        session.verify = settings.cert
    if settings.proxy:
        session.proxies = {"http": settings.proxy, "https": settings.proxy}
    return session
