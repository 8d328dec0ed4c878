"""The guard as a plain proxy for the hosts the user vouched for: bytes relayed unread.

pip sends every request through its proxy, the guard; a direct reference the user named
(``name @ https://host/…``) reaches its host this way, a ``CONNECT`` tunnel for https or the
request forwarded as it came for http. Any other host is refused by the handler.
"""

from __future__ import annotations

import selectors
import socket
import urllib.parse
from collections.abc import Iterable


def host_port(netloc: str, default_port: int) -> tuple[str, int]:
    """``host, port`` of a request target (lower case, IPv6 brackets dropped)."""
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    return host.lower(), int(port) if port.isdigit() else default_port


def request_head(
    command: str, target: urllib.parse.SplitResult, headers: Iterable[tuple[str, str]]
) -> bytes:
    """A proxied request's head in origin form, without the proxy's own headers, for one
    request on its own connection."""
    path = target.path or "/"
    if target.query:
        path += "?" + target.query
    head = [f"{command} {path} HTTP/1.1"]
    for name, value in headers:
        if not name.lower().startswith("proxy-") and name.lower() != "connection":
            head.append(f"{name}: {value}")
    head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes or both are idle for five minutes."""
    with upstream, selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        while True:
            ready = selector.select(timeout=300)
            if not ready:
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
                except OSError:
                    return

