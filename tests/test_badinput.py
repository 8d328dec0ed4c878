"""Bad input: each is one clear line naming the thing and where, exit 2 (or 75), and nothing
installed; a damaged state file is warned about and rebuilt, never a crash; a full disk
leaves no corrupt state behind."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _guarded import installed, safe_pip, tree

from safe_pip.cli import main
from safe_pip.errors import UsageError
from safe_pip.pip.cmdline import parse_pip_args, resolve_settings
from safe_pip.pip.invocation import pip_command as _pip_command
from safe_pip.testing import Origin


@pytest.fixture
def origin(state_dir: Path) -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0")
        yield server


def install_from(
    origin: Origin, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", origin.changelog_url, "--max-wait", "1",
        "install", "--no-cache-dir", "--index-url", origin.simple_url,
        "--target", str(target), *args,
    )  # fmt: skip
    return proc, target


def assert_one_line_error(
    proc: subprocess.CompletedProcess[str], target: Path, *words: str, code: int = 2
) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("safe-pip: error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    assert tree(target) == {}


def _write_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _huge(path: Path) -> None:
    with path.open("wb") as handle:  # sparse: cheap to make, too big to be a requirements file
        handle.write(b"alpha\n")
        handle.truncate(65 * 1024 * 1024)


REQUIREMENTS_FILES: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
    ("malformed", _write_bytes(b"alpha\nbeta >= = 1\n"), ("reqs.txt:2",)),
    ("empty", _write_bytes(b""), ("reqs.txt", "empty requirements file")),
    ("blank", _write_bytes(b"\n  \n"), ("reqs.txt", "empty requirements file")),
    ("binary", _write_bytes(bytes(range(256)) * 8), ("reqs.txt", "not a text requirements")),
    ("huge", _huge, ("reqs.txt", "too large")),
    ("self-including", _write_bytes(b"alpha\n-r reqs.txt\n"), ("reqs.txt", "include cycle")),
    ("unknown option", _write_bytes(b"--frobnicate\nalpha\n"), ("reqs.txt:1", "--frobnicate")),
    ("missing include", _write_bytes(b"alpha\n-r nope.txt\n"), ("reqs.txt:2", "nope.txt")),
]


@pytest.mark.parametrize(
    ("make", "words"),
    [(m, w) for _, m, w in REQUIREMENTS_FILES],
    ids=[name for name, _, _ in REQUIREMENTS_FILES],
)
def test_bad_requirements_file(
    origin: Origin, tmp_path: Path, make: Callable[[Path], None], words: tuple[str, ...]
) -> None:
    reqs = tmp_path / "reqs.txt"
    make(reqs)
    proc, target = install_from(origin, tmp_path, "-r", str(reqs))
    assert_one_line_error(proc, target, *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", ("pylock.toml", "empty requirements file")),
     (b'lock-version = "1.0"\n[[packages]\nname=', ("pylock.toml", "not TOML", "line 2")),
     (bytes(range(128, 256)) * 4, ("pylock.toml", "not UTF-8"))],
    ids=["empty", "malformed", "binary"],
)  # fmt: skip
def test_bad_lock_file(
    origin: Origin, tmp_path: Path, content: bytes, words: tuple[str, ...]
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_bytes(content)
    proc, target = install_from(origin, tmp_path, "-r", str(lock))
    assert_one_line_error(proc, target, *words)


def test_a_comment_only_file_is_pips_business(origin: Origin, tmp_path: Path) -> None:
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("# nothing needed here yet\n")
    proc, target = install_from(origin, tmp_path, "-r", str(reqs), "alpha")
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0"}


def test_unknown_options(origin: Origin, tmp_path: Path) -> None:
    ours = safe_pip("--frobnicate", "install", "alpha")
    assert_one_line_error(ours, tmp_path / "none", "--frobnicate")
    bad_wait = safe_pip("--max-wait", "-1", "install", "alpha")
    assert_one_line_error(bad_wait, tmp_path / "none", "--max-wait")
    dangling = safe_pip("install", "--index-url")
    assert_one_line_error(dangling, tmp_path / "none", "--index-url")
    # pip's own options are pip's to judge: its usage error (2), nothing installed.
    proc, target = install_from(origin, tmp_path, "--frobnicate", "alpha")
    assert proc.returncode == 2, proc.stderr
    assert "--frobnicate" in proc.stderr
    assert tree(target) == {}


@pytest.mark.parametrize(
    ("proxy", "words"),
    [
        ("ftp://u:s3cret@proxy.example:21", ("ftp://", "not a proxy scheme")),
        ("socks5://u:s3cret@:1080", ("no host",)),
        ("http://:3128", ("no host",)),
        ("http://proxy.example:port", ("does not parse",)),
    ],
    ids=["unknown-scheme", "socks-no-host", "no-host", "bad-port"],
)
def test_an_unusable_proxy_stops_the_run_before_pip(
    origin: Origin, tmp_path: Path, proxy: str, words: tuple[str, ...]
) -> None:
    proc, target = install_from(origin, tmp_path, "--proxy", proxy, "alpha")
    assert_one_line_error(proc, target, "--proxy", *words)
    assert "s3cret" not in proc.stderr


def test_a_proxy_from_pip_conf_is_checked_too(tmp_path: Path) -> None:
    config = tmp_path / "pip.conf"
    config.write_text("[global]\nproxy = socks5h://:1080\n")
    env = {**os.environ, "PIP_CONFIG_FILE": str(config)}
    with pytest.raises(UsageError, match="socks5h://.*no host"):
        resolve_settings(parse_pip_args("install", ["alpha"], env), env)
    for usable in ("socks5h://proxy.example:1080", "https://proxy.example:3129"):
        cmd = parse_pip_args("install", ["--proxy", usable, "alpha"], env)
        assert resolve_settings(cmd, env).proxy == usable  # pip can use these: so can the guard
    cmd = parse_pip_args("install", ["--proxy", "proxy.example:3128", "alpha"], env)
    plain = resolve_settings(cmd, env)
    assert plain.proxy == "proxy.example:3128"  # pip's host:port form is an http:// proxy


@pytest.mark.parametrize(
    ("args", "provider"),
    [
        ([], "auto"),
        (["--keyring-provider", "subprocess"], "subprocess"),
        (["--keyring-provider=import", "--no-input"], "import"),
        (["--no-input"], "disabled"),  # pip's "auto" asks a keyring only when it may prompt
    ],
)
def test_the_guard_asks_the_keyring_pip_would_ask(args: list[str], provider: str) -> None:
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    env.pop("PIP_NO_INPUT", None)  # the test suite's
    cmd = parse_pip_args("install", [*args, "alpha"], env)
    assert resolve_settings(cmd, env).keyring_provider == provider


def test_unusable_state_dir_stops_the_run_before_pip(origin: Origin, tmp_path: Path) -> None:
    blocker = tmp_path / "state-file"
    blocker.write_text("not a directory\n")
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", origin.changelog_url,
        "install", "--no-cache-dir", "--index-url", origin.simple_url,
        "--target", str(target), "alpha",
        env={"SAFE_PIP_STATE_DIR": str(blocker / "state")},
    )  # fmt: skip
    assert_one_line_error(proc, target, "state directory", str(blocker / "state"))
    assert origin.calls == {}  # not even the changelog was asked


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_unwritable_state_dir_stops_the_run(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    state_dir.mkdir()
    state_dir.chmod(0o500)
    try:
        proc, target = install_from(origin, tmp_path, "alpha")
    finally:
        state_dir.chmod(0o700)
    assert_one_line_error(proc, target, "state directory", str(state_dir))


def state_files(state_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in state_dir.iterdir() if p.name.endswith(".json")}


@pytest.mark.parametrize("damage", [b"{not json", b"\x00\xff" * 40, b'{"format": 1, "index": 3}'])
def test_corrupt_state_file_is_warned_about_and_rebuilt(
    origin: Origin, tmp_path: Path, state_dir: Path, damage: bytes
) -> None:
    first, _ = install_from(origin, tmp_path / "one", "alpha")
    assert first.returncode == 0, first.stderr
    files = state_files(state_dir)
    assert any(name.endswith(".serials.json") for name in files)
    for name in files:
        (state_dir / name).write_bytes(damage)
    proc, target = install_from(origin, tmp_path / "two", "alpha")
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0"}
    warnings = [line for line in proc.stderr.splitlines() if "unusable state file" in line]
    assert len(warnings) == len(files), proc.stderr  # one line per damaged file, naming it
    assert all(w.startswith("safe-pip: ignoring unusable state file ") for w in warnings)
    assert {name for name in files if any(name in w for w in warnings)} == set(files)
    rebuilt = state_files(state_dir)
    serials = next(v for k, v in rebuilt.items() if k.endswith(".serials.json"))
    assert json.loads(serials)["serials"] == {"alpha": origin.project_serial("alpha")}


def test_full_disk_while_writing_state_leaves_the_old_state_whole(
    origin: Origin, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = [
        "--changelog", origin.changelog_url,
        "install", "--no-cache-dir", "--index-url", origin.simple_url, "--target",
    ]  # fmt: skip
    assert main([*args, str(tmp_path / "one"), "alpha"]) == 0
    before = state_files(state_dir)
    assert before
    origin.publish("alpha", "2.0")  # the next run has new serials to write

    real_write = os.write

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        where = os.readlink(f"/proc/self/fd/{fd}")
        if where.startswith(str(state_dir)):
            if len(data) > 1:
                real_write(fd, bytes(data[: len(data) // 2]))  # part of it reaches the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    capsys.readouterr()
    code = main([*args, str(tmp_path / "two"), "alpha"])
    err = capsys.readouterr().err
    monkeypatch.undo()
    # State is memory, not a prerequisite: the install stands, and says what was not kept.
    assert code == 0, err
    assert installed(tmp_path / "two") == {"alpha": "2.0"}
    assert "No space left on device" in err and "could not remember serials" in err, err
    assert state_files(state_dir) == before  # the old files, byte for byte
    assert [p.name for p in state_dir.iterdir() if p.name.endswith(".tmp")] == []


def test_isolated_mode_keeps_the_path_token_off_the_command_line(tmp_path: Path) -> None:
    """Other local users can read any process's arguments (ps); the guard's URL is a secret."""
    secret = "http://127.0.0.1:1/TOKEN-abc/i/0/"
    cmd = parse_pip_args(
        "install", ["--isolated", "--index-url", "https://index.example/simple/", "alpha"]
    )
    settings = resolve_settings(cmd, {})
    argv, env = _pip_command(
        cmd, lambda url, main=False: secret, settings, str(tmp_path), "http://127.0.0.1:1"
    )
    assert not any("TOKEN" in arg or "index.example" in arg for arg in argv), argv
    assert env == {}
    assert argv[argv.index("--proxy") + 1] == "http://127.0.0.1:1"  # no token in the proxy
    listed = Path(argv[argv.index("--requirement") + 1])
    assert listed.parent == tmp_path
    assert listed.read_text() == f"--index-url {secret}\n"
