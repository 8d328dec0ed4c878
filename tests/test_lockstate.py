"""pylock.toml's ``[tool.safe-pip]``: written after a guarded lock, enforced when installing it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_install import installed, safe_pip

from safe_pip.errors import InputError
from safe_pip.index.asof import AsOf, parse_as_of
from safe_pip.index.names import is_pylock
from safe_pip.locks.lockstate import (
    LockedIndex,
    LockState,
    as_of_of_locks,
    lock_inputs,
    read_lock_state,
    render_lock_table,
    write_lock_state,
)
from safe_pip.testing import CDN, Origin, fill_cache

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PIP_LOCK = """lock-version = "1.0"
created-by = "pip"

[[packages]]
name = "alpha"
version = "1.0"

[[packages.wheels]]
name = "alpha-1.0-py3-none-any.whl"
url = "https://files.example/alpha-1.0-py3-none-any.whl"

[packages.wheels.hashes]
sha256 = "00"
"""


def test_table_round_trip(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(PIP_LOCK)
    state = LockState(
        (
            LockedIndex("https://user:secret@index.example/simple/", 1043, {"alpha": 1041}),
            LockedIndex('https://mirror.example/we"ird\\path/', None, {"beta": 7}),
        ),
        parse_as_of("2026-01-31T12:00:00Z"),
    )
    write_lock_state(str(lock), state)
    text = lock.read_text()
    assert "secret" not in text and "user@" not in text  # locks travel in git
    parsed = tomllib.loads(text)
    assert parsed["packages"][0]["name"] == "alpha"  # pip's part untouched
    back = read_lock_state(str(lock))
    assert back is not None
    assert back.as_of == state.as_of
    assert back.indexes == (
        LockedIndex("https://index.example/simple/", 1043, {"alpha": 1041}),
        LockedIndex('https://mirror.example/we"ird\\path/', None, {"beta": 7}),
    )
    assert back.index("HTTPS://index.example/simple") == back.indexes[0]
    # Written again (a second lock run): replaced, not duplicated.
    write_lock_state(str(lock), LockState((LockedIndex("https://index.example/simple/", 5),)))
    again = read_lock_state(str(lock))
    assert again == LockState((LockedIndex("https://index.example/simple/", 5, {}),), None)
    assert lock.read_text().count("[tool.safe-pip]") == 1


def test_serial_as_of_is_an_integer_and_no_table_is_none(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(PIP_LOCK)
    assert read_lock_state(str(lock)) is None
    table = render_lock_table(LockState((), AsOf(serial=99)))
    assert "as-of = 99\n" in table
    lock.write_text(PIP_LOCK + "\n" + table)
    state = read_lock_state(str(lock))
    assert state is not None and state.as_of == AsOf(serial=99)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[tool.safe-pip]\nformat = 2\n', "format 2"),
        ('[tool.safe-pip]\nformat = 1\nas-of = "soon"\n', "as-of"),
        ("[tool.safe-pip]\nformat = 1\n[[tool.safe-pip.indexes]]\nserial = 3\n", "url"),
        (
            '[tool.safe-pip]\nformat = 1\n[[tool.safe-pip.indexes]]\nurl = "https://i.example/"\n'
            "[tool.safe-pip.indexes.projects]\nalpha = -1\n",
            "alpha",
        ),
        ("[tool.safe-pip\n", "not TOML"),
    ],
)
def test_bad_tables_are_input_errors(tmp_path: Path, table: str, message: str) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(PIP_LOCK + "\n" + table)
    with pytest.raises(InputError, match=message) as info:
        read_lock_state(str(lock))
    assert str(lock) in str(info.value)


def test_pylock_names_and_inputs(tmp_path: Path) -> None:
    assert is_pylock("pylock.toml", extras=True)
    assert is_pylock("sub/pylock.dev.toml", extras=True)
    assert is_pylock("pylock.toml[extra]", extras=True)
    assert not is_pylock("pylock.a.b.toml", extras=True)
    assert not is_pylock("requirements.txt", extras=True)
    lock = tmp_path / "pylock.toml"
    lock.write_text(PIP_LOCK + "\n" + render_lock_table(LockState((), AsOf(serial=4))))
    other = tmp_path / "pylock.other.toml"
    other.write_text(PIP_LOCK + "\n" + render_lock_table(LockState((), AsOf(serial=5))))
    found = lock_inputs([str(lock) + "[extra]", "requirements.txt", "https://x.example/pylock.toml"])
    assert [path for path, _ in found] == [str(lock)]
    assert as_of_of_locks(found) == AsOf(serial=4)
    with pytest.raises(Exception, match="different --as-of"):
        as_of_of_locks(lock_inputs([str(lock), str(other)]))


# ----------------------------------------------------------------------- real pip, end to end


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0", requires=["beta"])
        server.publish("beta", "1.0")
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def _lock(cdn: CDN, where: Path, *extra: str, state: Path) -> None:
    proc = safe_pip(
        "--changelog", cdn.changelog_url, *extra,
        "lock", "--index-url", cdn.simple_url, "alpha", cwd=where,
        env={"SAFE_PIP_STATE_DIR": str(state)},
    )
    assert proc.returncode == 0, proc.stderr


def test_lock_round_trip_with_serials(cdn: CDN, origin: Origin, tmp_path: Path) -> None:
    _lock(cdn, tmp_path, state=tmp_path / "state-a")
    state = read_lock_state(str(tmp_path / "pylock.toml"))
    assert state is not None and state.as_of is None
    (index,) = state.indexes
    assert index.url == cdn.simple_url
    assert index.serial == origin.last_serial
    assert dict(index.projects) == {
        "alpha": origin.project_serial("alpha"),
        "beta": origin.project_serial("beta"),
    }
    origin.publish("alpha", "2.0", requires=["beta"])
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
        "-r", "pylock.toml", cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state-a")},
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0", "beta": "1.0"}
    with Origin() as elsewhere:  # installed with another index: said, not silently skipped
        other = safe_pip(
            "install", "--index-url", elsewhere.simple_url, "--target", str(tmp_path / "t2"),
            "-r", "pylock.toml", cwd=tmp_path,
            env={"SAFE_PIP_STATE_DIR": str(tmp_path / "state-a")},
        )
    assert other.returncode == 0, other.stderr
    assert f"was made against {cdn.simple_url}, which this run does not use" in other.stderr


def test_two_machines_share_one_lock(cdn: CDN, origin: Origin, tmp_path: Path) -> None:
    machine_a, machine_b = tmp_path / "state-a", tmp_path / "state-b"
    _lock(cdn, tmp_path, state=machine_a)
    origin.publish("beta", "2.0")  # the index moves on; the lock does not
    report = tmp_path / "guard.json"
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--guard-report", str(report),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
        "-r", "pylock.toml", cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(machine_b)},
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0", "beta": "1.0"}
    checked = {p["project"]: p["verdict"] for p in json.loads(report.read_text())["pages"]}
    assert checked == {"alpha": "FRESH", "beta": "FRESH"}  # the lock's pages were proven
    status = safe_pip("status", "--format", "json", env={"SAFE_PIP_STATE_DIR": str(machine_b)})
    assert status.returncode == 0, status.stderr
    (index,) = json.loads(status.stdout)["indexes"]
    assert index["projects"] == 2  # machine B now remembers them too


def test_lock_ahead_of_the_view_is_refused(origin: Origin, tmp_path: Path) -> None:
    with CDN(origin, edges=2, purge_delays=[None, 0.0], routing=0) as cdn:
        for project in ("alpha", "beta"):
            fill_cache(cdn, project, edges=[0], api=False)  # edge 0 keeps these forever
        origin.publish("beta", "1.1")
        cdn.pin(1)  # machine A sees the fresh edge and locks beta 1.1
        _lock(cdn, tmp_path, state=tmp_path / "state-a")
        assert 'version = "1.1"' in (tmp_path / "pylock.toml").read_text()
        cdn.pin(0)  # machine B is behind the lock (and has no changelog to wait on)
        proc = safe_pip(
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
            "-r", "pylock.toml", cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "b")},
        )
        # safe-pip check of the same lock on machine B: refused too, not "missing"
        check = safe_pip(
            "check", "--index-url", cdn.simple_url, "pylock.toml",
            cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "c")},
        )
    assert proc.returncode == 75, proc.stderr
    assert "refused beta" in proc.stderr and "ROLLBACK" in proc.stderr
    assert installed(tmp_path / "t") == {}
    assert check.returncode == 75, check.stderr
    assert "refused beta" in check.stderr and "ROLLBACK" in check.stderr


def test_changelog_behind_the_lock_is_refused(cdn: CDN, origin: Origin, tmp_path: Path) -> None:
    _lock(cdn, tmp_path, state=tmp_path / "state-a")
    lock = tmp_path / "pylock.toml"
    state = read_lock_state(str(lock))
    assert state is not None
    (index,) = state.indexes
    ahead = LockedIndex(index.url, origin.last_serial + 10, index.projects)
    write_lock_state(str(lock), LockState((ahead,), None))
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
        "-r", "pylock.toml", cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "b")},
    )
    assert proc.returncode == 75, proc.stderr
    assert "refused pylock.toml" in proc.stderr and "behind the serial the lock" in proc.stderr
    assert installed(tmp_path / "t") == {}


def test_as_of_recorded_in_the_lock_is_used(cdn: CDN, origin: Origin, tmp_path: Path) -> None:
    point = origin.last_serial
    origin.publish("alpha", "2.0", requires=["beta"])
    _lock(cdn, tmp_path, "--as-of", str(point), state=tmp_path / "state-a")
    text = (tmp_path / "pylock.toml").read_text()
    assert f"as-of = {point}\n" in text
    assert 'version = "1.0"' in text and 'version = "2.0"' not in text
    report = tmp_path / "guard.json"
    proc = safe_pip(  # a fresh machine, no --as-of given: the lock's point is used
        "--changelog", cdn.changelog_url, "--guard-report", str(report),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"),
        "-r", "pylock.toml", cwd=tmp_path, env={"SAFE_PIP_STATE_DIR": str(tmp_path / "b")},
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(tmp_path / "t") == {"alpha": "1.0", "beta": "1.0"}
    assert json.loads(report.read_text())["as_of"]["point"] == str(point)
