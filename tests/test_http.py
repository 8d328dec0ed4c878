"""safe_pip.net.http, the guard's pooled client on http.client: what its module docstring promises.

Every test talks to servers started here on 127.0.0.1 in threads (plain HTTP, HTTPS with a CA
made on the spot, a forwarding and ``CONNECT`` proxy) and checks what they saw: connections,
request lines, headers. Nothing reaches the network.
"""

from __future__ import annotations

import base64
import email.message
import gzip
import http.client
import http.server
import os
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests

from safe_pip.net.http import (
    MAX_REDIRECTS,
    BadURL,
    ConnectFailed,
    Session,
    TimedOut,
    TLSFailed,
    TooManyRedirects,
    TransportError,
    TransportSettings,
    make_session,
)
from safe_pip.testing._tls import TestCA, make_client_identity, make_test_ca

#: A body big enough to span many reads, compressible enough to be small when encoded.
PAYLOAD = b"".join(b"line %d of the project page\n" % i for i in range(2000))
SECRET = "s3cret-pw"  # never in an error message


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the test server"
        time.sleep(0.005)


# -- test servers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as a test server read it."""

    method: str
    target: str  # the request line's target: a path, an absolute URI, or host:port
    headers: email.message.Message
    body: bytes
    connection: int  # which of the server's connections (1, 2, ...) carried it
    client_cert: str | None  # the common name of the client's certificate (TLS)


Route = Callable[["_Handler", dict[str, str]], None]
ROUTES: dict[str, Route] = {}


def _route(path: str) -> Callable[[Route], Route]:
    def register(route: Route) -> Route:
        ROUTES[path] = route
        return route

    return register


class _Server(http.server.ThreadingHTTPServer):
    """Counts connections, records requests; ``stop`` ends every connection and thread."""

    daemon_threads = False  # server_close joins the handler threads

    def __init__(self, handler: type[_Handler], tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.tls = tls
        self.port: int = self.socket.getsockname()[1]
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.connections = 0  # accepted
        self.closed = 0  # closed by the server
        self.open: set[socket.socket] = set()
        self.barrier: threading.Barrier | None = None
        self.errors: list[BaseException] = []

    def url(self, path: str = "/", *, host: str = "127.0.0.1", userinfo: str = "") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{userinfo}{host}:{self.port}{path}"

    def targets(self) -> list[str]:
        with self.lock:
            return [seen.target for seen in self.seen]

    def handle_error(self, request: object, client_address: object) -> None:
        with self.lock:  # a refused handshake, a client gone: recorded, not printed
            self.errors.append(sys.exc_info()[1] or Exception("?"))

    def stop(self) -> None:
        self.shutdown()
        with self.lock:
            still_open = list(self.open)
        for sock in still_open:  # wake handlers waiting on kept-alive connections
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers from :data:`ROUTES` by path (``/`` answers ``ok``), HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a stuck test fails instead of hanging
    server: _Server

    def setup(self) -> None:
        with self.server.lock:
            self.server.connections += 1
            self.number = self.server.connections
        sock = self.request
        assert isinstance(sock, socket.socket)
        if self.server.tls is not None:
            sock.settimeout(self.timeout)
            sock = self.server.tls.wrap_socket(sock, server_side=True)
            self.request = sock
        with self.server.lock:
            self.server.open.add(sock)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            sock = self.request
            assert isinstance(sock, socket.socket)
            sock.close()
            with self.server.lock:
                self.server.open.discard(sock)
                self.server.closed += 1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._record(self._body())
        parts = urllib.parse.urlsplit(self.path)
        ROUTES.get(parts.path, _ok)(self, dict(urllib.parse.parse_qsl(parts.query)))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, body: bytes) -> None:
        seen = Seen(
            self.command, self.path, self.headers, body, self.number, _common_name(self.request)
        )
        with self.server.lock:
            self.server.seen.append(seen)

    def reply(
        self, status: int = 200, body: bytes = b"ok", headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_chunked(self, body: bytes, headers: Sequence[tuple[str, str]]) -> None:
        self.send_response(200)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 1000):
            piece = body[start : start + 1000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")


def _common_name(sock: object) -> str | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert: Any = sock.getpeercert()
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "transfer-encoding"}


class _ProxyHandler(_Handler):
    """A forward proxy: absolute-URI requests are forwarded, ``CONNECT`` is tunnelled."""

    def _dispatch(self) -> None:
        body = self._body()
        self._record(body)
        parts = urllib.parse.urlsplit(self.path)
        if parts.scheme != "http" or not parts.hostname:
            self.reply(400, b"not a proxy request")
            return
        upstream = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            upstream.request(self.command, target, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        skip = _HOP_BY_HOP | {"content-length", "server", "date"}
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in skip]
        self.reply(answer.status, data, kept)

    def do_CONNECT(self) -> None:
        self._record(b"")
        self.close_connection = True
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError):
            self.reply(502, b"no tunnel")
            return
        with upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            sock = self.request
            assert isinstance(sock, socket.socket)
            _relay(sock, upstream)


def _relay(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or 10 s pass in silence)."""
    peer = {one: other, other: one}
    while True:
        readable, _, _ = select.select([one, other], [], [], 10)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
                if not data:
                    return
                peer[sock].sendall(data)
            except OSError:
                return


@contextmanager
def _serving(
    handler: type[_Handler] = _Handler, tls: ssl.SSLContext | None = None
) -> Iterator[_Server]:
    server = _Server(handler, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join()


# -- routes ---------------------------------------------------------------------------------


@_route("/")
def _ok(handler: _Handler, query: dict[str, str]) -> None:
    handler.reply(body=b"ok")


@_route("/status")
def _status(handler: _Handler, query: dict[str, str]) -> None:
    handler.reply(int(query["code"]), b"not here")


@_route("/redirect")
def _redirect(handler: _Handler, query: dict[str, str]) -> None:
    handler.reply(int(query.get("code", "302")), b"moved", [("Location", query["to"])])


@_route("/chain")
def _chain(handler: _Handler, query: dict[str, str]) -> None:
    """``n`` more relative redirects, then ``end``."""
    left = int(query["n"])
    if left:
        handler.reply(302, b"", [("Location", f"chain?n={left - 1}")])
    else:
        handler.reply(body=b"end")


def _encode(coding: str) -> tuple[str, bytes]:
    """A ``Content-Encoding`` value and :data:`PAYLOAD` encoded so."""
    if coding == "identity":
        return "", PAYLOAD
    if coding in ("gzip", "x-gzip"):
        return coding, gzip.compress(PAYLOAD)
    if coding == "gzip-members":  # as gzip(1) writes concatenated files
        half = len(PAYLOAD) // 2
        return "gzip", gzip.compress(PAYLOAD[:half]) + gzip.compress(PAYLOAD[half:])
    if coding == "deflate":
        return "deflate", zlib.compress(PAYLOAD)
    if coding == "raw-deflate":  # what many servers send as "deflate"
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return "deflate", compressor.compress(PAYLOAD) + compressor.flush()
    if coding == "corrupt-gzip":  # a gzip header, then a block of the reserved type
        return "gzip", gzip.compress(b"")[:10] + b"\xff" * 64
    raise AssertionError(coding)


@_route("/encoded")
def _encoded(handler: _Handler, query: dict[str, str]) -> None:
    coding, body = _encode(query["coding"])
    headers = [("Content-Encoding", coding)] if coding else []
    if query.get("chunked") == "1":
        handler.reply_chunked(body, headers)
    else:
        handler.reply(200, body, headers)


@_route("/multi")
def _multi(handler: _Handler, query: dict[str, str]) -> None:
    handler.reply(headers=[("X-Multi", "one"), ("x-multi", "two"), ("Content-Type", "text/x")])


@_route("/close-after")
def _close_after(handler: _Handler, query: dict[str, str]) -> None:
    """Answer as if keeping the connection alive, then close it."""
    handler.reply()
    handler.close_connection = True


@_route("/connection-close")
def _connection_close(handler: _Handler, query: dict[str, str]) -> None:
    handler.reply(headers=[("Connection", "close")])


@_route("/hangup")
def _hangup(handler: _Handler, query: dict[str, str]) -> None:
    handler.close_connection = True  # no answer at all


@_route("/truncated")
def _truncated(handler: _Handler, query: dict[str, str]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    handler.wfile.write(b"x" * 10)
    handler.close_connection = True


@_route("/garbage")
def _garbage(handler: _Handler, query: dict[str, str]) -> None:
    handler.wfile.write(b"this is not HTTP\r\n\r\n")
    handler.close_connection = True


@_route("/barrier")
def _barrier(handler: _Handler, query: dict[str, str]) -> None:
    """Answer once the server's barrier has as many requests waiting as it wants."""
    assert handler.server.barrier is not None
    handler.server.barrier.wait()
    handler.reply()


# -- fixtures ---------------------------------------------------------------------------------


class NewSession(Protocol):
    def __call__(self, settings: TransportSettings | None = None, *, pool: int = 16) -> Session: ...


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``*_proxy`` variable of the machine's (conftest clears only some)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def sessions() -> Iterator[NewSession]:
    """Make sessions (a 10 s timeout by default); all are closed at the end."""
    made: list[Session] = []

    def new(settings: TransportSettings | None = None, *, pool: int = 16) -> Session:
        made.append(make_session(settings or TransportSettings(timeout=10), pool=pool))
        return made[-1]

    yield new
    for session in made:
        session.close()


@pytest.fixture
def session(sessions: NewSession) -> Session:
    return sessions()


@pytest.fixture
def server() -> Iterator[_Server]:
    with _serving() as running:
        yield running


@pytest.fixture
def other_server() -> Iterator[_Server]:
    with _serving() as running:
        yield running


@pytest.fixture
def proxy() -> Iterator[_Server]:
    with _serving(_ProxyHandler) as running:
        yield running


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_server(ca: TestCA) -> Iterator[_Server]:
    with _serving(tls=ca.server_context()) as running:
        yield running


@pytest.fixture
def no_env_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine names its CA bundle in both variables; these tests choose their own."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def dead_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _authorizations(server: _Server) -> list[str | None]:
    with server.lock:
        return [seen.headers.get("Authorization") for seen in server.seen]


def _assert_names_url(error: BaseException, url: str) -> None:
    """The error names the URL, its password replaced by ``****``."""
    message = str(error)
    assert SECRET not in message
    assert url.replace(f"user:{SECRET}@", "****@") in message


# -- keep-alive and the pool --------------------------------------------------------------------


def test_sequential_gets_share_one_kept_alive_connection(server: _Server, session: Session) -> None:
    for n in range(5):
        response = session.get(server.url(f"/?n={n}"))
        assert (response.status_code, response.content) == (200, b"ok")
    assert server.connections == 1
    assert [seen.connection for seen in server.seen] == [1] * 5


def test_concurrent_gets_from_eight_threads_keep_at_most_pool_idle(
    server: _Server, sessions: NewSession
) -> None:
    server.barrier = threading.Barrier(8, timeout=10)  # all eight in flight at once
    session = sessions(pool=3)
    with ThreadPoolExecutor(8) as threads:
        responses = list(
            threads.map(lambda n: session.get(server.url(f"/barrier?n={n}")), range(8))
        )
    assert [(r.status_code, r.content) for r in responses] == [(200, b"ok")] * 8
    assert server.connections == 8
    _wait_for(lambda: server.closed == 5)  # the ones the pool had no room for
    for _ in range(3):
        assert session.get(server.url("/")).status_code == 200
    assert server.connections == 8  # the three idle ones were reused


def test_an_answer_with_connection_close_is_not_pooled(server: _Server, session: Session) -> None:
    assert session.get(server.url("/connection-close")).content == b"ok"
    assert session.get(server.url("/")).content == b"ok"
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_replaced(
    server: _Server, session: Session
) -> None:
    """The idle check sees the close before the request is sent."""
    assert session.get(server.url("/close-after")).status_code == 200
    _wait_for(lambda: server.closed == 1)
    assert session.get(server.url("/")).content == b"ok"
    assert server.connections == 2
    assert server.targets() == ["/close-after", "/"]


def test_a_reused_connection_is_retried_only_once(server: _Server, session: Session) -> None:
    assert session.get(server.url("/")).status_code == 200
    with pytest.raises(ConnectFailed) as caught:
        session.get(server.url("/hangup"))
    assert "RemoteDisconnected" in str(caught.value)
    assert server.targets() == ["/", "/hangup", "/hangup"]  # the kept one, then a new one
    assert server.connections == 2


def test_a_fresh_connection_that_breaks_is_retried_once(server: _Server, session: Session) -> None:
    with pytest.raises(ConnectFailed) as caught:
        session.get(server.url("/hangup"))
    assert not isinstance(caught.value, TimedOut)
    assert server.url("/hangup") in str(caught.value)
    assert server.targets() == ["/hangup", "/hangup"]


def test_a_post_that_breaks_is_not_sent_again(server: _Server, session: Session) -> None:
    with pytest.raises(ConnectFailed):
        session.post(server.url("/hangup"), data=b"<call/>")
    assert server.targets() == ["/hangup"]


def test_a_stream_read_to_its_end_gives_its_connection_back(
    server: _Server, session: Session
) -> None:
    with session.get(server.url("/encoded?coding=identity"), stream=True) as response:
        chunks = list(response.iter_content(4096))
    assert b"".join(chunks) == PAYLOAD
    assert len(chunks) == -(-len(PAYLOAD) // 4096)
    assert session.get(server.url("/")).content == b"ok"
    assert server.connections == 1


def test_a_stream_closed_before_its_end_closes_its_connection(
    server: _Server, session: Session
) -> None:
    with session.get(server.url("/encoded?coding=identity"), stream=True) as response:
        assert next(response.iter_content(10)) == PAYLOAD[:10]
    assert session.get(server.url("/")).content == b"ok"
    assert server.connections == 2


def test_closing_a_session_closes_its_idle_connections(server: _Server, session: Session) -> None:
    session.get(server.url("/"))
    session.close()
    _wait_for(lambda: server.closed == 1)
    assert session.get(server.url("/")).content == b"ok"  # a closed session still works
    assert server.connections == 2


# -- bodies ---------------------------------------------------------------------------------

CODINGS = ["identity", "gzip", "x-gzip", "gzip-members", "deflate", "raw-deflate"]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("coding", CODINGS)
def test_encoded_bodies_are_decoded_for_content(
    server: _Server, session: Session, coding: str, chunked: bool
) -> None:
    response = session.get(server.url(f"/encoded?coding={coding}&chunked={int(chunked)}"))
    assert response.content == PAYLOAD
    assert response.headers.get("Content-Encoding", "") == _encode(coding)[0]
    assert server.seen[0].headers["Accept-Encoding"] == "gzip, deflate"


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("coding", CODINGS)
def test_encoded_bodies_are_decoded_for_iter_content(
    server: _Server, session: Session, coding: str, chunk_size: int
) -> None:
    with session.get(server.url(f"/encoded?coding={coding}"), stream=True) as response:
        chunks = list(response.iter_content(chunk_size))
    assert b"".join(chunks) == PAYLOAD
    assert all(chunks)  # no empty chunks
    assert session.get(server.url("/")).content == b"ok"
    assert server.connections == 1


def test_a_corrupt_gzip_body_is_connect_failed_naming_the_url(
    server: _Server, session: Session
) -> None:
    url = server.url("/encoded?coding=corrupt-gzip", userinfo=f"user:{SECRET}@")
    with pytest.raises(ConnectFailed) as caught:
        session.get(url)
    assert "does not decode" in str(caught.value)
    _assert_names_url(caught.value, url)
    # The body arrived whole (only its coding is bad), so its connection may be used again.
    assert session.get(server.url("/")).content == b"ok"


def test_a_body_cut_short_is_connect_failed(server: _Server, session: Session) -> None:
    with pytest.raises(ConnectFailed) as caught:
        session.get(server.url("/truncated"))
    assert "IncompleteRead" in str(caught.value)
    assert server.url("/truncated") in str(caught.value)


def test_an_answer_that_is_not_http_is_connect_failed(server: _Server, session: Session) -> None:
    with pytest.raises(ConnectFailed) as caught:
        session.get(server.url("/garbage"))
    assert "BadStatusLine" in str(caught.value)


# -- requests and answers -----------------------------------------------------------------------


def test_answers_carry_status_reason_headers_and_url(server: _Server, session: Session) -> None:
    response = session.get(server.url("/status?code=404"))
    assert (response.status_code, response.reason) == (404, "Not Found")
    assert response.content == b"not here"
    assert response.headers["content-length"] == "8"
    assert response.url == server.url("/status?code=404")


def test_default_request_headers_yield_to_the_callers(server: _Server, session: Session) -> None:
    session.get(server.url("/"))
    session.get(server.url("/"), headers={"accept-encoding": "identity", "Accept": "text/html"})
    first, second = server.seen
    assert first.headers["User-Agent"].startswith("safe-pip/")
    assert (first.headers["Accept"], first.headers["Accept-Encoding"]) == ("*/*", "gzip, deflate")
    assert second.headers.get_all("Accept-Encoding") == ["identity"]
    assert second.headers.get_all("Accept") == ["text/html"]


def test_repeated_response_fields_are_joined(server: _Server, session: Session) -> None:
    headers = session.get(server.url("/multi")).headers
    assert headers["X-MULTI"] == "one, two"
    assert headers["content-type"] == "text/x"


def test_post_sends_its_body_and_does_not_follow_a_redirect(
    server: _Server, session: Session
) -> None:
    response = session.post(
        server.url("/redirect?to=/landed"), data=b"<call/>", headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/landed"
    assert [(s.method, s.target, s.body) for s in server.seen] == [
        ("POST", "/redirect?to=/landed", b"<call/>")
    ]
    assert server.seen[0].headers["Content-Type"] == "text/xml"


# -- redirects ------------------------------------------------------------------------------


def test_relative_redirects_are_followed_to_the_final_url(
    server: _Server, session: Session
) -> None:
    response = session.get(server.url("/chain?n=3"))
    assert (response.status_code, response.content) == (200, b"end")
    assert response.url == server.url("/chain?n=0")
    assert server.targets() == [f"/chain?n={n}" for n in (3, 2, 1, 0)]
    assert server.connections == 1  # the redirects' bodies were read, the connection kept


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_every_redirect_status_is_followed(server: _Server, session: Session, code: int) -> None:
    response = session.get(server.url(f"/redirect?code={code}&to=/landed"))
    assert (response.status_code, response.content) == (200, b"ok")
    assert response.url == server.url("/landed")


def test_a_redirect_to_another_server_is_followed(
    server: _Server, other_server: _Server, session: Session
) -> None:
    there = other_server.url("/landed")
    response = session.get(server.url("/redirect?" + urllib.parse.urlencode({"to": there})))
    assert response.url == there
    assert other_server.targets() == ["/landed"]


def test_thirty_redirects_are_followed_and_the_thirty_first_is_refused(
    server: _Server, session: Session
) -> None:
    assert MAX_REDIRECTS == 30
    assert session.get(server.url("/chain?n=30")).content == b"end"
    with pytest.raises(TooManyRedirects) as caught:
        session.get(server.url("/chain?n=31"))
    assert "more than 30 redirects" in str(caught.value)
    assert f"127.0.0.1:{server.port}/chain" in str(caught.value)
    assert server.targets()[-31:] == [f"/chain?n={n}" for n in range(31, 0, -1)]


def test_a_redirect_to_a_scheme_this_client_cannot_request_is_bad_url(
    server: _Server, session: Session
) -> None:
    with pytest.raises(BadURL) as caught:
        session.get(server.url("/redirect?to=ftp://127.0.0.1/x"))
    assert "ftp://127.0.0.1/x" in str(caught.value)


def test_a_redirect_to_a_location_that_does_not_parse_is_bad_url(
    server: _Server, session: Session
) -> None:
    with pytest.raises(BadURL) as caught:
        session.get(server.url("/redirect?to=http://[oops/x"))
    assert "a bad redirect" in str(caught.value)


def _to_localhost(server: _Server, path: str = "/landed") -> str:
    """A path on ``server`` redirecting to ``path`` on the same server named ``localhost``:
    the same socket, another host."""
    return "/redirect?" + urllib.parse.urlencode({"to": server.url(path, host="localhost")})


def test_url_credentials_follow_a_redirect_on_the_same_host(
    server: _Server, session: Session
) -> None:
    response = session.get(server.url("/redirect?to=/landed", userinfo=f"user:{SECRET}@"))
    assert response.content == b"ok"
    assert _authorizations(server) == [_basic("user", SECRET)] * 2


def test_url_credentials_are_not_sent_after_a_redirect_to_another_host(
    server: _Server, session: Session
) -> None:
    response = session.get(server.url(_to_localhost(server), userinfo=f"user:{SECRET}@"))
    assert response.url == server.url("/landed", host="localhost")
    assert [seen.headers["Host"] for seen in server.seen] == [
        f"127.0.0.1:{server.port}",
        f"localhost:{server.port}",
    ]
    assert _authorizations(server) == [_basic("user", SECRET), None]


def test_given_credentials_are_not_sent_after_a_redirect_to_another_host(
    server: _Server, session: Session
) -> None:
    session.get(server.url(_to_localhost(server)), auth=("user", SECRET))
    assert _authorizations(server) == [_basic("user", SECRET), None]


def test_a_given_authorization_header_is_not_sent_after_a_redirect_to_another_host(
    server: _Server, session: Session
) -> None:
    session.get(server.url(_to_localhost(server)), headers={"Authorization": "Bearer t0ken"})
    assert _authorizations(server) == ["Bearer t0ken", None]


def test_given_credentials_are_not_sent_after_a_redirect_to_another_port(
    server: _Server, other_server: _Server, session: Session
) -> None:
    there = other_server.url("/landed")
    session.get(server.url("/redirect?" + urllib.parse.urlencode({"to": there})), auth=("u", "p"))
    assert _authorizations(server) == [_basic("u", "p")]
    assert _authorizations(other_server) == [None]


def test_given_credentials_are_not_sent_after_a_redirect_from_https_to_http(
    tls_server: _Server, server: _Server, sessions: NewSession, ca: TestCA
) -> None:
    session = sessions(TransportSettings(cert=str(ca.ca_file)))
    there = server.url("/landed")
    url = tls_server.url("/redirect?" + urllib.parse.urlencode({"to": there}))
    assert session.get(url, auth=("user", SECRET)).url == there
    assert _authorizations(tls_server) == [_basic("user", SECRET)]
    assert _authorizations(server) == [None]


@pytest.mark.parametrize(
    ("first", "new", "kept"),
    [
        (("https", "index.example", 443), ("https", "index.example", 443), True),
        (("https", "index.example", 443), ("https", "files.example", 443), False),
        (("https", "index.example", 443), ("https", "index.example", 8443), False),
        (("https", "index.example", 443), ("http", "index.example", 80), False),
        # Not testable with servers here (they would need ports 80 and 443):
        (("http", "index.example", 80), ("https", "index.example", 443), True),
        (("http", "index.example", 8080), ("https", "index.example", 443), False),
        (("http", "index.example", 80), ("https", "files.example", 443), False),
    ],
)
def test_which_redirects_keep_given_credentials(
    first: tuple[str, str, int], new: tuple[str, str, int], kept: bool
) -> None:
    """requests' rule, which the session relies on (for URL, netrc and keyring credentials)."""
    old = "{}://{}:{}/".format(*first)
    moved = "{}://{}:{}/".format(*new)
    assert requests.Session().should_strip_auth(old, moved) is not kept


# -- credentials ----------------------------------------------------------------------------


def _netrc(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_url_credentials_become_basic_authorization(server: _Server, session: Session) -> None:
    session.get(server.url("/", userinfo="us%40er:p%3Ass%2Fw%20rd@"))
    assert _authorizations(server) == [_basic("us@er", "p:ss/w rd")]


def test_a_user_without_password_is_sent_with_an_empty_one(
    server: _Server, session: Session
) -> None:
    session.get(server.url("/", userinfo="token@"))
    assert _authorizations(server) == [_basic("token", "")]


def test_netrc_credentials_are_used_when_the_url_has_none(
    server: _Server, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _netrc(tmp_path / "netrc", f"machine 127.0.0.1 login nuser password {SECRET}\n")
    monkeypatch.setenv("NETRC", str(path))
    session.get(server.url("/"))
    session.get(server.url("/", userinfo="user:url-pw@"))  # the URL's beat the netrc's
    session.get(server.url("/"), headers={"Authorization": "Bearer t0ken"})  # the caller's too
    assert _authorizations(server) == [
        _basic("nuser", SECRET),
        _basic("user", "url-pw"),
        "Bearer t0ken",
    ]


def test_a_netrc_entry_for_another_host_is_not_used(
    server: _Server, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _netrc(tmp_path / "netrc", f"machine index.example login nuser password {SECRET}\n")
    monkeypatch.setenv("NETRC", str(path))
    session.get(server.url("/"))
    assert _authorizations(server) == [None]


def test_the_netrc_default_entry_is_used_for_any_host(
    server: _Server, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "netrc", "default login d password dp\n")))
    session.get(server.url("/"))
    assert _authorizations(server) == [_basic("d", "dp")]


def test_the_home_netrc_is_read_without_the_netrc_variable(
    server: _Server, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETRC", raising=False)
    _netrc(Path(os.path.expanduser("~/.netrc")), "machine 127.0.0.1 login home password hp\n")
    session.get(server.url("/"))
    assert _authorizations(server) == [_basic("home", "hp")]


def test_a_netrc_that_does_not_parse_is_ignored(
    server: _Server, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "machine 127.0.0.1 login nuser password np\nnonsense here\n"
    monkeypatch.setenv("NETRC", str(_netrc(tmp_path / "netrc", text)))
    assert session.get(server.url("/")).content == b"ok"
    assert _authorizations(server) == [None]


def test_netrc_credentials_stay_with_their_host_after_a_redirect(
    server: _Server, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _netrc(tmp_path / "netrc", f"machine 127.0.0.1 login nuser password {SECRET}\n")
    monkeypatch.setenv("NETRC", str(path))
    session.get(server.url(_to_localhost(server)))
    assert _authorizations(server) == [_basic("nuser", SECRET), None]


# -- proxies --------------------------------------------------------------------------------


def test_http_proxy_forwards_with_an_absolute_uri_and_proxy_authorization(
    server: _Server, proxy: _Server, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url(userinfo="puser:pp%40ss@").rstrip("/"))
    for _ in range(2):
        assert session.get(server.url("/?q=1", userinfo="user:pw@")).content == b"ok"
    assert proxy.targets() == [server.url("/?q=1")] * 2  # no credentials in the request line
    assert [seen.headers["Proxy-Authorization"] for seen in proxy.seen] == [
        _basic("puser", "pp@ss")
    ] * 2
    assert proxy.seen[0].headers["Host"] == f"127.0.0.1:{server.port}"
    assert proxy.connections == 1  # the connection to the proxy is kept alive too
    assert server.targets() == ["/?q=1"] * 2  # as forwarded by the proxy
    assert _authorizations(server) == [_basic("user", "pw")] * 2


def test_no_proxy_bypasses_the_proxy(
    server: _Server, proxy: _Server, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "index.example, 127.0.0.1")
    assert session.get(server.url("/")).content == b"ok"
    assert proxy.seen == []
    assert server.targets() == ["/"]


def test_all_proxy_is_used_for_http(
    server: _Server, proxy: _Server, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url())
    assert session.get(server.url("/")).content == b"ok"
    assert proxy.targets() == [server.url("/")]


def test_pips_proxy_setting_beats_the_environment_and_no_proxy(
    server: _Server,
    proxy: _Server,
    sessions: NewSession,
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    given = f"puser:ppw@127.0.0.1:{proxy.port}"  # pip takes a proxy without a scheme
    session = sessions(TransportSettings(timeout=10, proxy=given))
    assert session.get(server.url("/")).content == b"ok"
    assert proxy.targets() == [server.url("/")]
    assert proxy.seen[0].headers["Proxy-Authorization"] == _basic("puser", "ppw")


def test_a_lower_case_proxy_variable_beats_the_upper_case_one(
    server: _Server,
    proxy: _Server,
    session: Session,
    dead_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("http_proxy", proxy.url())
    assert session.get(server.url("/")).content == b"ok"
    assert proxy.targets() == [server.url("/")]


def test_an_empty_proxy_variable_means_no_proxy(
    server: _Server, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "")
    assert session.get(server.url("/")).content == b"ok"
    assert server.targets() == ["/"]


def test_https_goes_through_a_connect_tunnel(
    tls_server: _Server,
    proxy: _Server,
    sessions: NewSession,
    ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url(userinfo="puser:ppw@"))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # not for https
    session = sessions(TransportSettings(timeout=10, cert=str(ca.ca_file)))
    for _ in range(2):
        assert session.get(tls_server.url("/", userinfo="user:pw@")).content == b"ok"
    assert [(seen.method, seen.target) for seen in proxy.seen] == [
        ("CONNECT", f"127.0.0.1:{tls_server.port}")
    ]  # one tunnel, kept alive
    assert proxy.seen[0].headers["Proxy-Authorization"] == _basic("puser", "ppw")
    assert tls_server.targets() == ["/", "/"]
    assert [seen.headers.get("Proxy-Authorization") for seen in tls_server.seen] == [None] * 2
    assert _authorizations(tls_server) == [_basic("user", "pw")] * 2


def test_a_connect_tunnel_still_verifies_the_origin(
    tls_server: _Server,
    proxy: _Server,
    session: Session,
    no_env_bundle: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url())
    with pytest.raises(TLSFailed) as caught:
        session.get(tls_server.url("/"))
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert proxy.targets() == [f"127.0.0.1:{tls_server.port}"]
    assert tls_server.seen == []


def test_an_https_proxy_forwards_http(
    server: _Server, ca: TestCA, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _serving(_ProxyHandler, tls=ca.server_context()) as tls_proxy:
        monkeypatch.setenv("HTTP_PROXY", tls_proxy.url())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_file))
        assert session.get(server.url("/")).content == b"ok"
        assert tls_proxy.targets() == [server.url("/")]


def test_an_https_proxy_tunnels_https(
    tls_server: _Server, ca: TestCA, sessions: NewSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip supports https:// proxies for https:// pages (TLS inside TLS): so does the guard."""
    with _serving(_ProxyHandler, tls=ca.server_context()) as tls_proxy:
        monkeypatch.setenv("HTTPS_PROXY", tls_proxy.url(userinfo="puser:ppw@"))
        session = sessions(TransportSettings(timeout=10, cert=str(ca.ca_file)))
        assert session.get(tls_server.url("/")).content == b"ok"
        assert [(seen.method, seen.target) for seen in tls_proxy.seen] == [
            ("CONNECT", f"127.0.0.1:{tls_server.port}")
        ]
        assert tls_proxy.seen[0].headers["Proxy-Authorization"] == _basic("puser", "ppw")


def test_a_proxy_without_a_host_is_bad_url(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://:3128")
    with pytest.raises(BadURL) as caught:
        session.get("http://index.example/simple/")
    assert "proxy" in str(caught.value).lower()


def test_an_unreachable_proxy_is_connect_failed(
    dead_port: int, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    with pytest.raises(ConnectFailed) as caught:
        session.get("http://index.example/simple/")
    assert "http://index.example/simple/" in str(caught.value)


# -- TLS ------------------------------------------------------------------------------------


def test_a_certificate_from_an_unknown_ca_fails_verification(
    tls_server: _Server, session: Session, no_env_bundle: None
) -> None:
    url = tls_server.url("/", userinfo=f"user:{SECRET}@")
    with pytest.raises(TLSFailed) as caught:
        session.get(url)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    _assert_names_url(caught.value, url)
    assert tls_server.seen == []
    _wait_for(lambda: any(isinstance(error, ssl.SSLError) for error in tls_server.errors))


def test_pips_cert_setting_is_trusted_and_connections_are_kept(
    tls_server: _Server, sessions: NewSession, ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")  # --cert beats it
    session = sessions(TransportSettings(timeout=10, cert=str(ca.ca_file)))
    for _ in range(3):
        assert session.get(tls_server.url("/")).content == b"ok"
    assert tls_server.connections == 1


@pytest.mark.parametrize(
    ("requests_bundle", "curl_bundle"),
    [("ca", None), (None, "ca"), ("ca", "/nonexistent/bundle.pem")],
    ids=["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE-first"],
)
def test_the_environment_bundle_is_trusted_without_a_cert_setting(
    tls_server: _Server,
    session: Session,
    ca: TestCA,
    no_env_bundle: None,
    monkeypatch: pytest.MonkeyPatch,
    requests_bundle: str | None,
    curl_bundle: str | None,
) -> None:
    for name, value in (("REQUESTS_CA_BUNDLE", requests_bundle), ("CURL_CA_BUNDLE", curl_bundle)):
        if value is not None:
            monkeypatch.setenv(name, str(ca.ca_file) if value == "ca" else value)
    assert session.get(tls_server.url("/")).content == b"ok"


def test_an_unreadable_ca_bundle_is_tls_failed_naming_it(
    tls_server: _Server, sessions: NewSession, tmp_path: Path
) -> None:
    missing = tmp_path / "missing-bundle.pem"
    with pytest.raises(TLSFailed) as caught:
        sessions(TransportSettings(cert=str(missing))).get(tls_server.url("/"))
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize("with_port", [True, False])
def test_a_trusted_host_is_not_verified(
    tls_server: _Server, sessions: NewSession, no_env_bundle: None, with_port: bool
) -> None:
    trusted = f"127.0.0.1:{tls_server.port}" if with_port else "127.0.0.1"
    session = sessions(TransportSettings(timeout=10, trusted_hosts=(trusted,)))
    assert session.get(tls_server.url("/")).content == b"ok"


def test_a_trusted_host_on_another_port_is_verified(
    tls_server: _Server, sessions: NewSession, no_env_bundle: None
) -> None:
    session = sessions(TransportSettings(timeout=10, trusted_hosts=("127.0.0.1:1",)))
    with pytest.raises(TLSFailed):
        session.get(tls_server.url("/"))


def test_trust_in_one_host_does_not_follow_a_redirect_to_another(
    tls_server: _Server, sessions: NewSession, no_env_bundle: None
) -> None:
    trusted = (f"127.0.0.1:{tls_server.port}",)
    session = sessions(TransportSettings(timeout=10, trusted_hosts=trusted))
    with pytest.raises(TLSFailed) as caught:
        session.get(tls_server.url(_to_localhost(tls_server)))
    assert tls_server.url("/landed", host="localhost") in str(caught.value)
    assert len(tls_server.seen) == 1


def test_an_unreadable_client_cert_is_tls_failed_naming_it(
    tls_server: _Server, sessions: NewSession, ca: TestCA, tmp_path: Path
) -> None:
    missing = tmp_path / "missing-client.pem"
    session = sessions(TransportSettings(cert=str(ca.ca_file), client_cert=str(missing)))
    with pytest.raises(TLSFailed) as caught:
        session.get(tls_server.url("/"))
    assert str(missing) in str(caught.value)
    assert "client certificate" in str(caught.value)


def _requiring_client_cert(
    ca: TestCA, client_ca: Path, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED
) -> ssl.SSLContext:
    context = ca.server_context()
    context.maximum_version = maximum
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(client_ca))
    return context


@pytest.mark.parametrize(
    "maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["TLSv1.2", "TLSv1.3"]
)
def test_a_server_requiring_a_client_cert_accepts_pips_client_cert(
    sessions: NewSession, ca: TestCA, tmp_path: Path, maximum: ssl.TLSVersion
) -> None:
    client_ca, identity = make_client_identity(tmp_path)
    settings = TransportSettings(timeout=10, cert=str(ca.ca_file), client_cert=str(identity))
    with _serving(tls=_requiring_client_cert(ca, client_ca, maximum)) as server:
        assert sessions(settings).get(server.url("/")).content == b"ok"
        assert [seen.client_cert for seen in server.seen] == ["test client"]


def test_a_server_requiring_a_client_cert_refuses_a_client_without_one(
    sessions: NewSession, ca: TestCA, tmp_path: Path
) -> None:
    """TLS 1.2, where the refusal ends the handshake (with TLS 1.3 it comes after, as an alert
    or an EOF on the first read: TLSFailed too, or ConnectFailed should a reset win)."""
    client_ca, _ = make_client_identity(tmp_path)
    session = sessions(TransportSettings(timeout=10, cert=str(ca.ca_file)))
    with _serving(tls=_requiring_client_cert(ca, client_ca, ssl.TLSVersion.TLSv1_2)) as server:
        with pytest.raises(TLSFailed):
            session.get(server.url("/"))
        assert server.seen == []
        _wait_for(lambda: any(isinstance(error, ssl.SSLError) for error in server.errors))


# -- errors ---------------------------------------------------------------------------------


def test_a_refused_connection_is_connect_failed(dead_port: int, session: Session) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{dead_port}/simple/"
    with pytest.raises(ConnectFailed) as caught:
        session.get(url)
    assert type(caught.value) is ConnectFailed
    assert "ConnectionRefusedError" in str(caught.value)
    _assert_names_url(caught.value, url)


def test_a_server_that_never_answers_times_out(silent_port: int, session: Session) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{silent_port}/simple/"
    start = time.monotonic()
    with pytest.raises(TimedOut) as caught:
        session.get(url, timeout=0.2)
    assert time.monotonic() - start < 3
    assert isinstance(caught.value, ConnectFailed)
    _assert_names_url(caught.value, url)


def test_the_settings_timeout_applies_without_a_timeout_argument(
    silent_port: int, sessions: NewSession
) -> None:
    start = time.monotonic()
    with pytest.raises(TimedOut):
        sessions(TransportSettings(timeout=0.2)).post(
            f"http://127.0.0.1:{silent_port}/RPC2", data=b"<call/>"
        )
    assert time.monotonic() - start < 3


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://user:{SECRET}@127.0.0.1/simple/",
        "file:///etc/passwd",
        "index.example/simple/",
        f"http://user:{SECRET}@/simple/",
        "http:///simple/",
        f"http://user:{SECRET}@127.0.0.1:port/simple/",
        "http://127.0.0.1:99999/simple/",
        "http://[::1/simple/",
        f"http://user:{SECRET}@[::1/simple/",
        f"http://user:{SECRET}@bad host/simple/",
        "http://bad\x00host/simple/",
    ],
)
def test_urls_this_client_cannot_request_are_bad_url(url: str, session: Session) -> None:
    with pytest.raises(BadURL) as caught:
        session.get(url)
    assert isinstance(caught.value, TransportError)
    _assert_names_url(caught.value, url)


def test_every_error_is_a_transport_error() -> None:
    for error in (ConnectFailed, TimedOut, TLSFailed, BadURL, TooManyRedirects):
        assert issubclass(error, TransportError)
    assert issubclass(TimedOut, ConnectFailed)


# -- SOCKS proxies ----------------------------------------------------------------------------


class _Socks5:
    """A SOCKS5 proxy (RFC 1928, with RFC 1929 user/password): CONNECT only, one thread a
    client; records each client's (user, host, port)."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.seen: list[tuple[str | None, str, int]] = []
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept)
        self.accepting.start()

    def url(self, scheme: str = "socks5", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,))
            self.threads.append(thread)
            thread.start()

    def _read(self, client: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = client.recv(n - len(data))
            if not more:
                raise ConnectionError("client gone")
            data += more
        return data

    def _serve(self, client: socket.socket) -> None:
        with client, suppress(OSError):
            client.settimeout(10)
            _, count = self._read(client, 2)
            methods = self._read(client, count)
            user = None
            if self.credentials is not None:
                assert 2 in methods
                client.sendall(b"\x05\x02")
                _, size = self._read(client, 2)
                user = self._read(client, size).decode()
                password = self._read(client, self._read(client, 1)[0]).decode()
                good = (user, password) == self.credentials
                client.sendall(b"\x01\x00" if good else b"\x01\x01")
                if not good:
                    return
            else:
                client.sendall(b"\x05\x00")
            _, command, _, kind = self._read(client, 4)
            assert command == 1  # CONNECT
            if kind == 1:
                host = socket.inet_ntoa(self._read(client, 4))
            elif kind == 3:
                host = self._read(client, self._read(client, 1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, self._read(client, 16))
            port = int.from_bytes(self._read(client, 2), "big")
            self.seen.append((user, host, port))
            with socket.create_connection((host, port), timeout=10) as upstream:
                client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + b"\x00\x00")
                _relay(client, upstream)

    def stop(self) -> None:
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() does not
        self.sock.close()
        self.accepting.join()
        for thread in self.threads:
            thread.join(15)


@pytest.fixture
def socks() -> Iterator[_Socks5]:
    proxy = _Socks5(credentials=("puser", SECRET))
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_pips_socks_proxy_carries_requests(
    server: _Server, socks: _Socks5, sessions: NewSession, scheme: str
) -> None:
    session = sessions(TransportSettings(timeout=10, proxy=socks.url(scheme, f"puser:{SECRET}@")))
    for _ in range(2):
        assert session.get(server.url("/", host="localhost")).content == b"ok"
    # socks5h: the proxy resolves the name; socks5: the client does (localhost: 127.0.0.1).
    host = "localhost" if scheme == "socks5h" else "127.0.0.1"
    assert socks.seen == [("puser", host, server.port)]  # one connection, kept alive
    assert server.targets() == ["/", "/"]


def test_an_environment_socks_proxy_tunnels_https(
    tls_server: _Server,
    socks: _Socks5,
    sessions: NewSession,
    ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", socks.url("socks5h", f"puser:{SECRET}@"))
    session = sessions(TransportSettings(timeout=10, cert=str(ca.ca_file)))
    assert session.get(tls_server.url("/", host="localhost")).content == b"ok"
    assert socks.seen == [("puser", "localhost", tls_server.port)]


def test_a_refused_socks_login_is_connect_failed_without_the_password(
    server: _Server, socks: _Socks5, sessions: NewSession
) -> None:
    session = sessions(TransportSettings(timeout=10, proxy=socks.url("socks5", "puser:wrong@")))
    with pytest.raises(ConnectFailed) as caught:
        session.get(server.url("/"))
    assert "wrong" not in str(caught.value)
    assert server.seen == []


@pytest.mark.parametrize("kind", ["socks", "http", "none"])
def test_open_tunnel_goes_the_way_requests_go(
    server: _Server, socks: _Socks5, proxy: _Server, sessions: NewSession, kind: str
) -> None:
    """The guard's CONNECT for pip (a raw TCP connection) takes the session's proxy."""
    given = {
        "socks": socks.url("socks5h", f"puser:{SECRET}@"),
        "http": proxy.url(userinfo="puser:ppw@"),
        "none": None,
    }[kind]
    session = sessions(TransportSettings(timeout=10, proxy=given))
    with session.open_tunnel("localhost", server.port) as tunnel:
        tunnel.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tunnel.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    if kind == "socks":
        assert socks.seen == [("puser", "localhost", server.port)]
    if kind == "http":
        assert proxy.targets() == [f"localhost:{server.port}"]
        assert proxy.seen[0].headers["Proxy-Authorization"] == _basic("puser", "ppw")


# -- keyring ----------------------------------------------------------------------------------


@_route("/private")
def _private(handler: _Handler, query: dict[str, str]) -> None:
    """401 unless the keyring's credentials come."""
    if handler.headers.get("Authorization") == _basic("kuser", SECRET):
        handler.reply(200, b"private")
    else:
        handler.reply(401, b"who are you", [("WWW-Authenticate", 'Basic realm="index"')])


def _keyring_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``keyring`` command on PATH that knows one password; it logs how it was asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "keyring.log"
    script = bin_dir / "keyring"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:4] != ['--mode=creds', '--output=json', 'get']:\n"
        "    sys.exit(2)\n"
        f"print(json.dumps({{'username': 'kuser', 'password': {SECRET!r}}}))\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def test_the_keyring_command_answers_a_401_for_the_index(
    server: _Server, sessions: NewSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _keyring_command(tmp_path, monkeypatch)
    session = sessions(TransportSettings(timeout=10, keyring_provider="subprocess"))
    index = server.url("/private/simple/")
    session.add_index(index)
    assert session.get(server.url("/private")).content == b"private"
    assert session.get(server.url("/private")).content == b"private"  # remembered
    # Asked as pip asks: the index URL first, once.
    assert log.read_text().splitlines() == [f"--mode=creds --output=json get {index}"]
    assert _authorizations(server) == [None, _basic("kuser", SECRET), _basic("kuser", SECRET)]


def test_the_keyring_module_answers_a_401(
    server: _Server, sessions: NewSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str | None]] = []

    class Credential:
        username = "kuser"
        password = SECRET

    class FakeKeyring:
        @staticmethod
        def get_credential(service: str, username: str | None) -> Credential:
            asked.append((service, username))
            return Credential()

    monkeypatch.setitem(sys.modules, "keyring", FakeKeyring)
    session = sessions(TransportSettings(timeout=10, keyring_provider="import"))
    assert session.get(server.url("/private")).content == b"private"
    assert asked == [(f"127.0.0.1:{server.port}", None)]  # no index known: the netloc


def test_no_keyring_is_asked_when_pip_would_not_ask(
    server: _Server, sessions: NewSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _keyring_command(tmp_path, monkeypatch)
    session = sessions(TransportSettings(timeout=10, keyring_provider="disabled"))
    assert session.get(server.url("/private")).status_code == 401
    assert not log.exists()


def test_keyring_credentials_stay_with_their_host_after_a_redirect(
    server: _Server, sessions: NewSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keyring_command(tmp_path, monkeypatch)
    session = sessions(TransportSettings(timeout=10, keyring_provider="subprocess"))
    assert session.get(server.url("/private")).content == b"private"
    session.get(server.url(_to_localhost(server)))
    auths = _authorizations(server)
    assert auths[-2:] == [_basic("kuser", SECRET), None]  # 127.0.0.1 has them, localhost not


def test_a_failing_keyring_is_not_asked_again_and_not_quoted(
    server: _Server, sessions: NewSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    class BrokenKeyring:
        @staticmethod
        def get_credential(service: str, username: str | None) -> None:
            calls.append(service)
            raise RuntimeError(f"backend locked; last password {SECRET}")

    monkeypatch.setitem(sys.modules, "keyring", BrokenKeyring)
    session = sessions(TransportSettings(timeout=10, keyring_provider="import"))
    for _ in range(2):
        assert session.get(server.url("/private")).status_code == 401
    assert len(calls) == 1
