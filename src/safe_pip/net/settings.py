"""pip's network settings as the guard applies them upstream, and the TLS contexts they make."""

from __future__ import annotations

import os
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field

import certifi
import truststore

from safe_pip.net.errors import TLSFailed


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
    keyring_provider: str = "disabled"  # as pip would use it (see safe_pip.net.auth.Keyring)

    def verify_for(self, url: str) -> bool | str:
        """TLS verification for one URL: never weakened, except for pip's trusted hosts."""
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        hostport = f"{host}:{parts.port}" if parts.port else host
        for trusted in self.trusted_hosts:
            if trusted in (host, hostport):
                return False
        return self.cert if self.cert else True



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

