"""HTTP plumbing shared by the origin and the CDN: content negotiation and the server.

The CDN keys its cache by the variant the origin would answer, so both choose it with
:func:`negotiate` and :func:`accepts_gzip` here. :class:`Server` and :class:`Handler` are the
threaded server on 127.0.0.1 and the request handler base both build on.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import ssl
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_V1_TYPE = "application/vnd.pypi.simple.v1+html"
HTML_TYPE = "text/html"
# Server preference on a tie (e.g. "*/*" or no Accept): HTML first, as the real index does.
_OFFERS = (HTML_TYPE, HTML_V1_TYPE, JSON_TYPE)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_V1_TYPE,
}
CONTENT_TYPES = {
    JSON_TYPE: JSON_TYPE,
    HTML_V1_TYPE: HTML_V1_TYPE,
    HTML_TYPE: "text/html; charset=utf-8",
}


def _q_value(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None, *, json_pages: bool = True) -> str:
    """The media type the index answers ``accept`` with (one of the three simple-API types).

    Roughly RFC 9110: the most specific range matching an offer gives its q; the highest q
    wins; ties go to the range the client listed first, then to HTML. Nothing acceptable, or
    no header, gives ``text/html`` (the index never answers 406). An index without JSON pages
    (``json_pages=False``) answers ``text/html`` whatever is asked, as static servers do.
    """
    if not accept or not json_pages:
        return HTML_TYPE
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if media:
            ranges.append((_ALIASES.get(media, media), _q_value(params)))
    best: tuple[float, int, int] | None = None
    chosen = HTML_TYPE
    for offer in _OFFERS:
        match: tuple[float, int, int] | None = None  # (q, specificity, -position)
        for position, (media, q) in enumerate(ranges):
            if media == offer:
                specificity = 2
            elif media == offer.split("/")[0] + "/*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if match is None or specificity > match[1]:
                match = (q, specificity, -position)
        if match is None or match[0] <= 0:
            continue
        if best is None or match > best:
            best, chosen = match, offer
    return chosen


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows a gzip body."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip") and _q_value(params) > 0:
            return True
    return False


_OwnerT = TypeVar("_OwnerT")


class Server(ThreadingHTTPServer, Generic[_OwnerT]):
    """A threaded HTTP server on 127.0.0.1 (random port) that can stop promptly.

    It remembers every open socket (client connections and, for the CDN, upstream ones) so
    that :meth:`stop` can shut them down: a handler blocked on a keep-alive read, a slow
    upstream or the changelog timeout fault then returns at once instead of holding a port.
    """

    daemon_threads = True
    request_queue_size = 64  # a resolver (or a guard's proxy) may open many connections at once

    def __init__(
        self, handler: type[Handler], owner: _OwnerT, tls: ssl.SSLContext | None = None
    ) -> None:
        self.owner = owner
        self.tls = tls
        self.stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake runs on the first read, in the request's own thread, so a client
            # that stalls in it cannot hold up the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def watch(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.add(sock)

    def unwatch(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.discard(sock)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(request, socket.socket):
            self.watch(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            self.unwatch(request)
        super().shutdown_request(request)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A client that hangs up, or a stop() in mid-request, is normal here, not an error.
        if self.stopping.is_set() or isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    """Request handler base: HTTP/1.1 keep-alive, quiet, with interruptible delays."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK then costs ~40 ms per response.
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds
    server: Server[Any]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines; tests read counters, not stderr."""

    def pause(self, seconds: float) -> None:
        """Sleep (simulated latency), but wake up as soon as the server stops."""
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        *,
        compress: bool = False,
    ) -> None:
        """Send a complete response; gzip it if ``compress`` and the client accepts gzip."""
        header_list = list(headers)
        if compress and accepts_gzip(self.headers.get("Accept-Encoding")):
            body = gzip.compress(body, mtime=0)  # mtime=0: identical bytes for equal pages
            header_list.append(("Content-Encoding", "gzip"))
        self.send_response(status)
        for key, value in header_list:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self) -> None:
        self.respond(404, b"Not Found\n", [("Content-Type", "text/plain; charset=utf-8")])
