"""Tests for the changelog client and authority, against a fake XML-RPC index on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from safe_pip.authority.changelog import ChangelogAuthority
from safe_pip.authority.changelog_client import CallRecord, ChangelogClient
from safe_pip.authority.state import StateStore
from safe_pip.errors import AuthorityError
from safe_pip.index.journal import ChangelogEntry, FileEvent, JournalSummary
from safe_pip.net.http import ConnectFailed, Session, TimedOut, TransportSettings, make_session

# --------------------------------------------------------------------------------------------
# A fake index speaking the changelog XML-RPC methods
# --------------------------------------------------------------------------------------------


class FakeIndex:
    """Journal plus a script of misbehaviours, one consumed per request."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str | None, int, str, int]] = []
        self.page_size = 50_000
        self.script: list[str] = []
        self.requests: list[tuple[str, tuple[Any, ...]]] = []
        self.slow_seconds = 0.5
        self.lock = threading.Lock()

    def add(self, name: str, action: str, version: str | None = None) -> int:
        serial = len(self.entries) + 1
        self.entries.append((name, version, 1_700_000_000 + serial, action, serial))
        return serial

    @property
    def last_serial(self) -> int:
        return len(self.entries)

    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]

    def respond(self, body: bytes) -> tuple[int, bytes, float]:
        """(status, body, delay before answering) for one request."""
        params, method = xmlrpc.client.loads(body)
        with self.lock:
            self.requests.append((method or "", params))
            step = self.script.pop(0) if self.script else "ok"
        if step.isdigit():
            return int(step), b"<html>error</html>", 0.0
        if step == "garbage":
            return 200, b"<html><body>not xml-rpc</body></html>", 0.0
        if step == "fault":
            fault = xmlrpc.client.Fault(-32601, "method not supported")
            return 200, xmlrpc.client.dumps(fault, methodresponse=True).encode(), 0.0
        if step == "wrong-type":
            return 200, self._dump("not a serial"), 0.0
        if step == "bad-row":
            return 200, self._dump([["proj", "1.0", 1, "create"]]), 0.0
        if step == "stale-row":
            return 200, self._dump([["proj", None, 1, "create", 0]]), 0.0
        delay = self.slow_seconds if step == "slow" else 0.0
        if method == "changelog_last_serial":
            return 200, self._dump(self.last_serial), delay
        if method == "changelog_since_serial":
            since = int(params[0])  # type: ignore[arg-type]
            rows = [list(e) for e in self.entries if e[4] > since][: self.page_size]
            return 200, self._dump(rows), delay
        if method == "list_packages_with_serial":
            listed: dict[str, int] = {}
            for name, _, _, _, serial in self.entries:
                listed[name] = serial
            return 200, self._dump(listed), delay
        fault = xmlrpc.client.Fault(-32601, f"no method {method}")
        return 200, xmlrpc.client.dumps(fault, methodresponse=True).encode(), 0.0

    @staticmethod
    def _dump(value: Any) -> bytes:
        return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/pypi":
            self.send_response(404)
            self.end_headers()
            return
        status, payload, delay = self.server.fake.respond(body)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://u:hunter22@127.0.0.1:1/elsewhere")
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (timeout tests)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeIndex

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out is expected here


@pytest.fixture
def fake() -> Iterator[FakeIndex]:
    yield FakeIndex()


@pytest.fixture
def server(fake: FakeIndex) -> Iterator[str]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.fake = fake
    # shutdown() waits for the serving loop's next poll: poll often, so teardown is quick.
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/pypi"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def session() -> Iterator[Session]:
    s = make_session(TransportSettings())
    yield s
    s.close()


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state")


class FakeTime:
    """Injectable clock and sleep: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


INDEX = "http://127.0.0.1/simple/"


def make_authority(
    url: str,
    session: Session,
    store: StateStore,
    *,
    fake_time: FakeTime | None = None,
    max_wait: float = 10.0,
    timeout: float = 5.0,
    records: list[CallRecord] | None = None,
    **kwargs: Any,
) -> ChangelogAuthority:
    ft = fake_time or FakeTime()
    client = ChangelogClient(
        url, session, timeout=timeout, on_call=records.append if records is not None else None
    )
    return ChangelogAuthority(
        client, store, INDEX, max_wait=max_wait, sleep=ft.sleep, clock=ft.clock, **kwargs
    )


# --------------------------------------------------------------------------------------------
# ChangelogClient
# --------------------------------------------------------------------------------------------


def test_client_url_has_no_credentials(session: Session) -> None:
    client = ChangelogClient("https://u:p@h.example:8443/pypi", session)
    assert client.url == "https://h.example:8443/pypi"
    assert client.authority == "changelog https://h.example:8443/pypi"


def test_client_calls_and_records(fake: FakeIndex, server: str, session: Session) -> None:
    fake.add("Foo_Bar", "create")
    fake.add("Foo_Bar", "add py3 file foo_bar-1.0-py3-none-any.whl", "1.0")
    records: list[CallRecord] = []
    url = server.replace("http://", "http://alice:s3cret-pw@")
    client = ChangelogClient(url, session, on_call=records.append)
    assert client.last_serial() == 2
    entries = client.since_serial(0)
    assert entries == [
        ChangelogEntry("foo-bar", None, 1_700_000_001, "create", 1),
        ChangelogEntry(
            "foo-bar", "1.0", 1_700_000_002, "add py3 file foo_bar-1.0-py3-none-any.whl", 2
        ),
    ]
    assert [r.method for r in records] == ["changelog_last_serial", "changelog_since_serial"]
    assert all(r.status == 200 and r.error is None and r.elapsed_ms >= 0 for r in records)
    assert all(r.url == server for r in records)
    assert fake.requests == [("changelog_last_serial", ()), ("changelog_since_serial", (0,))]


def test_client_lists_packages_with_serial(fake: FakeIndex, server: str, session: Session) -> None:
    fake.add("Foo_Bar", "create")
    fake.add("other", "create")
    fake.add("Foo_Bar", "add Owner alice")
    client = ChangelogClient(server, session)
    assert client.packages_with_serial() == {"foo-bar": 3, "other": 2}
    fake.script = ["wrong-type"]
    with pytest.raises(AuthorityError, match="expected a struct") as caught:
        client.packages_with_serial()
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("step", "permanent", "status"),
    [
        ("405", True, 405),
        ("404", True, 404),
        ("403", True, 403),
        ("302", True, 302),
        ("500", False, 500),
        ("502", False, 502),
        ("503", False, 503),
        ("429", False, 429),
        ("garbage", True, 200),
        ("fault", True, 200),
        ("wrong-type", True, 200),
    ],
)
def test_client_error_classes(
    fake: FakeIndex,
    server: str,
    session: Session,
    step: str,
    permanent: bool,
    status: int,
) -> None:
    fake.script = [step]
    records: list[CallRecord] = []
    url = server.replace("http://", "http://alice:s3cret-pw@")
    client = ChangelogClient(url, session, on_call=records.append)
    with pytest.raises(AuthorityError) as info:
        client.last_serial()
    err = info.value
    assert err.permanent is permanent
    assert err.authority == f"changelog {server}"
    assert "s3cret-pw" not in str(err) and "hunter22" not in str(err)
    assert len(records) == 1 and records[0].status == status and records[0].error
    assert "s3cret-pw" not in repr(records[0])
    if step == "405":
        assert "405" in err.reason


@pytest.mark.parametrize("step", ["bad-row", "garbage"])
def test_client_since_serial_bad_rows(
    fake: FakeIndex, server: str, session: Session, step: str
) -> None:
    fake.script = [step]
    with pytest.raises(AuthorityError) as info:
        ChangelogClient(server, session).since_serial(0)
    assert info.value.permanent


def test_client_timeout_and_connection_error_are_transient(
    fake: FakeIndex, server: str, session: Session
) -> None:
    fake.script = ["slow"]
    records: list[CallRecord] = []
    with pytest.raises(AuthorityError) as info:
        ChangelogClient(server, session, timeout=0.1, on_call=records.append).last_serial()
    assert not info.value.permanent
    assert isinstance(info.value.__cause__, TimedOut)
    assert records[0].status is None and "timed out" in (records[0].error or "")

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(AuthorityError) as info:
        ChangelogClient(f"http://127.0.0.1:{port}/pypi", session, timeout=2).last_serial()
    assert not info.value.permanent
    assert isinstance(info.value.__cause__, ConnectFailed)


def test_client_rejects_negative_serial(server: str, session: Session) -> None:
    with pytest.raises(ValueError):
        ChangelogClient(server, session).since_serial(-1)


# --------------------------------------------------------------------------------------------
# ChangelogAuthority
# --------------------------------------------------------------------------------------------


def _populate(fake: FakeIndex) -> None:
    fake.add("Alpha", "create")  # 1
    fake.add("Alpha", "new release", "1.0")  # 2
    fake.add("Alpha", "add source file alpha-1.0.tar.gz", "1.0")  # 3
    fake.add("beta", "create")  # 4
    fake.add("Alpha", "add Owner alice")  # 5
    fake.add("beta", "add py3 file beta-2.0-py3-none-any.whl", "2.0")  # 6
    fake.add("Alpha", "invite Maintainer bob")  # 7


def test_cold_is_two_calls(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    auth = make_authority(server, session, store)
    summary = auth.summary()
    assert auth.calls == 2 and auth.mode == "cold"
    assert fake.requests == [("changelog_last_serial", ()), ("changelog_since_serial", (0,))]
    assert (summary.low, summary.head) == (0, 7)
    # role/invite entries (5, 7) do not count: the newest content change of alpha is 3
    assert dict(summary.content_serials) == {"alpha": 3, "beta": 6}
    assert summary.required("ALPHA") == 3


def test_cold_window_limits_what_is_read(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    summary = make_authority(server, session, store, cold_window=3).summary()
    assert fake.requests[1] == ("changelog_since_serial", (4,))
    assert (summary.low, summary.head) == (4, 7)
    assert dict(summary.content_serials) == {"beta": 6}
    assert not summary.covers(3) and summary.covers(4)


def test_warm_is_one_call_and_role_changes_do_not_count(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    make_authority(server, session, store).summary()
    fake.requests.clear()
    fake.add("beta", "remove Owner carol")  # 8
    fake.add("beta", "accepted Maintainer dave")  # 9
    fake.add("gamma", "add Maintainer some-team")  # 10
    fake.add("Alpha", "yank release", "1.0")  # 11

    auth = make_authority(server, session, store)
    summary = auth.summary()
    assert auth.calls == 1 and auth.mode == "warm"
    assert fake.requests == [("changelog_since_serial", (7,))]
    assert (summary.low, summary.head) == (0, 11)
    assert dict(summary.content_serials) == {"alpha": 11, "beta": 6}
    assert summary.required("gamma") is None

    # nothing new: still one call, same head
    fake.requests.clear()
    auth = make_authority(server, session, store)
    assert auth.summary() == summary and auth.calls == 1


def test_file_events_are_kept_warm_and_a_cache_without_them_goes_cold(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    """Pages without a serial are judged by the window's file events: a cached window that
    did not keep them cannot prove anything, so it is read again cold (two calls, as any
    cold start); after that, warm runs stay one call and keep the events."""
    _populate(fake)
    make_authority(server, session, store).summary()  # cached without file events
    fake.requests.clear()
    auth = make_authority(server, session, store, keep_files=True)
    cold = auth.summary()
    assert auth.calls == 2 and auth.mode == "cold"
    assert cold.file_events("alpha") == (FileEvent(3, "add", "alpha-1.0.tar.gz"),)

    fake.add("Alpha", "remove file alpha-1.0.tar.gz", "1.0")  # 8
    auth = make_authority(server, session, store, keep_files=True)
    warm = auth.summary()
    assert auth.calls == 1 and auth.mode == "warm"
    assert [e.kind for e in warm.file_events("alpha") or ()] == ["add", "remove"]
    assert warm.file_events("beta") == (FileEvent(6, "add", "beta-2.0-py3-none-any.whl"),)


def test_paging_with_small_page_size(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    for i in range(10):
        fake.add(f"p{i}", "create")
    fake.page_size = 3
    auth = make_authority(server, session, store, page_size=3)
    summary = auth.summary()
    sinces = [params[0] for method, params in fake.requests if method.endswith("since_serial")]
    assert sinces == [0, 3, 6, 9]  # the last page is short: 1 row
    assert auth.calls == 5
    assert summary.head == 10 and len(summary.content_serials) == 10

    # warm, 7 new entries, page size 3: pages of 3, 3, 1
    for i in range(7):
        fake.add(f"q{i}", "remove release", "1")
    fake.requests.clear()
    auth = make_authority(server, session, store, page_size=3)
    summary = auth.summary()
    assert [p[0] for _, p in fake.requests] == [10, 13, 16]
    assert auth.calls == 3 and summary.head == 17 and len(summary.content_serials) == 17


def test_cold_paging_stops_at_global_serial(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    for i in range(6):
        fake.add(f"p{i}", "create")
    fake.page_size = 3
    auth = make_authority(server, session, store, page_size=3)
    assert auth.summary().head == 6
    assert auth.calls == 3  # last_serial, then two full pages that reach G: no empty page


def test_warm_falls_back_to_cold_when_backlog_exceeds_window(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    fake.add("old", "create")
    make_authority(server, session, store, cold_window=4).summary()
    for i in range(20):
        fake.add(f"p{i}", "create")
    fake.page_size = 2
    fake.requests.clear()
    auth = make_authority(server, session, store, cold_window=4, page_size=2)
    summary = auth.summary()
    assert auth.mode == "warm-then-cold"
    # warm pages from 1 (2 rows) and 3 (2 rows) reach the window; then cold from 21 - 4
    assert fake.methods() == [
        "changelog_since_serial",
        "changelog_since_serial",
        "changelog_last_serial",
        "changelog_since_serial",
        "changelog_since_serial",
    ]
    assert (summary.low, summary.head) == (17, 21)
    assert set(summary.content_serials) == {"p16", "p17", "p18", "p19"}
    assert store.load_journal(INDEX) == summary  # the old window does not touch the new one


def test_summary_persisted_and_reloaded(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    summary = make_authority(server, session, store).summary()
    reopened = StateStore(store.root)
    assert reopened.load_journal(INDEX) == summary
    assert reopened.load_journal("http://127.0.0.1/simple") == summary  # same key


def test_summary_can_be_had_before_it_is_kept(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    """The guard hands the summary to its pages first and saves it after: keep=False leaves
    the store alone until keep(), which saves once."""
    _populate(fake)
    auth = make_authority(server, session, store)
    summary = auth.summary(keep=False)
    assert StateStore(store.root).load_journal(INDEX) is None
    assert auth.summary() is summary  # computed once; this caller keeps it
    assert StateStore(store.root).load_journal(INDEX) == summary
    saves: list[JournalSummary] = []
    store.save_journal = lambda url, s: saves.append(s)  # type: ignore[method-assign]
    auth.keep()
    assert saves == []  # kept once


def test_corrupt_journal_file_warns_and_goes_cold(
    fake: FakeIndex,
    server: str,
    session: Session,
    store: StateStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _populate(fake)
    make_authority(server, session, store).summary()
    [journal_file] = store.root.glob("*.journal.json")
    journal_file.write_text('{"format": 1, "index": "http://127.0.0.1/simple/", "journal": {')
    fake.requests.clear()
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        auth = make_authority(server, session, store)
        summary = auth.summary()
    assert auth.mode == "cold" and auth.calls == 2
    assert summary.head == 7
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(journal_file) in warnings[0].getMessage()
    assert store.load_journal(INDEX) == summary  # rebuilt


def test_broken_changelog_is_permanent(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    make_authority(server, session, store).summary()
    fake.script = ["stale-row"]  # a row with serial 0 when asked for > 7
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft)
    with pytest.raises(AuthorityError) as info:
        auth.summary()
    assert info.value.permanent and "broken changelog" in info.value.reason
    assert ft.sleeps == []


def test_405_is_permanent_at_once(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    fake.script = ["405"]
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft, max_wait=60)
    with pytest.raises(AuthorityError) as info:
        auth.summary()
    assert info.value.permanent
    assert auth.calls == 1 and ft.sleeps == [] and len(fake.requests) == 1
    # the same exception for every later caller, without asking again
    with pytest.raises(AuthorityError) as again:
        auth.summary()
    assert again.value is info.value and len(fake.requests) == 1


@pytest.mark.parametrize("step", ["garbage", "fault"])
def test_garbage_and_fault_are_permanent(
    fake: FakeIndex, server: str, session: Session, store: StateStore, step: str
) -> None:
    fake.script = [step]
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft, max_wait=60)
    with pytest.raises(AuthorityError) as info:
        auth.summary()
    assert info.value.permanent and auth.calls == 1 and ft.sleeps == []


def test_500_then_success_is_retried(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    fake.script = ["500", "503"]
    ft = FakeTime()
    records: list[CallRecord] = []
    auth = make_authority(server, session, store, fake_time=ft, records=records)
    summary = auth.summary()
    assert summary.head == 7
    assert ft.sleeps == [0.5, 1.0]
    assert auth.calls == 4  # two failed attempts, then last_serial and since_serial
    assert [r.status for r in records] == [500, 503, 200, 200]


def test_timeouts_retried_until_max_wait(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    fake.script = ["slow"] * 10
    fake.slow_seconds = 0.3
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft, max_wait=2.0, timeout=0.05)
    with pytest.raises(AuthorityError) as info:
        auth.summary()
    err = info.value
    assert not err.permanent
    assert "gave up after 4 attempts" in err.reason and "timed out" in err.reason
    assert ft.sleeps == [0.5, 1.0, 0.5]  # the last sleep is cut to what max_wait leaves
    assert auth.calls == 4


def test_backoff_doubles_and_is_capped(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    fake.script = ["500"] * 50
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft, max_wait=30.0)
    with pytest.raises(AuthorityError) as info:
        auth.summary()
    assert not info.value.permanent
    assert ft.sleeps[:6] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert max(ft.sleeps) == 5.0 and sum(ft.sleeps) == pytest.approx(30.0)


def test_zero_max_wait_means_one_attempt(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    fake.script = ["500"]
    ft = FakeTime()
    auth = make_authority(server, session, store, fake_time=ft, max_wait=0)
    with pytest.raises(AuthorityError):
        auth.summary()
    assert auth.calls == 1 and ft.sleeps == []


def test_summary_is_computed_once_across_threads(
    fake: FakeIndex, server: str, session: Session, store: StateStore
) -> None:
    _populate(fake)
    fake.script = ["slow"]
    fake.slow_seconds = 0.2
    auth = make_authority(server, session, store)
    results: list[JournalSummary] = []
    threads = [threading.Thread(target=lambda: results.append(auth.summary())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert len(fake.requests) == 2 and auth.calls == 2


def test_save_failure_is_only_a_warning(
    fake: FakeIndex,
    server: str,
    session: Session,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _populate(fake)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    store = StateStore(blocker / "state")  # cannot be created
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        summary = make_authority(server, session, store).summary()
    assert summary.head == 7
    assert any("could not save" in r.getMessage() for r in caplog.records)


def test_refused_journal_cache_is_only_a_warning(
    fake: FakeIndex,
    server: str,
    session: Session,
    store: StateStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _populate(fake)
    make_authority(server, session, store).summary()
    [journal_file] = store.root.glob("*.journal.json")
    journal_file.unlink()
    journal_file.symlink_to(tmp_path / "planted")
    fake.requests.clear()
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        auth = make_authority(server, session, store)
        assert auth.summary().head == 7
    assert auth.mode == "cold" and auth.calls == 2
    assert any("symlink" in r.getMessage() for r in caplog.records)
    assert journal_file.is_symlink() and not (tmp_path / "planted").exists()
