"""A raw TCP connection to a host through the proxy the session would use (a client's CONNECT).

A client that uses the guard as its proxy may ask for a tunnel to a host the user vouched for;
the guard then reaches that host as it reaches indexes: straight, or through pip's ``--proxy``
or the environment's (http, https or SOCKS), with the proxy URL's credentials.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Callable

import urllib3.util

from safe_pip.net.urls import redact


def connect_through(
    proxy: str,
    target: tuple[str, int],
    timeout: float,
    tls_context: Callable[[str], ssl.SSLContext],
) -> socket.socket:
    """A connection to ``target`` through ``proxy`` (a URL); ``tls_context(proxy)`` is the
    context for an https proxy. Failures are :class:`OSError`."""
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
        return _socks_tunnel(scheme, proxy_host, proxy_port, user, password, target, timeout)
    conn: http.client.HTTPConnection
    if scheme == "https":
        conn = http.client.HTTPSConnection(
            proxy_host, proxy_port or 443, timeout=timeout, context=tls_context(proxy)
        )
    elif scheme == "http":
        conn = http.client.HTTPConnection(proxy_host, proxy_port or 80, timeout=timeout)
    else:
        raise OSError(f"{redact(proxy)}: a proxy scheme this client cannot use")
    tunnel_headers = None
    if user is not None:
        tunnel_headers = urllib3.util.make_headers(proxy_basic_auth=f"{user}:{password or ''}")
    conn.set_tunnel(*target, headers=tunnel_headers)
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
    # PySocks (requests[socks]): urllib3 treats it as optional; only a SOCKS proxy needs it.
    import socks

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
