"""Tests for the state store: keys, merge-by-max, locking, atomic writes, damage handling."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from safe_pip.authority import state
from safe_pip.authority.state import STATE_DIR_ENV, IndexState, StateStore, index_key
from safe_pip.errors import StateError
from safe_pip.index.journal import JournalSummary

INDEX = "https://index.example/simple/"
SRC = str(Path(state.__file__).resolve().parents[1])


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.endswith(".json"))


def all_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


# --------------------------------------------------------------------------------------------
# Keys and locations
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://index.example/simple/", "https://index.example/simple/"),
        ("https://index.example/simple", "https://index.example/simple/"),
        ("HTTPS://Index.EXAMPLE/simple", "https://index.example/simple/"),
        ("https://user:pass@index.example/simple", "https://index.example/simple/"),
        ("https://token@index.example/simple", "https://index.example/simple/"),
        ("https://index.example:443/simple", "https://index.example/simple/"),
        ("http://index.example:80/simple", "http://index.example/simple/"),
        ("http://index.example:8080/simple", "http://index.example:8080/simple/"),
        ("https://index.example//simple//", "https://index.example/simple/"),
        ("https://index.example/a/./b/../simple", "https://index.example/a/simple/"),
        ("https://index.example", "https://index.example/"),
        ("https://index.example/Simple/?x=1#frag", "https://index.example/Simple/"),
        ("http://[::1]:3141/root/pypi/+simple", "http://[::1]:3141/root/pypi/+simple/"),
        ("file:///srv/mirror/simple", "file:///srv/mirror/simple/"),
    ],
)
def test_index_key(url: str, key: str) -> None:
    assert index_key(url) == key
    assert StateStore.index_key(url) == key


@pytest.mark.parametrize("url", ["index.example/simple", "https:///simple", "http://h:99999/"])
def test_index_key_rejects_non_urls(url: str) -> None:
    with pytest.raises(ValueError):
        index_key(url)


def test_root_from_env_and_platformdirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "explicit"))
    assert StateStore().root == tmp_path / "explicit"
    assert StateStore(tmp_path / "given").root == tmp_path / "given"
    monkeypatch.delenv(STATE_DIR_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert StateStore().root == tmp_path / "xdg" / "safe-pip"


def test_nothing_is_created_by_reading(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.remembered(INDEX) == {}
    assert store.load_journal(INDEX) is None
    assert store.indexes() == []
    assert store.forget(INDEX) is False
    store.remember(INDEX, {})
    assert not (tmp_path / "state").exists()


def test_file_names_and_contents_hold_no_credentials(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    url = "https://alice:hunter2-secret@Index.Example/simple"
    store.remember(url, {"Foo": 3})
    store.save_journal(url, JournalSummary(0, 5, {"foo": 4}))
    for path in tmp_path.iterdir():
        assert "alice" not in path.name and "hunter2" not in path.name
        assert b"hunter2" not in path.read_bytes() and b"alice" not in path.read_bytes()
    [serials] = [p for p in tmp_path.iterdir() if p.name.endswith(".serials.json")]
    assert serials.name.startswith("index.example-simple-")
    assert json.loads(serials.read_text())["index"] == "https://index.example/simple/"
    assert store.remembered("https://index.example/simple/") == {"foo": 3}


# --------------------------------------------------------------------------------------------
# remember / remembered
# --------------------------------------------------------------------------------------------


def test_remember_merges_by_max(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"Foo_Bar": 10, "baz": 3})
    store.remember(INDEX, {"foo.bar": 7, "BAZ": 5, "new": 1})
    assert store.remembered(INDEX) == {"foo-bar": 10, "baz": 5, "new": 1}
    assert store.remembered("https://other.example/simple/") == {}
    assert StateStore(tmp_path).remembered(INDEX.rstrip("/")) == {"foo-bar": 10, "baz": 5, "new": 1}


def test_remember_same_names_in_one_call(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"Foo": 4, "foo": 9, "FOO": 2})
    assert store.remembered(INDEX) == {"foo": 9}


@pytest.mark.parametrize("bad", [-1, True, "3", 1.5])
def test_remember_rejects_bad_serials(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ValueError):
        StateStore(tmp_path).remember(INDEX, {"foo": bad})  # type: ignore[dict-item]


def test_remember_skips_write_when_nothing_changes(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 10})
    [path] = data_files(tmp_path)
    before = path.stat().st_ino
    store.remember(INDEX, {"foo": 9})
    store.remember(INDEX, {})
    assert path.stat().st_ino == before


_WORKER = """
import sys
from pathlib import Path
from safe_pip.authority.state import StateStore
root, tag, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
store = StateStore(root)
for i in range(count):
    store.remember("https://index.example/simple/", {f"{tag}-{i}": i + 1, "shared": i})
"""


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=SRC)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), f"w{n}", "40"], env=env)
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    got = StateStore(tmp_path).remembered(INDEX)
    expected = {f"w{n}-{i}": i + 1 for n in range(4) for i in range(40)}
    expected["shared"] = 39
    assert got == expected
    assert not [n for n in all_files(tmp_path) if n.endswith(".tmp")]


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path)

    def work(tag: int) -> None:
        for i in range(30):
            store.remember(INDEX, {f"t{tag}-{i}": 1})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(store.remembered(INDEX)) == 120


def test_files_use_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        StateStore(tmp_path / "a").remember(INDEX, {"foo": 1})
    finally:
        os.umask(old)
    old = os.umask(0o022)
    try:
        StateStore(tmp_path / "b").remember(INDEX, {"foo": 1})
    finally:
        os.umask(old)
    [a] = data_files(tmp_path / "a")
    [b] = data_files(tmp_path / "b")
    assert a.stat().st_mode & 0o777 == 0o600
    assert b.stat().st_mode & 0o777 == 0o644


# --------------------------------------------------------------------------------------------
# Damage and hostile state directories
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[]",
        '{"format": 99, "index": "https://index.example/simple/", "serials": {}}',
        '{"format": 1, "index": "https://other.example/simple/", "serials": {}}',
        '{"format": 1, "index": "https://index.example/simple/", "serials": {"foo": "1"}}',
        '{"format": 1, "index": "https://index.example/simple/", "serials": {"Foo": 1}}',
        '{"format": 1, "index": "https://index.example/simple/", "serials": []}',
    ],
)
def test_corrupt_file_warns_once_and_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 1})
    [path] = data_files(tmp_path)
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        assert store.remembered(INDEX) == {}
        store.remember(INDEX, {"bar": 2})
    records = [r for r in caplog.records if r.name == "safe_pip"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert str(path) in message and "\n" not in message
    assert StateStore(tmp_path).remembered(INDEX) == {"bar": 2}


def test_unreadable_file_warns_and_is_treated_as_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 1})
    [path] = data_files(tmp_path)
    real_open = os.open

    def deny(file: object, flags: int, *args: object, **kwargs: object) -> int:
        if Path(str(file)) == path and not flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        assert store.remembered(INDEX) == {}
    assert str(path) in caplog.records[0].getMessage()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes regardless of modes")
def test_unwritable_state_dir_is_a_state_error(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(StateError, match="ro"):
            StateStore(root).remember(INDEX, {"foo": 1})
    finally:
        root.chmod(0o700)


def test_write_permission_denied_is_a_state_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def deny(file: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(StateError) as info:
        StateStore(tmp_path).remember(INDEX, {"foo": 1})
    assert str(tmp_path) in str(info.value) and "Permission denied" in str(info.value)


def test_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = StateStore(blocker / "state")
    assert store.remembered(INDEX) == {}  # reading an absent store is fine
    with pytest.raises(StateError) as info:
        store.remember(INDEX, {"foo": 1})
    assert str(blocker / "state") in str(info.value) and "Not a directory" in str(info.value)
    with pytest.raises(StateError):
        store.save_journal(INDEX, JournalSummary(0, 1, {}))


@pytest.mark.parametrize("kind", ["serials", "journal"])
def test_symlinked_data_file_is_refused(tmp_path: Path, kind: str) -> None:
    store = StateStore(tmp_path / "state")
    store.remember(INDEX, {"foo": 1})
    store.save_journal(INDEX, JournalSummary(0, 1, {}))
    [path] = (tmp_path / "state").glob(f"*.{kind}.json")
    target = tmp_path / "target"
    target.write_text("precious")
    path.unlink()
    path.symlink_to(target)
    with pytest.raises(StateError, match="symlink"):
        store.remembered(INDEX) if kind == "serials" else store.load_journal(INDEX)
    with pytest.raises(StateError, match="symlink"):
        if kind == "serials":
            store.remember(INDEX, {"foo": 2})
        else:
            store.save_journal(INDEX, JournalSummary(0, 2, {}))
    assert target.read_text() == "precious" and path.is_symlink()


def test_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 1})
    [lock] = tmp_path.glob("*.lock")
    target = tmp_path / "elsewhere"
    lock.unlink()
    lock.symlink_to(target)
    with pytest.raises(StateError, match="symlink"):
        store.remember(INDEX, {"foo": 2})
    assert not target.exists()


def test_fifo_in_place_of_a_data_file_does_not_hang(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 1})
    [path] = data_files(tmp_path)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(StateError, match="not a regular file"):
        store.remembered(INDEX)


@pytest.mark.parametrize("failing", ["write", "replace", "fsync"])
def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 1})
    [path] = data_files(tmp_path)
    before = path.read_bytes()
    names_before = all_files(tmp_path)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    with pytest.raises(StateError) as info:
        store.remember(INDEX, {"foo": 2, "bar": 3})
    monkeypatch.undo()
    assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert path.read_bytes() == before
    assert all_files(tmp_path) == names_before
    assert store.remembered(INDEX) == {"foo": 1}


# --------------------------------------------------------------------------------------------
# Journal cache
# --------------------------------------------------------------------------------------------


def test_journal_roundtrip_and_merge(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    first = JournalSummary(100, 200, {"a": 150, "b": 200})
    store.save_journal(INDEX, first)
    assert store.load_journal(INDEX) == first
    # another process saved an overlapping, newer window: the union is kept
    store.save_journal(INDEX, JournalSummary(180, 260, {"a": 250, "c": 190}))
    merged = store.load_journal(INDEX)
    assert merged == JournalSummary(100, 260, {"a": 250, "b": 200, "c": 190})
    # an older window that cannot be joined does not replace a newer one
    store.save_journal(INDEX, JournalSummary(10, 20, {"z": 15}))
    assert store.load_journal(INDEX) == merged
    # a newer window with a gap replaces it
    fresh = JournalSummary(1000, 1010, {"n": 1005})
    store.save_journal(INDEX, fresh)
    assert store.load_journal(INDEX) == fresh


def test_corrupt_journal_does_not_touch_serials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = StateStore(tmp_path)
    store.remember(INDEX, {"foo": 5})
    store.save_journal(INDEX, JournalSummary(0, 9, {"foo": 5}))
    [journal] = tmp_path.glob("*.journal.json")
    doc = json.loads(journal.read_text())
    doc["journal"]["content_serials"]["foo"] = 99  # outside (low, head]
    journal.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        assert store.load_journal(INDEX) is None
    assert len(caplog.records) == 1 and str(journal) in caplog.records[0].getMessage()
    assert store.remembered(INDEX) == {"foo": 5}
    store.save_journal(INDEX, JournalSummary(3, 12, {}))
    assert store.load_journal(INDEX) == JournalSummary(3, 12, {})


# --------------------------------------------------------------------------------------------
# forget / indexes
# --------------------------------------------------------------------------------------------


def test_indexes_and_forget(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = StateStore(tmp_path)
    other = "http://127.0.0.1:3141/root/pypi/+simple/"
    store.remember(INDEX, {"foo": 5, "bar": 12})
    store.save_journal(INDEX, JournalSummary(10, 20, {"foo": 15, "x": 11}))
    store.remember(other, {"baz": 1})
    (tmp_path / "unrelated.txt").write_text("ignored")
    assert store.indexes() == [
        IndexState(other, 1, 1, None, None, None),
        IndexState(INDEX, 2, 12, 10, 20, 2),
    ]
    assert store.forget(INDEX.upper().replace("HTTPS", "https")) is False  # path is case-sensitive
    assert store.forget(INDEX) is True
    assert store.forget(INDEX) is False
    assert store.remembered(INDEX) == {} and store.load_journal(INDEX) is None
    assert [s.key for s in store.indexes()] == [other]
    # a file with a valid name but someone else's key is skipped with a warning
    [serials] = tmp_path.glob("*.serials.json")
    (tmp_path / serials.name.replace("127.0.0.1", "moved")).write_bytes(serials.read_bytes())
    with caplog.at_level(logging.WARNING, logger="safe_pip"):
        assert [s.key for s in store.indexes()] == [other]
    assert any("misplaced" in r.getMessage() for r in caplog.records)


def test_journal_saved_over_its_own_load_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.save_journal(INDEX, JournalSummary(100, 200, {"a": 150}))
    loaded = store.load_journal(INDEX)
    assert loaded is not None
    reads: list[Path] = []
    real_read = store._read
    monkeypatch.setattr(store, "_read", lambda path, *a: reads.append(path) or real_read(path, *a))
    newer = JournalSummary(100, 250, {"a": 150, "b": 240})
    store.save_journal(INDEX, newer)
    assert reads == []  # built on what it loaded: nothing to merge
    # a window that does not contain the one on disk is merged as before
    store.save_journal(INDEX, JournalSummary(220, 300, {"c": 290}))
    assert len(reads) == 1
    assert store.load_journal(INDEX) == JournalSummary(100, 300, {"a": 150, "b": 240, "c": 290})


def test_journal_saved_by_another_process_meanwhile_is_merged(tmp_path: Path) -> None:
    mine, theirs = StateStore(tmp_path), StateStore(tmp_path)
    mine.save_journal(INDEX, JournalSummary(100, 200, {"a": 150}))
    assert mine.load_journal(INDEX) is not None
    theirs.save_journal(INDEX, JournalSummary(100, 260, {"a": 150, "x": 255}))
    mine.save_journal(INDEX, JournalSummary(100, 250, {"a": 150, "b": 240}))
    assert mine.load_journal(INDEX) == JournalSummary(100, 260, {"a": 150, "b": 240, "x": 255})
