"""``--as-of``: the page-at-a-point transformation (pure) and real pip runs that replay a view."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from test_install import installed, safe_pip

from safe_pip.authority.changelog import ChangelogClient
from safe_pip.errors import UsageError
from safe_pip.guard.asofview import AsOfView
from safe_pip.guard.indexes import IndexEntry
from safe_pip.index.asof import (
    AsOf,
    JournalAfter,
    find_point,
    fold_journal,
    page_as_of,
    parse_as_of,
)
from safe_pip.index.journal import ChangelogEntry
from safe_pip.index.pages import DistFile, ProjectPage, parse_page
from safe_pip.net.http import TransportSettings, make_session
from safe_pip.testing import CDN, Origin, build_wheel

# ------------------------------------------------------------------------------ the point


def test_parse_serial_and_datetimes() -> None:
    assert parse_as_of("1043") == AsOf(serial=1043)
    utc = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)
    assert parse_as_of("2026-01-31T12:00:00Z").moment == utc
    assert parse_as_of("2026-01-31T12:00:00").moment == utc  # no offset: UTC, not local time
    assert parse_as_of("2026-01-31T13:00:00+01:00").moment == utc
    assert parse_as_of("2026-01-31").moment == datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert str(parse_as_of("2026-01-31T13:00:00+01:00")) == "2026-01-31T12:00:00Z"
    for bad in ("yesterday", "-5", "12.5", ""):
        with pytest.raises(UsageError, match="--as-of"):
            parse_as_of(bad)


# --------------------------------------------------------------------- the pure transformation


def _file(name: str, *, yanked: bool = False, uploaded: str | None = None) -> DistFile:
    return DistFile(
        filename=name,
        url=f"https://files.example/{name}",
        hashes={"sha256": "ab" * 32},
        yanked=yanked,
        yanked_reason="broken" if yanked else None,
        upload_time=uploaded,
    )


def _page(*files: DistFile, versions: tuple[str, ...] | None = None) -> ProjectPage:
    return ProjectPage(name="alpha", files=files, serials={"header": 20}, versions=versions)


def _entry(serial: int, action: str, version: str | None = None, ts: int = 0) -> ChangelogEntry:
    return ChangelogEntry("alpha", version, ts or serial, action, serial)


def test_journal_removes_files_added_after_the_point() -> None:
    history = fold_journal(
        10,
        [
            _entry(9, "add py3 file alpha-0.9-py3-none-any.whl", "0.9"),  # before: ignored
            _entry(11, "new release", "2.0"),
            _entry(12, "add py3 file alpha-2.0-py3-none-any.whl", "2.0"),
            _entry(13, "add Owner someone"),  # a role change: nothing to undo
        ],
    )["alpha"]
    page = _page(
        _file("alpha-1.0-py3-none-any.whl"),
        _file("alpha-2.0-py3-none-any.whl"),
        versions=("1.0", "2.0"),
    )
    result = page_as_of(page, serial=13, basis="journal", history=history)
    assert result.page is not None
    assert [f.filename for f in result.page.files] == ["alpha-1.0-py3-none-any.whl"]
    assert result.page.versions == ("1.0",)
    assert result.dropped == ("alpha-2.0-py3-none-any.whl",)
    assert not result.unknown and not result.lost


def test_yanks_after_the_point_are_undone_and_before_kept() -> None:
    history = fold_journal(
        10,
        [
            _entry(11, "yank release", "1.1"),  # after: undone
            _entry(12, "unyank release", "1.2"),  # after: it was yanked at the point
            _entry(13, "unyank release", "1.1"),  # the first entry after the point decides
        ],
    )["alpha"]
    page = _page(
        _file("alpha-1.0-py3-none-any.whl", yanked=True),  # yanked before the point: kept
        _file("alpha-1.1-py3-none-any.whl", yanked=False),
        _file("alpha-1.1.tar.gz", yanked=False),
        _file("alpha-1.2-py3-none-any.whl", yanked=False),
    )
    result = page_as_of(page, serial=13, basis="journal", history=history)
    assert result.page is not None
    yanked = {f.filename: f.yanked for f in result.page.files}
    assert yanked == {
        "alpha-1.0-py3-none-any.whl": True,
        "alpha-1.1-py3-none-any.whl": False,
        "alpha-1.1.tar.gz": False,
        "alpha-1.2-py3-none-any.whl": True,
    }
    assert result.reyanked == ("1.2",)

    history = fold_journal(10, [_entry(11, "yank release", "1.1")])["alpha"]
    page = _page(_file("alpha-1.1-py3-none-any.whl", yanked=True))
    result = page_as_of(page, serial=11, basis="journal", history=history)
    assert result.page is not None and not result.page.files[0].yanked
    assert result.unyanked == ("1.1",)


def test_removed_after_the_point_is_named_as_lost() -> None:
    history = fold_journal(
        10,
        [
            _entry(11, "remove file alpha-1.0-py3-none-any.whl", "1.0"),
            _entry(12, "remove release", "0.9"),
            _entry(13, "new release", "3.0"),
            _entry(14, "add py3 file alpha-3.0-py3-none-any.whl", "3.0"),
            _entry(15, "remove file alpha-3.0-py3-none-any.whl", "3.0"),  # never at the point
            _entry(16, "remove release", "3.0"),
        ],
    )["alpha"]
    result = page_as_of(_page(), serial=16, basis="journal", history=history)
    assert result.lost == ("alpha-1.0-py3-none-any.whl", "release 0.9")
    # A page still listing them (older than the removals) loses nothing, and keeps them.
    stale = _page(_file("alpha-1.0-py3-none-any.whl"), _file("alpha-0.9.tar.gz"))
    result = page_as_of(stale, serial=10, basis="journal", history=history)
    assert result.lost == () and result.page == stale
    gone = fold_journal(10, [_entry(11, "remove project")])["alpha"]
    assert page_as_of(None, serial=None, basis="journal", history=gone).lost == (
        "the whole project",
    )
    # A project created after the point did not exist at it: nothing is listed, nothing lost.
    created = fold_journal(10, [_entry(11, "create"), _entry(12, "remove project")])["alpha"]
    result = page_as_of(None, serial=None, basis="journal", history=created)
    assert result.lost == () and result.page is None


def test_upload_time_basis_and_files_without_one() -> None:
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    page = _page(
        _file("alpha-1.0-py3-none-any.whl", uploaded="2025-12-31T23:59:59.123456Z"),
        _file("alpha-2.0-py3-none-any.whl", uploaded="2026-01-01T00:00:01Z"),
        _file("alpha-2.0.tar.gz"),
    )
    result = page_as_of(page, serial=20, basis="upload-time", moment=moment)
    assert result.page is not None
    assert [f.filename for f in result.page.files] == ["alpha-1.0-py3-none-any.whl"]
    assert result.dropped == ("alpha-2.0-py3-none-any.whl",)
    assert result.unknown == ("alpha-2.0.tar.gz",)


def test_serial_without_a_journal() -> None:
    page = _page(_file("alpha-1.0-py3-none-any.whl"))
    same = page_as_of(page, serial=20, basis="serial-only", point_serial=20)
    assert same.page == page and not same.unknown  # nothing changed on it since the point
    newer = page_as_of(page, serial=21, basis="serial-only", point_serial=20)
    assert newer.page is not None and newer.page.files == ()
    assert newer.unknown == ("alpha-1.0-py3-none-any.whl",)


def test_journal_after_looks_names_up_normalised() -> None:
    journal = JournalAfter(5, 9, fold_journal(5, [_entry(6, "create")]))
    assert journal.history("Alpha").created
    assert not journal.history("beta").created


def test_find_point_bisects_with_few_calls() -> None:
    # 10,000 entries, one a second from t=1000; the index answers 100 rows a call.
    rows = [ChangelogEntry("p", None, 1000 + i, "create", i + 1) for i in range(10_000)]
    calls: list[int] = []

    def since(n: int) -> list[ChangelogEntry]:
        calls.append(n)
        return rows[n : n + 100]

    def at(ts: float) -> datetime:
        return datetime.fromtimestamp(ts, tz=timezone.utc)

    assert find_point(at(1000 + 4321), 10_000, since) == 4322
    assert len(calls) <= 14  # log2(10,000 / 100) + a few, never one per entry
    assert find_point(at(999), 10_000, since) == 0  # before the first entry
    assert find_point(at(1000 + 20_000), 10_000, since) == 10_000
    assert find_point(at(1000.5), 10_000, since) == 1


# ----------------------------------------------------------------------- real pip, end to end


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def _resolution(report: Path) -> list[tuple[str, str, str]]:
    doc = json.loads(report.read_text())
    return sorted(
        (
            item["metadata"]["name"],
            item["metadata"]["version"],
            item["download_info"]["archive_info"]["hashes"]["sha256"],
        )
        for item in doc["install"]
    )


def test_replay_is_identical_under_concurrent_publishing(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0", requires=["beta>=1"])
    origin.publish("beta", "1.0")
    point = origin.last_serial
    first = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", str(point),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t1"),
        "--report", str(tmp_path / "r1.json"), "alpha",
    )
    assert first.returncode == 0, first.stderr
    # Between the runs: new releases of both, a yank of what the point resolved to.
    origin.publish("alpha", "1.1", requires=["beta>=2"])
    origin.publish("beta", "2.0")
    origin.yank("alpha", "1.0")
    stop = threading.Event()

    def publisher() -> None:  # and more releases while the second run resolves
        n = 0
        while not stop.is_set():
            n += 1
            origin.publish("alpha", f"1.{n + 1}", requires=["beta>=2"])
            origin.publish("beta", f"2.{n}")
            stop.wait(0.05)

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    try:
        second = safe_pip(
            "--changelog", cdn.changelog_url, "--as-of", str(point), "--max-wait", "60",
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"),
            "--report", str(tmp_path / "r2.json"), "alpha",
        )
    finally:
        stop.set()
        thread.join()
    assert second.returncode == 0, second.stderr
    assert _resolution(tmp_path / "r1.json") == _resolution(tmp_path / "r2.json")
    assert installed(tmp_path / "t1") == installed(tmp_path / "t2") == {
        "alpha": "1.0",
        "beta": "1.0",
    }
    # Without --as-of the same command sees the new view (the publishing was real).
    now = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t3"), "alpha",
    )
    assert now.returncode == 0, now.stderr
    assert installed(tmp_path / "t3")["alpha"] != "1.0"


def test_yanked_before_the_point_stays_yanked_after_it_is_undone(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    for version in ("1.0", "1.1"):
        origin.publish("alpha", version)
        origin.publish("beta", version)
    origin.yank("beta", "1.1")  # before the point: pip must still avoid it
    point = origin.last_serial
    origin.yank("alpha", "1.1")  # after the point: at the point it was installable
    origin.unyank("beta", "1.1")  # after the point: at the point it was yanked
    report = tmp_path / "guard.json"
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", str(point), "--guard-report", str(report),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
        "alpha", "beta",
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.1", "beta": "1.0"}
    pages = {p["project"]: p for p in json.loads(report.read_text())["as_of"]["pages"]}
    assert pages["alpha"]["unyanked"] == ["1.1"]
    assert pages["beta"]["reyanked"] == ["1.1"]
    today = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "now"),
        "alpha", "beta",
    )
    assert today.returncode == 0, today.stderr
    assert installed(tmp_path / "now") == {"alpha": "1.0", "beta": "1.1"}


def test_as_of_in_the_future_of_the_view_is_refused(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    ahead = origin.last_serial + 5
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", str(ahead), "--max-wait", "1",
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha",
    )
    assert proc.returncode == 75, proc.stderr
    assert f"--as-of {ahead} is after the newest serial" in proc.stderr
    assert installed(tmp_path / "t") == {}


def test_removed_after_the_point_warns_and_strict_refuses(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    origin.publish("alpha", "1.1")
    point = origin.last_serial
    origin.remove_release("alpha", "1.1")
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", str(point),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t1"), "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert "release 1.1 of alpha were removed" in proc.stderr
    assert installed(tmp_path / "t1") == {"alpha": "1.0"}
    strict = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", str(point), "--strict",
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"), "alpha",
    )
    assert strict.returncode == 75, strict.stderr
    assert "AS-OF" in strict.stderr and "cannot be restored" in strict.stderr
    assert installed(tmp_path / "t2") == {}


def test_datetime_uses_the_changelog_timestamps(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    moment = datetime.now(timezone.utc).replace(microsecond=0)
    # Journal timestamps are whole seconds: one release just before the point, one after.
    origin.clock = lambda: moment.timestamp() - 2
    origin.publish("alpha", "1.0")
    origin.clock = lambda: moment.timestamp() + 2
    # An upload time that claims to be older than the point: the journal knows better.
    origin.publish("alpha", "2.0", upload_time=moment - timedelta(hours=1))
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--as-of", moment.isoformat(),
        "--guard-report", str(tmp_path / "guard.json"),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0"}
    as_of = json.loads((tmp_path / "guard.json").read_text())["as_of"]
    assert as_of["indexes"][0]["point_serial"] == 3  # create, new release, add file


def test_datetime_without_a_changelog_uses_upload_time(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    now = datetime.now(timezone.utc)
    origin.publish("alpha", "1.0", upload_time=now - timedelta(days=3))
    origin.publish("alpha", "2.0", upload_time=now - timedelta(days=1))
    origin.yank("alpha", "1.0")  # cannot be undone without a changelog: said so
    point = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    proc = safe_pip(
        "--as-of", point,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha==1.0",
    )
    assert proc.returncode == 0, proc.stderr  # pip installs a pinned yanked release
    assert "has no changelog" in proc.stderr and "cannot be undone" in proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0"}
    newer = safe_pip(
        "--as-of", point,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"), "alpha==2.0",
    )
    assert newer.returncode not in (0, 75), newer.stderr  # 2.0 is not in the view: pip fails


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_mirror(tmp_path: Path) -> Iterator[str]:
    """A PEP 503 static mirror (HTML only, so no upload times) with a serial comment."""
    root = tmp_path / "mirror"
    project = root / "simple" / "alpha"
    project.mkdir(parents=True)
    name, data = build_wheel("alpha", "1.0")
    (root / name).write_bytes(data)
    (project / "index.html").write_text(
        f'<html><body><a href="../../{name}">{name}</a></body></html>\n<!--SERIAL 7-->\n'
    )

    def handler(*args: Any, **kwargs: Any) -> _Quiet:
        return _Quiet(*args, directory=str(root), **kwargs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


def test_files_without_upload_time_are_dropped_or_refused(
    static_mirror: str, tmp_path: Path, state_dir: Path
) -> None:
    proc = safe_pip(
        "--as-of", "2026-01-01",
        "install", "--index-url", static_mirror, "--target", str(tmp_path / "t1"), "alpha",
    )
    assert proc.returncode not in (0, 75), proc.stderr  # pip finds nothing in the view
    assert "dropped alpha-1.0-py3-none-any.whl of alpha" in proc.stderr
    assert "no PEP 700 upload-time" in proc.stderr
    strict = safe_pip(
        "--as-of", "2026-01-01", "--strict",
        "install", "--index-url", static_mirror, "--target", str(tmp_path / "t2"), "alpha",
    )
    assert strict.returncode == 75, strict.stderr
    assert installed(tmp_path / "t2") == {}
    plain = safe_pip(
        "install", "--index-url", static_mirror, "--target", str(tmp_path / "t3"), "alpha"
    )
    assert plain.returncode == 0, plain.stderr  # the mirror itself works


def test_as_of_from_the_environment_and_bad_values(tmp_path: Path, state_dir: Path) -> None:
    bad = safe_pip("--as-of", "last tuesday", "install", "alpha")
    assert bad.returncode == 2 and "--as-of" in bad.stderr
    bad_env = safe_pip("install", "alpha", env={"SAFE_PIP_AS_OF": "soon"})
    assert bad_env.returncode == 2 and "SAFE_PIP_AS_OF" in bad_env.stderr


def test_journal_reads_are_bounded_by_entries_not_projects(tmp_path: Path, state_dir: Path) -> None:
    with Origin(changelog_page_size=7) as origin, CDN(origin, edges=1) as cdn:
        origin.publish("alpha", "1.0", requires=[f"p{i}" for i in range(12)])
        for i in range(12):
            origin.publish(f"p{i}", "1.0")
        point = origin.last_serial
        for i in range(12):  # 24 entries after the point (new release, add file), 12 projects
            origin.publish(f"p{i}", "2.0")
        origin.calls.clear()
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--as-of", str(point),
            "--guard-report", str(tmp_path / "guard.json"),
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha",
        )
        calls = dict(origin.calls)
    assert proc.returncode == 0, proc.stderr
    assert set(installed(tmp_path / "t").values()) == {"1.0"}
    changelog_calls = [
        c for c in json.loads((tmp_path / "guard.json").read_text())["authority_calls"]
        if c["authority"] == "changelog"
    ]
    assert len(changelog_calls) == sum(calls.values())  # every call is in the guard report
    # --as-of: changelog_last_serial once, then ceil(24 / 7) = 4 pages past the point, for 13
    # pages read; the freshness summary adds one call of each kind (cold).
    assert calls["changelog_last_serial"] == 2
    assert 4 <= calls["changelog_since_serial"] <= 4 + 1


# ------------------------------------------------------- the view, without pip (real changelog)


class _FakeGuard:
    """Stands in for the guard: the view only calls ``refuse`` on it."""

    def __init__(self) -> None:
        self.refused: list[object] = []

    def refuse(self, refusal: object) -> None:
        self.refused.append(refusal)
        raise RuntimeError(str(refusal))


def _fake() -> Any:
    return _FakeGuard()


def _view(point: str, lines: list[str], *, strict: bool = False) -> AsOfView:
    return AsOfView(
        parse_as_of(point), strict=strict, max_wait=0.0, say=lines.append, sleep=lambda s: None
    )


def _alpha_page(origin: Origin) -> ProjectPage:
    resp = requests.get(
        f"{origin.simple_url}alpha/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    return parse_page(
        resp.content, content_type=resp.headers["Content-Type"], url=resp.url,
        headers=resp.headers,
    )


def test_a_page_newer_than_the_journal_read_reads_on(origin: Origin) -> None:
    origin.publish("alpha", "1.0")
    point = origin.last_serial
    origin.publish("beta", "1.0")
    lines: list[str] = []
    view = _view(str(point), lines)
    entry = IndexEntry(0, origin.simple_url)
    client = ChangelogClient(origin.changelog_url, make_session(TransportSettings()))
    view.add_index(entry, client, main=True)
    guard = _fake()
    assert view(guard, entry, "beta", None) is None  # loads the journal: head is beta's
    origin.publish("alpha", "2.0")  # after the journal was read
    page = view(guard, entry, "alpha", _alpha_page(origin))
    assert page is not None
    assert [f.filename for f in page.files] == ["alpha-1.0-py3-none-any.whl"]
    assert lines == [] and guard.refused == []


def test_journal_unreadable_falls_back(origin: Origin) -> None:
    origin.publish("alpha", "1.0", upload_time=datetime(2025, 1, 1))
    point = origin.last_serial
    origin.publish("alpha", "2.0", upload_time=datetime(2025, 6, 1))
    origin.changelog_fault = "500"
    session = make_session(TransportSettings())
    # A SERIAL: a page changed after the point cannot be placed in time.
    lines: list[str] = []
    view = _view(str(point), lines)
    entry = IndexEntry(0, origin.simple_url)
    view.add_index(entry, ChangelogClient(origin.changelog_url, session), main=True)
    page = view(_fake(), entry, "alpha", _alpha_page(origin))
    assert page is not None and page.files == ()
    assert "cannot read the journal" in lines[0]
    assert "dropped alpha-1.0-py3-none-any.whl, alpha-2.0-py3-none-any.whl of alpha" in lines[1]
    strict = _view(str(point), [], strict=True)
    strict.add_index(entry, ChangelogClient(origin.changelog_url, session), main=True)
    with pytest.raises(RuntimeError, match="AS-OF"):
        strict(_fake(), entry, "alpha", _alpha_page(origin))
    # A DATETIME: PEP 700 upload-time instead.
    lines = []
    view = _view("2025-03-01", lines)
    view.add_index(entry, ChangelogClient(origin.changelog_url, session), main=True)
    page = view(_fake(), entry, "alpha", _alpha_page(origin))
    assert page is not None
    assert [f.filename for f in page.files] == ["alpha-1.0-py3-none-any.whl"]
    assert "falling back to PEP 700 upload-time" in lines[0]
