"""Prefetching: pages pip never asks for are never a reason to refuse; the rest is unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

from safe_pip.authority.state import StateStore
from safe_pip.guard.dependencies import best_candidate, requires_dist
from safe_pip.guard.guard import Refused
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.prefetch import Prefetcher
from safe_pip.guard.setup import GuardSetup
from safe_pip.index.journal import JournalSummary
from safe_pip.net.http import TransportSettings
from safe_pip.testing import CDN, Origin, fill_cache


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


def test_a_prefetched_refusal_is_told_only_when_asked(origin: Origin, state_dir: Path) -> None:
    origin.publish("gamma", "1.0")
    with CDN(origin, purge_delays=[None]) as cdn:
        fill_cache(cdn, "gamma", api=False)
        origin.publish("gamma", "2.0")  # the CDN keeps 1.0 forever
        told: list[object] = []
        setup = GuardSetup(
            GuardOptions(changelog=cdn.changelog_url, max_wait=0.5),
            TransportSettings(),
            store=StateStore(state_dir),
            say=lambda line: None,
            on_refuse=told.append,
        )
        entry = setup.add_index(cdn.simple_url, main=True)
        assert entry is not None
        guard = setup.guard
        guard.start_authorities()
        with pytest.raises(Refused):
            guard.prefetch(entry, "gamma")
        assert told == [] and guard.refusals == []  # nobody asked for gamma yet
        with pytest.raises(Refused):
            guard.verified(entry, "gamma")  # pip asks: now it counts, once
        with pytest.raises(Refused):
            guard.verified(entry, "gamma")
        assert len(told) == 1 and len(guard.refusals) == 1


def test_install_succeeds_when_only_an_unasked_page_is_stale(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0", requires=["beta>=1"])
    origin.publish("beta", "1.0")
    origin.publish("gamma", "1.0")
    reqs = tmp_path / "requirements.txt"
    # pip skips gamma (its marker is false here) but the guard prefetches every listed name.
    reqs.write_text('alpha\ngamma; python_version < "3"\n')
    report = tmp_path / "report.json"
    with CDN(origin, purge_delays=[None]) as cdn:
        fill_cache(cdn, "gamma", api=False)
        origin.publish("gamma", "2.0")
        proc = subprocess.run(
            [
                sys.executable, "-m", "safe_pip", "--changelog", cdn.changelog_url,
                "--max-wait", "1", "--guard-report", str(report),
                "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
                "-r", str(reqs),
            ],
            capture_output=True, text=True, timeout=240, env=dict(os.environ), check=False,
        )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(report.read_text())
    assert doc["refusals"] == []
    pages = {p["project"]: p for p in doc["pages"]}
    # gamma's prefetch was refused, or still waiting out its stale copy when pip finished
    # (the run never waits for prefetches): either way never used and never told.
    gamma = pages["gamma"]["verdict"]
    assert pages["gamma"]["prefetched"], pages["gamma"]
    assert gamma == "UNFINISHED" or gamma.startswith("REFUSED"), gamma
    assert pages["beta"]["verdict"] == "FRESH"
    assert sorted(os.listdir(tmp_path / "t")) == [
        "alpha", "alpha-1.0.dist-info", "beta", "beta-1.0.dist-info"
    ]


def test_requires_dist_and_best_candidate(origin: Origin) -> None:
    from packaging.specifiers import SpecifierSet
    from packaging.tags import sys_tags

    from safe_pip.index.pages import parse_page

    for version in ("1.0", "1.5", "2.0rc1", "3.0"):
        origin.publish("delta", version, requires=['eps>=1; python_version >= "3"'])
    resp = requests.get(
        f"{origin.simple_url}delta/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    page = parse_page(resp.content, content_type=resp.headers["Content-Type"], url=resp.url,
                      headers=resp.headers)
    tags = frozenset(sys_tags())
    best = best_candidate(page, SpecifierSet("<3"), tags, "3.11.0")
    assert best is not None and best.filename.startswith("delta-1.5-")  # no pre-release
    meta = b"Name: delta\nRequires-Dist: eps>=1; python_version >= '3'\nRequires-Dist: ??\n\n"
    expected = Requirement("eps>=1; python_version >= '3'")
    assert [str(r) for r in requires_dist(meta)] == [str(expected)]


def test_prefetcher_close_does_not_wait_for_work(state_dir: Path) -> None:
    import threading
    import time

    with Origin(latency=2.0) as slow:  # 50 pages, 8 workers: ~14 s of work if waited for
        setup = GuardSetup(GuardOptions(max_wait=1), TransportSettings(),
                           store=StateStore(state_dir), say=lambda line: None)
        setup.add_index(slow.simple_url, main=True)
        prefetcher = Prefetcher(setup.guard)
        prefetcher.start([Requirement(f"p{i}") for i in range(50)])
        started = time.monotonic()
        prefetcher.close()
        assert time.monotonic() - started < 5  # generous: close drops the queue, waits for none
        workers = [t for t in threading.enumerate() if t.name.startswith("prefetch-")]
        assert workers and all(t.daemon for t in workers)  # cannot hold up interpreter exit


def test_file_cache_serves_only_verified_bytes(tmp_path: Path) -> None:
    import hashlib
    import io

    from safe_pip.guard.filecache import FileCache

    cache = FileCache(tmp_path / "files")
    data = b"wheel bytes" * 1000
    expected = {"sha256": hashlib.sha256(data).hexdigest()}
    assert cache.get(expected) is None
    source = io.BytesIO(data)
    source.seek(5)
    cache.put(expected, source, len(data))
    assert source.tell() == 5  # the caller's position is kept
    got = cache.get(expected)
    assert got is not None and got[0].read() == data and got[1] == len(data)
    got[0].close()
    path = tmp_path / "files" / expected["sha256"][:2] / expected["sha256"]
    path.write_bytes(b"damaged")
    assert cache.get(expected) is None and not path.exists()  # dropped, fetched anew
    assert cache.get({"md5": "0" * 32}) is None and cache.get({"sha256": "../x"}) is None


def test_file_cache_keeps_a_spool_by_link_not_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from safe_pip.guard import filecache
    from safe_pip.guard.filecache import FileCache

    cache = FileCache(tmp_path / "files")
    data = b"wheel bytes" * 1000
    expected = {"sha256": hashlib.sha256(data).hexdigest()}
    spool = cache.spool()
    assert spool is not None and Path(spool.name).parent == tmp_path / "files"
    spool.write(data)
    cache.adopt(expected, spool, len(data))
    kept = tmp_path / "files" / expected["sha256"][:2] / expected["sha256"]
    assert os.stat(spool.name).st_ino == kept.stat().st_ino  # one file, two names
    spool.close()
    assert list((tmp_path / "files").glob(".part-*")) == []  # the spool's name went with it
    got = cache.get(expected)
    assert got is not None and got[0].read() == data
    got[0].close()

    monkeypatch.setattr(filecache, "MAX_FILE", 10)  # too big to keep: only served
    big = b"x" * 11
    spool = cache.spool()
    assert spool is not None
    spool.write(big)
    cache.adopt({"sha256": hashlib.sha256(big).hexdigest()}, spool, len(big))
    spool.close()
    assert cache.get({"sha256": hashlib.sha256(big).hexdigest()}) is None


def test_prune_removes_spools_a_killed_run_left(tmp_path: Path) -> None:
    import hashlib
    import io

    from safe_pip.guard.filecache import FileCache

    root = tmp_path / "files"
    root.mkdir()
    old, fresh = root / ".part-old", root / ".part-fresh"
    old.write_bytes(b"half a wheel")
    fresh.write_bytes(b"a download in progress")
    two_days_ago = os.stat(old).st_mtime - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    idle = FileCache(root)
    idle.prune(limit=0)  # a run that kept nothing walks nothing
    assert old.exists() and fresh.exists()
    cache = FileCache(root)
    data = b"a wheel"
    cache.put({"sha256": hashlib.sha256(data).hexdigest()}, io.BytesIO(data), len(data))
    cache.prune()
    assert not old.exists() and fresh.exists()
    assert len(list(root.glob("*/*"))) == 1  # under the limit: kept
    cache.prune(limit=0)  # nothing kept since the last prune (serve prunes every minute)
    assert len(list(root.glob("*/*"))) == 1
    more = b"another wheel"
    cache.put({"sha256": hashlib.sha256(more).hexdigest()}, io.BytesIO(more), len(more))
    cache.prune(limit=0)
    assert list(root.glob("*/*")) == []  # over it: the least recently used go


def test_an_install_keeps_its_verified_files_and_no_spools(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    import hashlib

    origin.publish("alpha", "1.0", requires=["beta>=1"])
    origin.publish("beta", "1.0")
    proc = subprocess.run(
        [
            sys.executable, "-m", "safe_pip", "--changelog", origin.changelog_url,
            "install", "--index-url", origin.simple_url, "--target", str(tmp_path / "t"),
            "alpha",
        ],
        capture_output=True, text=True, timeout=240, env=dict(os.environ), check=False,
    )
    assert proc.returncode == 0, proc.stderr
    root = Path(os.environ["XDG_CACHE_HOME"]) / "safe-pip" / "files"
    kept = sorted(p.name for p in root.glob("*/*"))
    wheels = [origin.file_bytes(f"{name}-1.0-py3-none-any.whl") for name in ("alpha", "beta")]
    assert {hashlib.sha256(w).hexdigest() for w in wheels} <= set(kept)
    assert list(root.glob(".part-*")) == []


def test_a_stale_page_is_asked_again_at_least_every_half_second(
    origin: Origin, state_dir: Path
) -> None:
    """A purge reaching the last edge is seen within about 0.5 s of it."""
    origin.publish("gamma", "1.0")
    with CDN(origin, purge_delays=[None]) as cdn:
        fill_cache(cdn, "gamma", api=False)
        origin.publish("gamma", "2.0")  # the CDN keeps 1.0 forever
        setup = GuardSetup(
            GuardOptions(changelog=cdn.changelog_url, max_wait=4.0),
            TransportSettings(),
            store=StateStore(state_dir),
            say=lambda line: None,
        )
        entry = setup.add_index(cdn.simple_url, main=True)
        assert entry is not None
        guard = setup.guard
        now = [0.0]
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds

        guard.timing.clock, guard.timing.sleep = (lambda: now[0]), sleep
        guard.start_authorities()
        with pytest.raises(Refused):
            guard.verified(entry, "gamma")
    assert slept[:4] == [0.2, 0.4, 0.5, 0.5] and max(slept) == 0.5
    assert sum(slept) == pytest.approx(4.0)  # waited out --max-wait, then refused


def test_pip_takes_over_a_download_still_waiting_in_the_queue(state_dir: Path) -> None:
    """A wheel queued behind pages and metadata is fetched by pip's own request at once, and
    the worker that reaches it later skips it; one a worker began is waited for."""
    import io
    import threading

    from safe_pip.guard.guard import FileEntry

    setup = GuardSetup(
        GuardOptions(), TransportSettings(), store=StateStore(state_dir), say=lambda line: None
    )
    entry = setup.add_index("http://index.example/simple/", main=True)
    assert entry is not None
    prefetcher = Prefetcher(setup.guard, workers=1)  # not started: nothing leaves the queue

    def file(name: str) -> FileEntry:
        url = f"http://files.example/{name}"
        return FileEntry(url, name, {"sha256": "0" * 64}, {}, entry)

    queued, begun = file("a-1.0-py3-none-any.whl"), file("b-1.0-py3-none-any.whl")
    prefetcher._fetch_ahead(queued, metadata=False)
    prefetcher._fetch_ahead(begun, metadata=False)
    answer: list[object] = []
    asked = threading.Thread(
        target=lambda: answer.append(
            prefetcher.file_ready(queued, queued.filename, queued.url, queued.hashes)
        )
    )
    asked.start()
    asked.join(timeout=5)
    assert not asked.is_alive(), "pip's request waited for a download no worker had begun"
    assert answer == [None]  # the guard downloads it for pip itself

    download = prefetcher._downloads[begun.url]
    download.started = True  # a worker has it: pip's request waits for its bytes
    waiting = threading.Thread(
        target=lambda: answer.append(
            prefetcher.file_ready(begun, begun.filename, begun.url, begun.hashes)
        )
    )
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()
    download.result = (io.BytesIO(b"wheel"), 5)
    download.done.set()
    waiting.join(timeout=5)
    assert not waiting.is_alive()
    result = answer[-1]
    assert isinstance(result, tuple) and result[0].read() == b"wheel"

    # A worker reaching either queued task finds it gone and skips it (no second download).
    assert queued.url not in prefetcher._downloads and begun.url not in prefetcher._downloads


def test_the_serials_kept_are_copied_under_the_guards_lock(state_dir: Path) -> None:
    """Prefetch workers may still be accepting pages when the run keeps its serials: the
    copy is taken under the lock they write under, never while one of them inserts."""
    import threading

    setup = GuardSetup(
        GuardOptions(), TransportSettings(), store=StateStore(state_dir), say=lambda line: None
    )
    entry = setup.add_index("http://index.example/simple/", main=True)
    assert entry is not None
    entry.seen["alpha"] = 7
    guard = setup.guard
    with guard.index_registry.lock:  # a worker in the middle of recording a verdict
        keeping = threading.Thread(target=setup.keep, args=(print,))
        keeping.start()
        keeping.join(timeout=0.3)
        assert keeping.is_alive(), "the serials were read without the guard's lock"
        entry.seen["beta"] = 9
    keeping.join(timeout=5)
    assert not keeping.is_alive()
    assert StateStore(state_dir).remembered("http://index.example/simple/") == {
        "alpha": 7, "beta": 9
    }


def _best_candidate_reference(page, specifier, tags, python):  # type: ignore[no-untyped-def]
    """The plain definition: every wheel's name parsed, the newest allowed one kept (the first
    listed among equal versions)."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion

    best = None
    for dist in page.files:
        if dist.yanked or not isinstance(dist.core_metadata, dict) or not dist.core_metadata:
            continue
        try:
            _, version, _, file_tags = parse_wheel_filename(dist.filename)
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if version.is_prerelease and not specifier.prereleases:
            continue
        if not specifier.contains(version, prereleases=True) or tags.isdisjoint(file_tags):
            continue
        if dist.requires_python:
            try:
                if not SpecifierSet(dist.requires_python).contains(python, prereleases=True):
                    continue
            except InvalidSpecifier:
                continue
        if best is None or version > best[0]:
            best = (version, dist)
    return None if best is None else best[1]


@pytest.mark.parametrize("seed", range(40))
def test_best_candidate_reads_only_the_newest_versions_and_picks_as_the_plain_loop(
    seed: int,
) -> None:
    import random

    from packaging.specifiers import SpecifierSet
    from packaging.tags import Tag

    from safe_pip.index.pages import DistFile, ProjectPage

    rng = random.Random(seed)
    versions = ["1.0", "1.0.0", "1.1", "2.0", "2.0rc1", "2.0.post1", "3.0.dev0", "bad!", "10"]
    tag_parts = ["py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp27-cp27m-win32",
                 "py2.py3-none-any", "py3-none-nonsense_platform", "x-y"]
    files = []
    for i in range(rng.randint(0, 25)):
        version = rng.choice(versions)
        build = rng.choice(["", "", f"{i}-", "b-"])
        name = rng.choice(["delta", "delta", "de__lta"])
        ext = rng.choice([".whl"] * 6 + [".tar.gz", ".zip"])
        filename = f"{name}-{version}-{build}{rng.choice(tag_parts)}{ext}"
        files.append(DistFile(
            filename=filename,
            url=f"https://files.example/{i}/{filename}",
            requires_python=rng.choice([None, None, ">=3.8", "<3", ">=3.12", "nonsense"]),
            yanked=rng.random() < 0.1,
            core_metadata=rng.choice([{"sha256": "0" * 64}, {"sha256": "0" * 64}, True, None]),
        ))
    page = ProjectPage(name="delta", files=tuple(files))
    tags = frozenset({Tag("py3", "none", "any"), Tag("cp311", "cp311", "manylinux_2_17_x86_64")})
    for spec in ("", "<3", ">=2.0rc1", "==1.0", ">=11"):
        specifier = SpecifierSet(spec)
        expected = _best_candidate_reference(page, specifier, tags, "3.11.7")
        assert best_candidate(page, specifier, tags, "3.11.7") is expected, (spec, files)


def test_metadata_fetched_ahead_reaches_pip_whole_and_is_read_once(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's request may take a prefetched metadata file the moment its download is done,
    while the worker is still reading its dependencies: the worker has read it by then (pip
    gets every byte, from the start), and pip's request does not parse it a second time."""
    import io
    import threading

    from safe_pip.guard.files import FileEntry, metadata_url

    setup = GuardSetup(
        GuardOptions(), TransportSettings(), store=StateStore(state_dir), say=lambda line: None
    )
    entry = setup.add_index("http://index.example/simple/", main=True)
    assert entry is not None
    prefetcher = Prefetcher(setup.guard, workers=1, files=False)  # not started
    body = b"Metadata-Version: 2.1\nName: a\nVersion: 1.0\nRequires-Dist: b>=1\n\n"
    expected = {"sha256": "1" * 64}
    wheel = FileEntry("http://files.example/a-1.0-py3-none-any.whl",
                      "a-1.0-py3-none-any.whl", {"sha256": "0" * 64}, expected, entry)
    monkeypatch.setattr(setup.guard, "download",
                        lambda url, entry, expected: (io.BytesIO(body), len(body)))
    learning = threading.Event()
    release = threading.Event()
    learnt: list[bytes | None] = []

    def slow_learn(project: str, metadata: bytes | None) -> None:
        learnt.append(metadata)
        learning.set()
        release.wait(10)

    monkeypatch.setattr(prefetcher, "_learn", slow_learn)
    prefetcher._fetch_ahead(wheel, metadata=True)
    url = metadata_url(wheel.url)
    download = prefetcher._downloads[url]
    download.started = True
    worker = threading.Thread(target=prefetcher._download, args=(download,))
    worker.start()
    try:
        assert learning.wait(10)  # done, and the worker is inside _learn
        result = prefetcher.file_ready(wheel, wheel.filename + ".metadata", url, expected)
        assert result is not None
        assert result[0].read() == body
    finally:
        release.set()
        worker.join(10)
    assert learnt == [body]


@pytest.mark.parametrize("other", [True, False], ids=["python", "same"])
def test_prefetches_only_what_the_target_interpreter_needs(
    other: bool, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    """Markers are evaluated for the interpreter pip installs for (``--python``, or safe-pip's
    own), and ``extra`` markers only for the extras asked for (directly, or on a dependency as
    ``beta[bar]``)."""
    origin.publish("alpha", "1.0", requires=[
        "beta[bar]>=1",
        'winonly; sys_platform == "win32"',
        'oldpy; python_version < "3"',
        'fastdep; extra == "fast"',
        'slowdep; extra == "slow"',
    ])
    origin.publish("beta", "1.0", requires=['bardep; extra == "bar"', 'bazdep; extra == "baz"'])
    for name in ("winonly", "oldpy", "fastdep", "slowdep", "bardep", "bazdep"):
        origin.publish(name, "1.0")
    if other:
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        where = ["--python", str(python)]
    else:
        where = ["--target", str(tmp_path / "t")]
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "safe_pip", "--changelog", origin.changelog_url,
            "--guard-report", str(report),
            "install", *where, "--index-url", origin.simple_url, "alpha[fast]",
        ],
        capture_output=True, text=True, timeout=240, env=dict(os.environ), check=False,
    )
    assert proc.returncode == 0, proc.stderr
    pages = {p["project"] for p in json.loads(report.read_text())["pages"]}
    assert pages == {"alpha", "beta", "fastdep", "bardep"}


def test_the_target_interpreter_tells_the_marker_environment_packaging_knows(
    tmp_path: Path,
) -> None:
    from packaging.markers import default_environment

    from safe_pip.guard.dependencies import ENVIRONMENT_KEYS, marker_environment

    assert set(ENVIRONMENT_KEYS) == set(default_environment())
    assert marker_environment(sys.executable) == default_environment()
    assert marker_environment(str(tmp_path / "no-python")) is None
    if os.name != "nt":
        script = tmp_path / "not-python"
        script.write_text("#!/bin/sh\necho '{\"os_name\": \"posix\"}'\n")
        script.chmod(0o755)
        assert marker_environment(str(script)) is None  # not every key: not trusted


def test_an_unknown_environment_prefetches_whatever_the_marker() -> None:
    from packaging.markers import Marker

    from safe_pip.guard.dependencies import marker_true

    for marker in ('python_version < "3"', 'extra == "x"', 'sys_platform == "nonesuch"'):
        assert marker_true(Marker(marker), None, "")  # a superset: pip asks for the rest


def test_dependencies_read_before_the_target_answers_wait_for_it(
    state_dir: Path, tmp_path: Path
) -> None:
    """What pip's metadata needs is evaluated once the target interpreter has told its
    environment, with the extras asked so far; an extra asked later is evaluated then."""
    setup = GuardSetup(
        GuardOptions(), TransportSettings(), store=StateStore(state_dir), say=lambda line: None
    )
    assert setup.add_index("http://index.example/simple/", main=True) is not None

    def wanted(prefetcher: Prefetcher) -> set[str]:
        return {name for _, name in prefetcher._wanted}

    def metadata(*requires: str) -> bytes:
        return "".join(f"Requires-Dist: {r}\n" for r in ("Name: x", *requires)).encode() + b"\n"

    expected = {
        # the target tells its environment: markers and extras evaluated as pip would
        sys.executable: ({"a", "b", "e"}, {"a", "b", "e", "f"}, {"a", "b", "e", "f", "d"}),
        # it cannot tell: every dependency is prefetched (a superset is harmless)
        str(tmp_path / "no-python"): (
            {"a", "b", "c", "d", "e"},
            {"a", "b", "c", "d", "e", "f", "g"},
            {"a", "b", "c", "d", "e", "f", "g"},
        ),
    }
    for python, (after_ask, after_e, after_extra) in expected.items():
        prefetcher = Prefetcher(setup.guard, python=python, workers=1)  # not started
        assert not prefetcher.metadata_ahead  # another interpreter's tags are not ours
        prefetcher.want([Requirement("a")])
        prefetcher._learn("a", metadata(
            "b", 'c; sys_platform == "nonesuch"', 'd; extra == "x"', "e[y]",
        ))
        assert wanted(prefetcher) == {"a"}  # still asking
        prefetcher._ask()
        assert wanted(prefetcher) == after_ask
        prefetcher._learn("e", metadata('f; extra == "y"', 'g; extra == "z"'))
        assert wanted(prefetcher) == after_e
        prefetcher.want([Requirement("a[x]")])
        assert wanted(prefetcher) == after_extra


def test_pages_do_not_wait_for_the_summary_to_be_saved(origin: Origin, state_dir: Path) -> None:
    origin.publish("alpha", "1.0")
    store = StateStore(state_dir)
    saving = threading.Event()
    release = threading.Event()
    real_save = store.save_journal

    def slow_save(url: str, summary: JournalSummary) -> None:
        saving.set()
        release.wait(60)
        real_save(url, summary)

    store.save_journal = slow_save  # type: ignore[method-assign]
    with CDN(origin) as cdn:
        setup = GuardSetup(
            GuardOptions(changelog=cdn.changelog_url, max_wait=5),
            TransportSettings(),
            store=store,
            say=lambda line: None,
        )
        entry = setup.add_index(cdn.simple_url, main=True)
        assert entry is not None
        setup.guard.start_authorities()
        pages: list[object] = []
        check = threading.Thread(target=lambda: pages.append(setup.guard.verified(entry, "alpha")))
        check.start()
        check.join(20)  # a bound, not a timing: it ends at once unless it waits for the save
        finished = not check.is_alive()
        release.set()
        check.join()
        assert finished and saving.is_set()  # judged while the save still waited
        assert pages and pages[0] is not None
        setup.keep(lambda line: None)  # waits for the save before the run ends
    assert StateStore(state_dir).load_journal(cdn.simple_url) is not None


def test_without_pep658_files_the_wheel_is_read_ahead(state_dir: Path) -> None:
    """A mirror that serves no ``.metadata`` files: the newest fitting wheel is fetched
    (verified) and its METADATA read, so the tree is learnt ahead of pip all the same."""
    import time

    with Origin(profile="proxy-mirror") as mirror:
        mirror.publish("alpha", "1.0", requires=["beta>=1"])
        mirror.publish("beta", "1.0", requires=["gamma"])
        mirror.publish("beta", "2.0", requires=["delta"])  # the newest: what pip would pick
        mirror.publish("gamma", "1.0")
        mirror.publish("delta", "1.0")
        setup = GuardSetup(
            GuardOptions(max_wait=5), TransportSettings(), store=StateStore(state_dir),
            say=lambda line: None,
        )
        assert setup.add_index(mirror.simple_url, main=True) is not None
        prefetcher = Prefetcher(setup.guard, files=False)
        prefetcher.start([Requirement("alpha")])
        try:
            deadline = time.monotonic() + 30
            while (prefetcher.pages, prefetcher.fetched_files) < (3, 3):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert prefetcher.pages == 3  # alpha, then beta from alpha's wheel, then delta
            assert prefetcher.fetched_files == 3  # alpha's, beta 2.0's and delta's wheels
        finally:
            prefetcher.close()
        assert {name for _, name in prefetcher._wanted} == {"alpha", "beta", "delta"}
