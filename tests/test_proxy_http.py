"""HTTP the guard's proxy speaks beyond a plain GET: HEAD, byte ranges, HTTP/1.0 keep-alive.

uv reads a wheel's metadata with a HEAD and byte-range GETs where an index has no PEP 658
files; ApacheBench -k and other HTTP/1.0 clients ask for keep-alive. The guard is real, on
127.0.0.1, in front of a simulated origin.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from safe_pip.authority.state import StateStore
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.proxy import Proxy
from safe_pip.guard.ranges import MAX_RANGES, parse_range, satisfiable
from safe_pip.guard.setup import GuardSetup
from safe_pip.net.http import TransportSettings
from safe_pip.testing import Origin

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def origin(state_dir: Path) -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0")
        yield server


@pytest.fixture
def proxy(origin: Origin, tmp_path: Path) -> Iterator[Proxy]:
    setup = GuardSetup(
        GuardOptions(changelog=origin.changelog_url, max_wait=2),
        TransportSettings(timeout=5),
        store=StateStore(tmp_path / "state"),
        say=lambda line: None,
    )
    setup.add_index(origin.simple_url, main=True)
    # serve's way of answering a refusal (install's holds the request until pip is ended)
    server = Proxy(setup.guard, on_refused="503")
    server.start()
    setup.guard.start_authorities()
    try:
        yield server
    finally:
        server.stop()


def wheel(proxy: Proxy, origin: Origin) -> tuple[str, bytes]:
    """The proxied URL of alpha's wheel (from the page the guard serves) and its bytes."""
    page = requests.get(f"{proxy.base}/i/0/alpha/", headers={"Accept": JSON}, timeout=30)
    assert page.status_code == 200
    entry = page.json()["files"][0]
    return entry["url"], origin.file_bytes(entry["filename"])


def raw(proxy: Proxy, request: bytes, *, reads: int = 1) -> tuple[socket.socket, list[bytes]]:
    """Send ``request`` on a new connection; read ``reads`` whole responses (by Content-Length)."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(request)
    stream = sock.makefile("rb")
    answers = []
    for _ in range(reads):
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            line = stream.readline()
            assert line, head
            head += line
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
        assert length is not None, head
        answers.append(head + stream.read(int(length.group(1))))
    return sock, answers


def test_head_on_a_file_and_a_page(proxy: Proxy, origin: Origin) -> None:
    url, data = wheel(proxy, origin)
    got = requests.get(url, timeout=30)
    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(data)) == got.headers["Content-Length"]
    assert head.headers["Accept-Ranges"] == "bytes" == got.headers["Accept-Ranges"]
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.headers["Cache-Control"] == "no-store"
    page = requests.head(f"{proxy.base}/i/0/alpha/", headers={"Accept": JSON}, timeout=30)
    full = requests.get(f"{proxy.base}/i/0/alpha/", headers={"Accept": JSON}, timeout=30)
    assert page.status_code == 200 and page.content == b""
    assert page.headers["Content-Type"] == full.headers["Content-Type"]
    assert page.headers["Content-Length"] == str(len(full.content))
    assert page.headers["Cache-Control"] == "no-store"
    # a HEAD ignores Range (range handling is defined for GET only)
    ranged = requests.head(url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert ranged.status_code == 200 and ranged.headers["Content-Length"] == str(len(data))


def test_head_keeps_the_connection_usable(proxy: Proxy, origin: Origin) -> None:
    url, data = wheel(proxy, origin)
    path = url.split(str(proxy.port), 1)[1].encode()
    request = b"HEAD %s HTTP/1.1\r\nHost: x\r\n\r\nGET %s HTTP/1.1\r\nHost: x\r\n\r\n" % (
        path, path,
    )
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    with sock, sock.makefile("rb") as stream:
        sock.sendall(request)
        heads = []
        for _ in range(2):
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                head += stream.readline()
            heads.append(head)
        assert heads[0].startswith(b"HTTP/1.1 200 ") and heads[1].startswith(b"HTTP/1.1 200 ")
        assert stream.read(len(data)) == data  # the HEAD sent no body before the GET's


@pytest.mark.parametrize(
    ("header", "part"),
    [
        ("bytes=0-99", slice(0, 100)),
        ("bytes=100-", slice(100, None)),
        ("bytes=-22", slice(-22, None)),
        ("bytes=10-10", slice(10, 11)),
        ("bytes=0-99999999", slice(0, None)),  # the last byte is clipped to the file's end
        ("Bytes = 5-9", slice(5, 10)),
        ("bytes=5-9, 999999999-", slice(5, 10)),  # the unsatisfiable one is dropped
    ],
)
def test_single_range(proxy: Proxy, origin: Origin, header: str, part: slice) -> None:
    url, data = wheel(proxy, origin)
    got = requests.get(url, headers={"Range": header}, timeout=30)
    assert got.status_code == 206, got.text
    want = data[part]
    first = part.start if part.start is None or part.start >= 0 else len(data) + part.start
    first = first or 0
    assert got.content == want
    assert got.headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{len(data)}"
    assert got.headers["Content-Length"] == str(len(want))
    assert got.headers["Accept-Ranges"] == "bytes"


def test_multiple_ranges_are_multipart(proxy: Proxy, origin: Origin) -> None:
    url, data = wheel(proxy, origin)
    got = requests.get(url, headers={"Range": "bytes=0-9,-30, 50-59"}, timeout=30)
    assert got.status_code == 206
    assert got.headers["Content-Length"] == str(len(got.content))
    kind = got.headers["Content-Type"]
    assert kind.startswith("multipart/byteranges; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + kind.encode() + b"\r\n\r\n" + got.content
    )
    parts = [
        (p["Content-Range"], p["Content-Type"], p.get_payload(decode=True))
        for p in message.iter_parts()
    ]
    n = len(data)
    assert parts == [
        (f"bytes 0-9/{n}", "application/octet-stream", data[:10]),
        (f"bytes {n - 30}-{n - 1}/{n}", "application/octet-stream", data[-30:]),
        (f"bytes 50-59/{n}", "application/octet-stream", data[50:60]),
    ]
    assert got.content.endswith(b"--\r\n")


@pytest.mark.parametrize("header", ["bytes=999999999-", "bytes=-0", "bytes=999999999-1000000000"])
def test_unsatisfiable_range_is_416(proxy: Proxy, origin: Origin, header: str) -> None:
    url, data = wheel(proxy, origin)
    got = requests.get(url, headers={"Range": header}, timeout=30)
    assert got.status_code == 416
    assert got.headers["Content-Range"] == f"bytes */{len(data)}"
    assert data[:16] not in got.content


@pytest.mark.parametrize(
    "header",
    ["bytes=abc", "bytes=5-1", "items=0-9", "bytes=", "bytes 0-9", "bytes=-", "bytes=1-2-3",
     "bytes=+1-2", "bytes=0-9," + ",".join(["0-1"] * MAX_RANGES)],
)
def test_malformed_range_is_ignored(proxy: Proxy, origin: Origin, header: str) -> None:
    url, data = wheel(proxy, origin)
    got = requests.get(url, headers={"Range": header}, timeout=30)
    assert got.status_code == 200
    assert got.content == data
    assert "Content-Range" not in got.headers


def test_if_range_sends_the_whole_file(proxy: Proxy, origin: Origin) -> None:
    # The guard gives no validator, so no If-Range can match: the whole file (RFC 9110 13.1.5)
    url, data = wheel(proxy, origin)
    got = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": '"x"'}, timeout=30)
    assert (got.status_code, got.content) == (200, data)


def test_no_range_from_a_file_that_fails_its_hash(proxy: Proxy, origin: Origin) -> None:
    url, data = wheel(proxy, origin)
    origin.faults.inject(url.rsplit("/", 1)[1], "wrong-bytes")
    got = requests.get(url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert got.status_code == 503  # refused after --max-wait: no byte of it went out
    assert "does not match the page's hash" in got.text
    head = requests.head(url, timeout=30)
    assert head.status_code == 503


def test_http10_keep_alive(proxy: Proxy, origin: Origin) -> None:
    url, data = wheel(proxy, origin)
    path = url.split(str(proxy.port), 1)[1].encode()
    one = b"GET %s HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" % path
    sock, answers = raw(proxy, one + one, reads=2)  # both on one connection
    with sock:
        for answer in answers:
            head, body = answer.split(b"\r\n\r\n", 1)
            assert b"\r\nConnection: keep-alive\r\n" in head + b"\r\n", head
            assert body == data
    # Without keep-alive, HTTP/1.0 gets its answer and the connection closed.
    sock, answers = raw(proxy, b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path)
    with sock:
        assert b"keep-alive" not in answers[0].split(b"\r\n\r\n", 1)[0]
        assert sock.recv(1) == b""


def test_parse_range() -> None:
    assert parse_range("bytes=0-1, 5-, -3") == [(0, 1), (5, None), (None, 3)]
    assert parse_range("bytes=0-1,,2-3") == [(0, 1), (2, 3)]  # empty list elements
    bad_headers = ("bytes=1-0", "bytes=a-", "bytes= ", "bytes=１-2", "bytes=٣-9", "0-1")
    for bad in bad_headers:
        assert parse_range(bad) is None, bad
    assert satisfiable([(0, 1), (None, 3), (9, None), (None, 0)], 10) == [(0, 1), (7, 9), (9, 9)]
    assert satisfiable([(None, 5), (0, None)], 0) == []


def test_a_wheel_is_downloaded_once_for_its_head_and_ranges(
    proxy: Proxy, origin: Origin
) -> None:
    """uv asks for one wheel's HEAD and then several ranges: the guard verifies the whole file
    once and answers the rest from its verified copy, not by downloading it again each time."""
    url, data = wheel(proxy, origin)
    assert requests.head(url, timeout=30).status_code == 200
    tail = requests.get(url, headers={"Range": "bytes=-22"}, timeout=30)
    body = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert tail.content == data[-22:] and body.content == data[:100]
    fetched = [path for host, path, _ in origin.authorization_seen if host == "files"]
    assert len(fetched) == 1, fetched
