"""The guard's loopback HTTP server and its request handler: the one place that speaks HTTP to pip.

It answers only under a random per-run path token, so another local user can neither use it
nor learn what is installed. Every answer it gives pip is marked ``no-store``: pip >= 26.2
would otherwise cache index pages for ten minutes and hide staleness the guard has just ruled
out.

Two ways to answer a refused page: ``on_refused="hold"`` (install, run) never answers, because
the runner ends the client and pip reads an error answer as an empty page (its index collector);
``"503"`` (serve, whose clients it cannot end) answers 503 with a line naming the project and
why (502 when the index refused the guard's credentials: not a wait, not the client's to fix).
Paths, after the token when there is one: ``i/<n>/<project>/`` (index number n),
``simple/<project>/`` (index 0), ``f/<id>/<filename>`` and ``f/<page>/<n>/<filename>`` (a
listed file: registered alone, or the n-th file of a page served), and ``/-/health``
(no token: it tells nothing about what is installed).

``HEAD`` gets a ``GET``'s headers without the body, and files honour ``Range`` (one range:
206; several: 206 ``multipart/byteranges``; none satisfiable: 416), cut by
:mod:`safe_pip.guard.ranges` from the verified copy.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import secrets
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from packaging.utils import canonicalize_name

from safe_pip.guard.files import FileKey
from safe_pip.guard.guard import ACCESS_DENIED, Guard, NotFound, PageRecord, Refusal, Refused
from safe_pip.guard.ranges import ascii_digits, copy_range, parse_range, satisfiable
from safe_pip.guard.tunnel import host_port, relay, request_head

logger = logging.getLogger("safe_pip")

OnRefused = Literal["hold", "503"]


class Closing(Exception):
    """The guard is shutting down and cut a wait short (the client gets 503)."""


@dataclass(frozen=True)
class Answered:
    """One request answered (serve logs one line per page)."""

    kind: Literal["page", "file", "other"]
    name: str  # the project, or the file name
    status: int
    record: PageRecord | None  # the check behind a page (None for files)
    refusal: Refusal | None
    ms: float



class ProxyServer(http.server.ThreadingHTTPServer):
    """The server's state that its handlers read: the guard, the token, what to do on a refusal.

    ``listening``: a socket the runner bound and opened before pip started (pip's first
    requests may already wait in its backlog), used instead of binding ``address``.
    """

    daemon_threads = True
    allow_reuse_address = False

    def __init__(
        self,
        guard: Guard,
        token: str,
        *,
        address: tuple[str, int] = ("127.0.0.1", 0),
        on_refused: OnRefused = "hold",
        on_answer: Callable[[Answered], None] | None = None,
        listening: socket.socket | None = None,
    ) -> None:
        self.guard = guard
        self.token = token
        self.on_refused = on_refused
        self.on_answer = on_answer
        #: host:port pairs a client may reach through the guard as its proxy (the hosts of
        #: direct references the user named); any other host is refused.
        self.vouched: frozenset[tuple[str, int]] = frozenset()
        self.active = 0  #: requests being answered
        self.active_lock = threading.Lock()
        if listening is not None:
            super().__init__(listening.getsockname(), ProxyHandler, bind_and_activate=False)
            self.socket.close()
            self.socket = listening
            host, port = listening.getsockname()[:2]
            self.server_address = (host, port)
            self.server_name, self.server_port = str(host), int(port)
            return
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # pip hanging up mid-transfer (it was ended after a refusal) is not news.
        logger.debug("proxy connection error from %s", client_address, exc_info=True)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: ProxyServer
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: Nagle would hold the body for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "safe-pip-guard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("proxy: " + format, *args)

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection":
            self._connection_sent = True
        super().send_header(keyword, value)

    def send_response(self, code: int, message: str | None = None) -> None:
        self._connection_sent = False
        super().send_response(code, message)

    def end_headers(self) -> None:
        # An HTTP/1.0 client asking for keep-alive gets it (the request parser agreed to keep
        # the connection open) but must be told so, or it reads the body until the server
        # closes, which it never does: ApacheBench -k stalled on every request.
        if (
            self.request_version == "HTTP/1.0"
            and not self.close_connection
            and not getattr(self, "_connection_sent", False)
        ):
            self.send_header("Connection", "keep-alive")
        super().end_headers()

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
        # What a GET would send, without the body (RFC 9110 9.3.2): the same check, headers
        # and status, so a client learns a file's length before asking for ranges of it.
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        with self._counted():
            target = urllib.parse.urlsplit(self.path)
            if target.scheme or target.netloc:
                self._absolute(target)
            else:
                self._get(target.path)

    def do_CONNECT(self) -> None:  # noqa: N802 - stdlib naming
        """A client using the guard as its proxy asks for a tunnel: only to a vouched host."""
        with self._counted():
            host, port = host_port(self.path, 443)
            if (host, port) not in self.server.vouched:
                self._foreign(self.path)
                return
            try:
                upstream = self.server.guard.session.open_tunnel(host, port)
            except OSError as exc:
                self._plain(502, f"safe-pip cannot reach {self.path}: {exc}\n")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True
            relay(self.connection, upstream)

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        server = self.server
        with server.active_lock:
            server.active += 1
        try:
            yield
        finally:
            with server.active_lock:
                server.active -= 1

    def _absolute(self, target: urllib.parse.SplitResult) -> None:
        """A request in a proxy's absolute form: pip sends all its requests so when its
        proxy is the guard. Its own URLs are answered as usual; another host is refused
        unless vouched for, then forwarded as it came."""
        host, port = host_port(target.netloc, 443 if target.scheme == "https" else 80)
        own_host, own_port = self.server.server_address[:2]
        if port == own_port and host in (str(own_host), "localhost"):
            self._get(target.path)
        elif target.scheme == "http" and (host, port) in self.server.vouched:
            self._forward(host, port, target)
        else:
            self._foreign(f"{host}:{port}")

    def _forward(self, host: str, port: int, target: urllib.parse.SplitResult) -> None:
        try:
            upstream = socket.create_connection((host, port), timeout=60)
        except OSError as exc:
            self._plain(502, f"safe-pip cannot reach {host}:{port}: {exc}\n")
            return
        upstream.sendall(request_head(self.command, target, self.headers.items()))
        self.close_connection = True
        relay(self.connection, upstream)

    def _foreign(self, target: str) -> None:
        """Refuse a request for a host other than the guard (the runner ends the client)."""
        try:
            self.server.guard.refuse_host(target, "the installer")
        except Refused as exc:
            if self.server.on_refused == "503":
                self._plain(403, f"safe-pip {exc.refusal}\n")
                return
            self.server.guard.closing.wait()
            self.close_connection = True

    def _get(self, path: str) -> None:
        server = self.server
        started = time.perf_counter()
        if path == "/-/health":
            self._plain(503 if server.guard.closing.is_set() else 200, "ok\n")
            return
        parts = path.split("/")
        if server.token:
            # "", token, kind, ...
            # Compared as bytes: compare_digest raises on non-ASCII text, which would leave a
            # request with a stray byte in its path unanswered instead of a 404.
            given = parts[1].encode("utf-8", "surrogateescape") if len(parts) >= 3 else b""
            if not secrets.compare_digest(given, server.token.encode()):
                self._plain(404, "not found\n")
                return
            prefix, rest = f"/{parts[1]}", parts[2:]
        else:
            prefix, rest = "", parts[1:]
        kind: Literal["page", "file", "other"] = "other"
        name = ""
        try:
            if rest[0] == "i" and len(rest) >= 3 and ascii_digits(rest[1]):
                kind, name = "page", urllib.parse.unquote(rest[2])
                self._page(int(rest[1]), name, f"{prefix}/i/{rest[1]}/", len(rest) == 3)
            elif rest[0] == "simple" and len(rest) >= 2:
                kind, name = "page", urllib.parse.unquote(rest[1])
                self._page(0, name, f"{prefix}/simple/", len(rest) == 2)
            elif rest[0] == "f" and len(rest) == 3 and ascii_digits(rest[1]):
                kind, name = "file", urllib.parse.unquote(rest[2])
                self._file(int(rest[1]), name)
            elif rest[0] == "f" and len(rest) == 4 and all(map(ascii_digits, rest[1:3])):
                kind, name = "file", urllib.parse.unquote(rest[3])
                self._file((int(rest[1]), int(rest[2])), name)
            else:
                self._plain(404, "not found\n")
        except NotFound:
            self._answered(kind, name, 404, started)
            self._plain(404, "not found\n")
        except Refused as exc:
            if server.on_refused == "503" and exc.refusal.verdict == ACCESS_DENIED:
                # The index refused the guard's own credentials: a gateway's failure (502),
                # not the client's (a 401 would make pip ask its user for credentials that
                # never reach the index), and not one that passes by trying again.
                self._answered(kind, name, 502, started, exc.refusal)
                self._plain(502, f"safe-pip: {exc.refusal}\n")
                return
            if server.on_refused == "503":
                self._answered(kind, name, 503, started, exc.refusal)
                self._plain(503, f"safe-pip {exc.refusal}\n", retry_after=True)
                return
            # Never answer: pip would read an error as "no candidates here" and carry on with
            # other sources (pip's index collector). The runner ends pip; this request dies with it.
            server.guard.closing.wait()
            self.close_connection = True
        except Closing:
            self._answered(kind, name, 503, started)
            self._plain(503, "safe-pip is shutting down; try again\n", retry_after=True)

    def _page(self, number: int, project: str, base: str, no_slash: bool) -> None:
        if not project:
            self._plain(404, "safe-pip serves project pages only\n")
            return
        normal = canonicalize_name(project)
        if no_slash or normal != project:
            self._redirect(f"{base}{normal}/")
            return
        started = time.perf_counter()
        served = self.server.guard.page(number, normal, self.headers.get("Accept", ""))
        # Logged before the answer goes out: a client that has its answer can rely on the line
        # being written (a server stopped right after would otherwise lose the last lines).
        if self.server.on_answer is not None:
            ms = (time.perf_counter() - started) * 1000
            self.server.on_answer(Answered("page", normal, 200, served.record, None, ms))
        self._send(200, served.content_type, served.body)

    @property
    def _head(self) -> bool:
        return self.command == "HEAD"

    def _file(self, file_id: FileKey, name: str) -> None:
        started = time.perf_counter()
        # Always the whole file, downloaded and verified before any byte of it (or of a range
        # of it) goes out: a range taken from the upstream directly could not be checked.
        handle, size = self.server.guard.fetch_file(file_id, name)
        with handle:
            ranges = None if self._head else self._ranges(size)
            if ranges is None:
                status = 200
                self._file_headers(200, "application/octet-stream", size)
                if not self._head:
                    shutil.copyfileobj(handle, self.wfile, 256 * 1024)
            elif not ranges:
                status = 416
                body = b"range not satisfiable\n"
                self._file_headers(416, "text/plain; charset=utf-8", len(body), f"*/{size}")
                self.wfile.write(body)
            elif len(ranges) == 1:
                status = 206
                first, last = ranges[0]
                self._file_headers(
                    206, "application/octet-stream", last - first + 1, f"{first}-{last}/{size}"
                )
                copy_range(handle, self.wfile.write, first, last)
            else:
                status = 206
                self._multipart(handle, size, ranges)
        self._answered("file", name, status, started)

    def _ranges(self, size: int) -> list[tuple[int, int]] | None:
        """The satisfiable byte ranges a GET asks for; None to send the whole file.

        RFC 9110 14.2: a Range header that cannot be parsed, names another unit, or comes with
        an If-Range (the guard sends no validator a client could have) is ignored.
        """
        header = self.headers.get_all("Range")
        if not header or len(header) > 1 or self.headers.get("If-Range") is not None:
            return None
        specs = parse_range(header[0])
        if specs is None:
            return None
        return satisfiable(specs, size)

    def _file_headers(
        self, status: int, content_type: str, length: int, content_range: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if content_range is not None:
            self.send_header("Content-Range", f"bytes {content_range}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()

    def _multipart(self, handle: IO[bytes], size: int, ranges: list[tuple[int, int]]) -> None:
        boundary = secrets.token_hex(16)
        heads = [
            (
                f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n"
            ).encode()
            for first, last in ranges
        ]
        tail = f"--{boundary}--\r\n".encode()
        parts = list(zip(heads, ranges, strict=True))
        length = len(tail) + sum(len(head) + last - first + 3 for head, (first, last) in parts)
        self._file_headers(206, f"multipart/byteranges; boundary={boundary}", length)
        for head, (first, last) in parts:
            self.wfile.write(head)
            copy_range(handle, self.wfile.write, first, last)
            self.wfile.write(b"\r\n")
        self.wfile.write(tail)

    def _answered(
        self,
        kind: Literal["page", "file", "other"],
        name: str,
        status: int,
        started: float,
        refusal: Refusal | None = None,
    ) -> None:
        if self.server.on_answer is not None and kind != "other":
            ms = (time.perf_counter() - started) * 1000
            self.server.on_answer(Answered(kind, name, status, None, refusal, ms))

    def _send(
        self, status: int, content_type: str, body: bytes, *, retry_after: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if retry_after:
            self.send_header("Retry-After", "10")
        if self.server.guard.closing.is_set():
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if not self._head:
            self.wfile.write(body)

    def _plain(self, status: int, text: str, *, retry_after: bool = False) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode(), retry_after=retry_after)

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
