"""The loopback HTTP server pip talks to: the one place that speaks HTTP to pip.

It listens on 127.0.0.1 on a random port and answers only under a random per-run path token,
so another local user can neither use it nor learn what is installed. Every answer it gives pip
is marked ``no-store``: pip >= 26.2 would otherwise cache index pages for ten minutes and hide
staleness the guard has just ruled out.

Two ways to answer a refused page: ``on_refused="hold"`` (install, run) never answers, because
the runner ends the client and pip reads an error answer as an empty page (its index collector);
``"503"`` (serve, whose clients it cannot end) answers 503 with a line naming the project and
why (502 when the index refused the guard's credentials: not a wait, not the client's to fix).
Paths, after the token when there is one: ``i/<n>/<project>/`` (index number n),
``simple/<project>/`` (index 0), ``f/<id>/<filename>`` (a listed file), and ``/-/health``
(no token: it tells nothing about what is installed).

``HEAD`` gets a ``GET``'s headers without the body, and files honour ``Range`` (one range:
206; several: 206 ``multipart/byteranges``; none satisfiable: 416): uv reads a wheel's
metadata that way where an index has no PEP 658 files. Ranges are cut from the copy the guard
has downloaded in full and verified against the page's hashes, never from bytes in transit.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import secrets
import selectors
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal

from packaging.utils import canonicalize_name

from safe_pip.guard.guard import ACCESS_DENIED, Guard, NotFound, PageRecord, Refusal, Refused

logger = logging.getLogger("safe_pip")

OnRefused = Literal["hold", "503"]


class Closing(Exception):
    """The guard is shutting down and cut a wait short (the client gets 503)."""


def closing_sleep(guard: Guard) -> Callable[[float], None]:
    """A sleep for the guard's waits that ends at once, raising ``Closing``, on shutdown."""

    def sleep(seconds: float) -> None:
        if guard.closing.wait(seconds):
            raise Closing()

    return sleep


@dataclass(frozen=True)
class Answered:
    """One request answered (serve logs one line per page)."""

    kind: Literal["page", "file", "other"]
    name: str  # the project, or the file name
    status: int
    record: PageRecord | None  # the check behind a page (None for files)
    refusal: Refusal | None
    ms: float


class _Server(http.server.ThreadingHTTPServer):
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
        self.active = 0
        self.active_lock = threading.Lock()
        self._stop_requested = False
        self._wake_read, self._wake_write = os.pipe()
        if listening is not None:
            # A socket the runner bound and opened before pip started (pip's first requests
            # may already wait in its backlog).
            super().__init__(listening.getsockname(), _Handler, bind_and_activate=False)
            self.socket.close()
            self.socket = listening
            host, port = listening.getsockname()[:2]
            self.server_address = (host, port)
            self.server_name, self.server_port = str(host), int(port)
            return
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._close_wake()  # (a failed bind has called server_close already)
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        # pip hanging up mid-transfer (it was ended after a refusal) is not news.
        logger.debug("proxy connection error from %s", client_address, exc_info=True)

    def serve_until_stopped(self) -> None:
        """socketserver's ``serve_forever`` loop, woken by :meth:`stop_serving` at once.

        ``serve_forever`` looks for its shutdown flag every ``poll_interval``: an install
        waited up to that long for it after pip ended (issue 7), and an idle ``serve`` woke
        ten times a second for nothing. Here a pipe wakes the loop instead.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self._stop_requested:
                ready = selector.select()
                if self._stop_requested:
                    break
                if any(key.fileobj is self.socket for key, _ in ready):
                    self._accept_one()

    def _accept_one(self) -> None:
        """socketserver's ``_handle_request_noblock``: one connection, to its own thread."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise

    def stop_serving(self) -> None:
        """Make :meth:`serve_until_stopped` return (from another thread)."""
        self._stop_requested = True
        with self.active_lock:
            if self._wake_write >= 0:
                os.write(self._wake_write, b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._close_wake()

    def _close_wake(self) -> None:
        with self.active_lock:
            fds, self._wake_read, self._wake_write = (self._wake_read, self._wake_write), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, pip's delayed
    # ACK then costs ~40 ms on every page and file (measured: 2.3x plain pip's time, issue 7).
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
            host, port = _host_port(self.path, 443)
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
            _relay(self.connection, upstream)

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
        host, port = _host_port(target.netloc, 443 if target.scheme == "https" else 80)
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
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        head = [f"{self.command} {path} HTTP/1.1"]
        for name, value in self.headers.items():
            if not name.lower().startswith("proxy-") and name.lower() != "connection":
                head.append(f"{name}: {value}")
        head.append("Connection: close")
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        self.close_connection = True
        _relay(self.connection, upstream)

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
            if rest[0] == "i" and len(rest) >= 3 and rest[1].isdigit():
                kind, name = "page", urllib.parse.unquote(rest[2])
                self._page(int(rest[1]), name, f"{prefix}/i/{rest[1]}/", len(rest) == 3)
            elif rest[0] == "simple" and len(rest) >= 2:
                kind, name = "page", urllib.parse.unquote(rest[1])
                self._page(0, name, f"{prefix}/simple/", len(rest) == 2)
            elif rest[0] == "f" and len(rest) == 3 and rest[1].isdigit():
                kind, name = "file", urllib.parse.unquote(rest[2])
                self._file(int(rest[1]), name)
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

    def _file(self, file_id: int, name: str) -> None:
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
                _copy_range(handle, self.wfile.write, first, last)
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
            _copy_range(handle, self.wfile.write, first, last)
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


def _host_port(netloc: str, default_port: int) -> tuple[str, int]:
    """``host, port`` of a request target (lower case, IPv6 brackets dropped)."""
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    return host.lower(), int(port) if port.isdigit() else default_port


def _relay(client: socket.socket, upstream: socket.socket) -> None:
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


#: More ranges than this in one request is not a client reading a zip's directory: the
#: header is ignored and the whole file sent (RFC 9110 14.2 allows it), so a request cannot
#: make the guard write thousands of part headers.
MAX_RANGES = 64


def parse_range(value: str) -> list[tuple[int | None, int | None]] | None:
    """``bytes=`` range specs as (first, last) with None for an open end; None if malformed.

    ``(first, None)`` is ``first-``, ``(None, n)`` the suffix ``-n``. Digits are ASCII only.
    """
    unit, sep, rest = value.partition("=")
    if not sep or unit.strip(" \t").lower() != "bytes":
        return None
    specs: list[tuple[int | None, int | None]] = []
    for item in rest.split(","):
        item = item.strip(" \t")
        if not item:
            continue  # RFC 9110 5.6.1: empty list elements are allowed and ignored
        first, dash, last = item.partition("-")
        if not dash or not _ascii_digits(first or "0") or not _ascii_digits(last or "0"):
            return None
        if not first and not last:
            return None
        if first and last and int(last) < int(first):
            return None  # invalid range-spec: the whole header is ignored
        specs.append((int(first) if first else None, int(last) if last else None))
    if not specs or len(specs) > MAX_RANGES:
        return None
    return specs


def satisfiable(specs: list[tuple[int | None, int | None]], size: int) -> list[tuple[int, int]]:
    """The specs that select at least one byte of a ``size``-byte file, as inclusive ranges."""
    ranges: list[tuple[int, int]] = []
    for first, last in specs:
        if first is None:
            assert last is not None
            if last == 0 or size == 0:
                continue
            ranges.append((max(0, size - last), size - 1))
        elif first < size:
            ranges.append((first, size - 1 if last is None else min(last, size - 1)))
    return ranges


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _copy_range(source: IO[bytes], write: Callable[[bytes], object], first: int, last: int) -> None:
    source.seek(first)
    left = last - first + 1
    while left > 0:
        chunk = source.read(min(256 * 1024, left))
        if not chunk:
            raise OSError("verified file shorter than its recorded size")
        write(chunk)
        left -= len(chunk)


class Proxy:
    """Runs the guard's HTTP server in a background thread, for one run or for ``serve``.

    The defaults are install's: 127.0.0.1, a random port and a random token, refused requests
    held. ``serve`` passes its address, its token ("" for none), ``on_refused="503"`` and a
    callback per answer; links in its pages are then path-absolute (``/TOKEN/f/…``), so they
    work whatever host name the clients reach it by. Binding errors (a busy port) raise OSError.
    ``listening``: a loopback socket already bound and listening (the runner's, made before
    pip started), used instead of binding one; the proxy closes it when it stops.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        on_refused: OnRefused = "hold",
        address: tuple[str, int] | None = None,
        token: str | None = None,
        on_answer: Callable[[Answered], None] | None = None,
        listening: socket.socket | None = None,
    ) -> None:
        self.guard = guard
        self.token = secrets.token_urlsafe(18) if token is None else token
        self._server = _Server(
            guard,
            self.token,
            address=address or ("127.0.0.1", 0),
            on_refused=on_refused,
            on_answer=on_answer,
            listening=listening,
        )
        port = self._server.server_address[1]
        prefix = f"/{self.token}" if self.token else ""
        self.base = f"http://127.0.0.1:{port}{prefix}"
        guard.serve_at(self.base if address is None else prefix)
        self._thread = threading.Thread(target=self._server.serve_until_stopped, daemon=True)

    def vouch(self, hosts: set[tuple[str, int]]) -> None:
        """Let clients reach these ``(host, port)`` pairs through the guard as their proxy
        (direct references the user named); every other host stays refused."""
        self._server.vouched = frozenset((host.lower(), port) for host, port in hosts)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    @property
    def active(self) -> int:
        """Requests being answered right now."""
        return self._server.active

    def stop(self, grace: float = 0.0) -> None:
        """Stop listening; waits cut short; answers in flight get up to ``grace`` seconds."""
        self.guard.closing.set()
        self._server.stop_serving()
        if self._thread.is_alive():
            # Bounded: closing the socket below ends the loop even if it is stuck in accept.
            self._thread.join(timeout=max(grace, 1.0))
        deadline = time.monotonic() + grace
        while self._server.active and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            self._server.socket.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
