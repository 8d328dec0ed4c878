"""The fault matrix: every fault an index, a CDN, a changelog or a file host can throw at the
guard, each with its documented behaviour (README, "Fault matrix").

The promise under test, in the spirit of TUF's client conformance suite (one named test per
attack or accident against a simulated repository): a fault that clears within
``--max-wait`` is retried through; one that does not ends in one clear refusal line and exit
75, or in the documented fallback (UNVERIFIED with one warning line); and never in a partial
install. Faults hit ``beta``, the dependency, so pip has already read ``alpha`` when the guard
refuses, and ``alpha`` must not be installed either.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import installed, refusal_lines, safe_pip, tree

from safe_pip.testing import CDN, Origin
from safe_pip.testing._faults import FaultKind

BETA_WHEEL = "beta-1.0-py3-none-any.whl"


@pytest.fixture
def origin(state_dir: Path) -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0", requires=["beta>=1"])
        server.publish("beta", "1.0")
        yield server


def guarded_install(
    index: str, changelog: str, target: Path, *guard: str, max_wait: str = "1"
) -> subprocess.CompletedProcess[str]:
    return safe_pip(
        "--changelog", changelog, "--max-wait", max_wait, *guard,
        "install", "--no-cache-dir", "--timeout", "2", "--index-url", index,
        "--target", str(target), "alpha",
    )  # fmt: skip


def assert_refused(proc: subprocess.CompletedProcess[str], target: Path, *words: str) -> str:
    """Exit 75, one refusal line naming beta (and ``words``), nothing installed."""
    assert proc.returncode == 75, proc.stderr
    lines = refusal_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("safe-pip: refused beta") or BETA_WHEEL in lines[0], lines
    for word in words:
        assert word in lines[0], lines[0]
    assert proc.stderr.rstrip().endswith("nothing was installed: the view of the index was "
                                         "refused (exit 75)")
    assert tree(target) == {}, "a refused install left files behind"
    return lines[0]


def assert_installed(proc: subprocess.CompletedProcess[str], target: Path) -> None:
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    assert refusal_lines(proc.stderr) == []


# --------------------------------------------------------------------------- project pages

PERSISTENT_PAGE_FAULTS: list[tuple[FaultKind, str]] = [
    ("500", "HTTP 500"),
    ("502", "HTTP 502"),
    ("503", "HTTP 503"),
    ("reset", "the answer broke off"),
    ("truncate", "the answer broke off"),
    ("bad-body", "malformed index page"),
    ("wrong-type", "unexpected Content-Type"),
    ("serials-disagree", "serial"),
    ("serial-negative", "non-numeric serial"),
    ("serial-text", "non-numeric serial"),
]


@pytest.mark.parametrize(("kind", "reason"), PERSISTENT_PAGE_FAULTS)
def test_persistent_page_fault_is_refused(
    origin: Origin, tmp_path: Path, kind: FaultKind, reason: str
) -> None:
    origin.faults.inject("beta", kind)
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target)
    line = assert_refused(proc, target, reason, "still stale after 1 s")
    assert "127.0.0.1" in line  # the index is named


@pytest.mark.parametrize("kind", ["503", "reset", "truncate", "bad-body", "serial-text"])
def test_page_fault_that_clears_is_retried_through(
    origin: Origin, tmp_path: Path, kind: FaultKind
) -> None:
    # Four copies (JSON/HTML x gzip/plain) are asked per round: five faults outlast a round.
    origin.faults.inject("beta", kind, times=5)
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target, max_wait="30")
    assert_installed(proc, target)
    assert origin.faults.served["beta"] == 5


@pytest.mark.parametrize("kind", ["bad-html", "bad-json"])
def test_one_malformed_format_falls_back_to_the_other(
    origin: Origin, tmp_path: Path, kind: FaultKind
) -> None:
    origin.faults.inject("beta", kind)
    target, report = tmp_path / "target", tmp_path / "report.json"
    proc = guarded_install(
        origin.simple_url, origin.changelog_url, target, "--guard-report", str(report)
    )
    assert_installed(proc, target)
    beta = next(p for p in json.loads(report.read_text())["pages"] if p["project"] == "beta")
    assert beta["verdict"] == "FRESH"
    assert beta["variant"].startswith("html" if kind == "bad-json" else "json")


def test_page_that_never_finishes_times_out_and_is_refused(
    origin: Origin, tmp_path: Path
) -> None:
    origin.faults.inject("beta", "hang")
    target = tmp_path / "target"
    t0 = time.monotonic()
    proc = safe_pip(
        "--changelog", origin.changelog_url, "--max-wait", "1",
        "install", "--no-cache-dir", "--timeout", "1", "--index-url", origin.simple_url,
        "--target", str(target), "alpha",
    )  # fmt: skip
    assert_refused(proc, target, "timed out")
    assert time.monotonic() - t0 < 120  # pip's --timeout bounds each upstream read


def test_serial_going_back_within_a_run_is_never_seen(origin: Origin, tmp_path: Path) -> None:
    """The first fetch is current, every later one two serials back: the guard judges one copy
    per run and serves pip only that one, and the next run refuses the rolled-back copy."""
    current = origin.project_serial("beta")
    origin.faults.inject("beta", "serial-back")
    target, report = tmp_path / "target", tmp_path / "report.json"
    proc = safe_pip(
        "--guard-report", str(report),
        "install", "--no-cache-dir", "--index-url", origin.simple_url,
        "--target", str(target), "alpha", "beta",
    )  # fmt: skip
    assert_installed(proc, target)
    assert origin.faults.served["beta"] == 1
    beta = next(p for p in json.loads(report.read_text())["pages"] if p["project"] == "beta")
    assert beta["serial_seen"] == current
    # No authority: the remembered serial is the only defence, and it holds.
    again = tmp_path / "again"
    second = safe_pip(
        "--max-wait", "30",
        "install", "--no-cache-dir", "--index-url", origin.simple_url,
        "--target", str(again), "alpha",
    )  # fmt: skip
    assert_refused(second, again, "ROLLBACK", f"{current} required")


def test_cdn_fault_that_clears_is_retried_through(origin: Origin, tmp_path: Path) -> None:
    with CDN(origin, edges=2) as cdn:
        cdn.faults.inject("beta", "502", times=3)
        target = tmp_path / "target"
        proc = guarded_install(cdn.simple_url, cdn.changelog_url, target, max_wait="30")
        assert_installed(proc, target)
        assert cdn.faults.served["beta"] == 3


# --------------------------------------------------------------------------- changelog


@pytest.mark.parametrize("fault", ["401", "403", "405", "500", "garbage", "timeout"])
def test_changelog_fault_falls_back_to_unverified(
    origin: Origin, tmp_path: Path, fault: str
) -> None:
    origin.changelog_fault = fault  # type: ignore[assignment]
    target, report = tmp_path / "target", tmp_path / "report.json"
    proc = guarded_install(
        origin.simple_url, origin.changelog_url, target, "--guard-report", str(report)
    )
    assert_installed(proc, target)
    warnings = [line for line in proc.stderr.splitlines() if "freshness not proven" in line]
    assert len(warnings) == 1, proc.stderr
    assert "127.0.0.1" in warnings[0]
    doc = json.loads(report.read_text())
    assert {p["verdict"] for p in doc["pages"]} == {"UNVERIFIED"}
    assert doc["indexes"][0]["changelog_error"]
    calls = [c for c in doc["authority_calls"] if c["authority"] == "changelog"]
    if fault in ("401", "403", "405", "garbage"):
        assert len(calls) == 1  # a client error is not retried
    else:
        assert all(c["error"] for c in calls)


@pytest.mark.parametrize(
    ("fault", "userinfo", "words"),
    [("401", "", "it needs credentials and none were sent"),
     ("401", "user:wrong-Pw-6620@", "it refused the credentials from its URL"),
     ("403", "", "it refused access; no credentials were sent")],
)  # fmt: skip
def test_changelog_refusing_access_is_said_once_at_once(
    origin: Origin, tmp_path: Path, fault: str, userinfo: str, words: str
) -> None:
    # The changelog is an authority, not the index: its pages are fine, so the install goes on
    # UNVERIFIED, and the warning says why in the changelog's own terms, without a wait.
    origin.changelog_fault = fault  # type: ignore[assignment]
    changelog = origin.changelog_url.replace("http://", f"http://{userinfo}")
    target = tmp_path / "target"
    t0 = time.monotonic()
    proc = guarded_install(origin.simple_url, changelog, target, max_wait="30")
    assert time.monotonic() - t0 < 10, proc.stderr
    assert_installed(proc, target)
    warnings = [line for line in proc.stderr.splitlines() if "freshness not proven" in line]
    assert len(warnings) == 1, proc.stderr
    assert f"HTTP {fault}" in warnings[0] and words in warnings[0], warnings[0]
    assert "wrong-Pw-6620" not in proc.stderr
    assert origin.calls["changelog_last_serial"] == 1  # not retried


def test_changelog_fault_under_strict_is_refused(origin: Origin, tmp_path: Path) -> None:
    origin.changelog_fault = "500"
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target, "--strict")
    assert proc.returncode == 75, proc.stderr
    lines = refusal_lines(proc.stderr)
    assert len(lines) == 1 and "UNVERIFIED" in lines[0] and "--strict" in lines[0], lines
    assert tree(target) == {}


# --------------------------------------------------------------------------- file host


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("404", "answered 404"), ("truncate", "the answer broke off"),
     ("wrong-bytes", "does not match the page's hash"), ("503", "HTTP 503")],
)  # fmt: skip
def test_persistent_file_fault_is_refused(
    origin: Origin, tmp_path: Path, kind: FaultKind, reason: str
) -> None:
    origin.faults.inject(BETA_WHEEL, kind)
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target)
    line = assert_refused(proc, target, reason, "FILE")
    assert BETA_WHEEL in line


@pytest.mark.parametrize("kind", ["404", "truncate", "wrong-bytes"])
def test_file_fault_that_clears_is_retried_through(
    origin: Origin, tmp_path: Path, kind: FaultKind
) -> None:
    origin.faults.inject(BETA_WHEEL, kind, times=2)
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target, max_wait="30")
    assert_installed(proc, target)
    assert origin.faults.served[BETA_WHEEL] == 2


def test_refusal_leaves_a_virtual_environment_unchanged(origin: Origin, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    before = tree(venv)
    origin.faults.inject(BETA_WHEEL, "wrong-bytes")
    proc = safe_pip(
        "--changelog", origin.changelog_url, "--max-wait", "1",
        "install", "--no-cache-dir", "--python", str(venv / "bin" / "python"),
        "--index-url", origin.simple_url, "alpha",
    )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    assert tree(venv) == before
    assert installed(site) == {}
    # With the fault gone, the activated venv gets the install: the check was not vacuous.
    origin.faults.clear()
    proc = safe_pip(
        "--changelog", origin.changelog_url,
        "install", "--no-cache-dir", "--index-url", origin.simple_url, "alpha",
        env={"VIRTUAL_ENV": str(venv)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installed(site) == {"alpha": "1.0", "beta": "1.0"}


# --------------------------------------------------------------------------- access refused
#
# A 401 or 403 from the index is not staleness: waiting cannot fix credentials. pip reads such
# a page as an empty one ("No matching distribution found", exit 1); safe-pip says at once, in
# one line, that the index refused access, and exits 1 too, with pip ended and nothing
# installed.

SECRET = "s3cret-Pw-9137"


def access_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("safe-pip: the index ")]


def assert_access_refused(
    proc: subprocess.CompletedProcess[str], target: Path, elapsed: float, *words: str
) -> str:
    """Exit 1 well before --max-wait (30 s), one line naming the index, nothing installed."""
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 10, f"took {elapsed:.1f} s: waited out like a stale page"
    lines = access_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "127.0.0.1" in lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert lines[0].endswith("nothing was installed (exit 1)"), lines[0]
    assert refusal_lines(proc.stderr) == [], proc.stderr  # not reported as STALE
    assert "still stale" not in proc.stderr
    assert tree(target) == {}, "a refused install left files behind"
    return lines[0]


def timed_install(index: str, changelog: str, target: Path, **env: str) -> tuple[
    subprocess.CompletedProcess[str], float
]:
    t0 = time.monotonic()
    proc = safe_pip(
        "--changelog", changelog, "--max-wait", "30",
        "install", "--no-cache-dir", "--index-url", index, "--target", str(target), "alpha",
        env=env,
    )  # fmt: skip
    return proc, time.monotonic() - t0


@pytest.fixture
def locked(state_dir: Path) -> Iterator[Origin]:
    """An index that requires Basic credentials (pages, JSON API and changelog)."""
    with Origin(basic_auth=("user", SECRET)) as server:
        server.publish("alpha", "1.0", requires=["beta>=1"])
        server.publish("beta", "1.0")
        yield server


def test_index_answering_401_without_credentials_is_said_at_once(
    locked: Origin, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    proc, elapsed = timed_install(locked.simple_url, locked.changelog_url, target)
    assert_access_refused(
        proc, target, elapsed, "needs credentials", "none were available", "HTTP 401",
        "none in the index URL, netrc or the keyring",
    )  # fmt: skip


def test_index_refusing_url_credentials_is_said_at_once_without_them(
    locked: Origin, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    index = locked.simple_url.replace("http://", "http://user:wrong-Pw-4410@")
    proc, elapsed = timed_install(index, locked.changelog_url, target)
    line = assert_access_refused(
        proc, target, elapsed, "refused the credentials from the index URL", "HTTP 401", "****@"
    )
    assert "wrong-Pw-4410" not in proc.stderr + proc.stdout
    sent = [auth for host, _path, auth in locked.authorization_seen if host == "index"]
    assert any(sent), "the URL's credentials were never sent"
    assert "user" not in line.replace("****@", "")


def test_index_refusing_netrc_credentials_names_netrc(locked: Origin, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password wrong-Pw-5521\n", encoding="utf-8")
    netrc.chmod(0o600)
    target = tmp_path / "target"
    proc, elapsed = timed_install(
        locked.simple_url, locked.changelog_url, target, NETRC=str(netrc)
    )
    assert_access_refused(proc, target, elapsed, "refused the credentials from netrc", "HTTP 401")
    assert "wrong-Pw-5521" not in proc.stderr + proc.stdout


def test_index_answering_403_is_said_at_once(origin: Origin, tmp_path: Path) -> None:
    # On beta, the dependency: pip has read alpha already, and must not install it either.
    origin.faults.inject("beta", "403")
    target = tmp_path / "target"
    proc, elapsed = timed_install(origin.simple_url, origin.changelog_url, target)
    assert_access_refused(
        proc, target, elapsed, "refused access", "HTTP 403 for beta", "no credentials were sent"
    )


def test_file_host_answering_401_is_said_at_once(origin: Origin, tmp_path: Path) -> None:
    """A file host that wants credentials gets none by waiting: said at once, like an index's
    401, not retried until --max-wait as a file not stored yet would be."""
    origin.faults.inject(BETA_WHEEL, "401")
    target = tmp_path / "target"
    proc, elapsed = timed_install(origin.simple_url, origin.changelog_url, target)
    assert_access_refused(
        proc, target, elapsed, "needs credentials and none were available", "HTTP 401",
        BETA_WHEEL,
    )  # fmt: skip
    # The prefetch's request and pip's own at most: no retries.
    assert origin.faults.served[BETA_WHEEL] <= 2


def test_file_host_answering_403_is_waited_out(origin: Origin, tmp_path: Path) -> None:
    """An object store answers 403 for a file it does not have yet: retried like a 404."""
    origin.faults.inject(BETA_WHEEL, "403", times=2)
    target = tmp_path / "target"
    proc = guarded_install(origin.simple_url, origin.changelog_url, target, max_wait="30")
    assert_installed(proc, target)
    assert origin.faults.served[BETA_WHEEL] == 2
