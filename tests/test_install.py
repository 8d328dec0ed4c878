"""End to end: real pip subprocesses run ``safe-pip install`` against a local origin and CDN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import installed, safe_pip

from safe_pip.testing import CDN, Origin, build_wheel, fill_cache
from safe_pip.testing._origin import SerialForm


def older_in_find_links(tmp_path: Path, project: str, version: str) -> Path:
    """A --find-links folder offering an older release: what pip falls back to when a page
    fails, and what a refusal must never let it take."""
    links = tmp_path / "links"
    links.mkdir()
    name, data = build_wheel(project, version)
    (links / name).write_bytes(data)
    return links


def pip_target(tmp_path: Path) -> Path:
    return tmp_path / "target"


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def test_fresh_view_installs(cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    origin.publish("alpha", "1.0", requires=["beta>=1"])
    origin.publish("beta", "1.0")
    report = tmp_path / "report.json"
    target = pip_target(tmp_path)
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--guard-report", str(report),
        "install", "--index-url", cdn.simple_url, "--target", str(target), "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    doc = json.loads(report.read_text())
    verdicts = {p["project"]: p["verdict"] for p in doc["pages"]}
    assert verdicts == {"alpha": "FRESH", "beta": "FRESH"}
    changelog_calls = [c for c in doc["authority_calls"] if c["authority"] == "changelog"]
    assert 1 <= len(changelog_calls) <= 2
    assert "127.0.0.1" not in json.dumps(doc["indexes"]) or cdn.simple_url in json.dumps(doc)


def test_stale_then_purged_installs_new_release(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    with CDN(origin, edges=1, purge_delays=[2.0]) as cdn:
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0")
        target = pip_target(tmp_path)
        t0 = time.monotonic()
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "30",
            "install", "--index-url", cdn.simple_url, "--target", str(target), "alpha",
        )
        assert proc.returncode == 0, proc.stderr
        assert installed(target) == {"alpha": "2.0"}
        assert time.monotonic() - t0 >= 1.0  # it did wait for the purge


def test_stale_forever_refuses_and_installs_nothing(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    links = older_in_find_links(tmp_path, "alpha", "0.9")
    with Origin() as other, CDN(origin, edges=1, purge_delays=[None]) as cdn:
        other.publish("alpha", "0.8")
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0")
        target = pip_target(tmp_path)
        user_tmp = tmp_path / "user-tmp"
        user_tmp.mkdir()
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "2",
            "install", "--index-url", cdn.simple_url, "--extra-index-url", other.simple_url,
            "--find-links", str(links), "--target", str(target), "alpha",
            env={"TMPDIR": str(user_tmp)},
        )
    assert proc.returncode == 75, proc.stderr
    assert installed(target) == {}
    assert list(user_tmp.iterdir()) == []  # pip's temporary directories went with it
    refusal = [line for line in proc.stderr.splitlines() if "refused alpha" in line]
    assert refusal, proc.stderr
    assert "127.0.0.1" in refusal[0]  # the index is named
    serial_after = origin.project_serial("alpha")
    assert f"{serial_after} required" in refusal[0]


@pytest.mark.parametrize("form", ["int", "str"])
def test_serial_only_in_json_judged_fresh_and_stale(
    form: SerialForm, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    # The only serial is the JSON page's meta._last-serial (a mirror's page): a stale JSON
    # copy must be refused, not traded for an HTML copy that carries no serial at all.
    origin.serial_sources = {"json-meta"}
    origin.json_serial_form = form
    origin.publish("alpha", "1.0")
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        report = tmp_path / "fresh.json"
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--strict", "--guard-report", str(report),
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t1"), "alpha",
        )
        assert proc.returncode == 0, proc.stderr
        assert installed(tmp_path / "t1") == {"alpha": "1.0"}
        page = json.loads(report.read_text())["pages"][0]
        assert (page["verdict"], page["serial_seen"]) == ("FRESH", origin.project_serial("alpha"))
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0")  # the purge is lost: the CDN keeps the 1.0 page
        report = tmp_path / "stale.json"
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "1", "--guard-report", str(report),
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"), "alpha",
        )
    assert proc.returncode == 75, proc.stderr
    assert installed(tmp_path / "t2") == {}
    assert f"{origin.project_serial('alpha')} required" in proc.stderr
    page = json.loads(report.read_text())["pages"][0]
    assert page["verdict"] == "REFUSED (STALE)", page


def test_rollback_without_authority_refuses_at_once(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    with CDN(origin, edges=2, purge_delays=[None, 0.0], routing=0) as cdn:
        fill_cache(cdn, "alpha", edges=[0], api=False)  # edge 0 keeps 1.0 forever
        origin.publish("alpha", "2.0")
        cdn.pin(1)
        first = safe_pip(
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t1"), "alpha"
        )
        assert first.returncode == 0, first.stderr
        assert installed(tmp_path / "t1") == {"alpha": "2.0"}
        assert "freshness not proven" in first.stderr  # no authority: UNVERIFIED, warned
        cdn.pin(0)
        t0 = time.monotonic()
        second = safe_pip(
            "--max-wait", "60",
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"), "alpha",
        )
        assert second.returncode == 75, second.stderr
        assert time.monotonic() - t0 < 30  # refused at once, not waited out
        assert "ROLLBACK" in second.stderr
        assert installed(tmp_path / "t2") == {}


def test_file_missing_for_a_while_is_retried(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0", file_delay=2.0, with_metadata=False)
    target = pip_target(tmp_path)
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(target), "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0"}


def test_role_change_is_not_stale(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    origin.publish("alpha", "1.0")
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "alpha", api=False)
        origin.role_change("alpha")  # raises the serial; the page is not purged
        assert origin.project_serial("alpha") > 3
        report = tmp_path / "report.json"
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "5", "--guard-report", str(report),
            "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha",
        )
    assert proc.returncode == 0, proc.stderr
    page = json.loads(report.read_text())["pages"][0]
    assert page["verdict"] == "FRESH"
    assert page["serial_seen"] < origin.project_serial("alpha")


def test_no_serial_warns_and_strict_refuses(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.serial_sources = set()
    origin.publish("alpha", "1.0")
    proc = safe_pip(
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t1"), "alpha"
    )
    assert proc.returncode == 0, proc.stderr
    assert "gives no serials" in proc.stderr
    strict = safe_pip(
        "--strict",
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t2"), "alpha",
    )
    assert strict.returncode == 75, strict.stderr
    assert "NO-SERIAL" in strict.stderr
    assert installed(tmp_path / "t2") == {}


def test_changelog_unreachable_is_unverified(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    origin.publish("alpha", "1.0")
    origin.changelog_fault = "405"
    report = tmp_path / "report.json"
    proc = safe_pip(
        "--changelog", cdn.changelog_url, "--guard-report", str(report),
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "alpha",
    )
    assert proc.returncode == 0, proc.stderr
    assert "freshness not proven" in proc.stderr
    assert json.loads(report.read_text())["pages"][0]["verdict"] == "UNVERIFIED"


def test_usage_errors_exit_2(tmp_path: Path, state_dir: Path) -> None:
    unknown = safe_pip("--frobnicate", "install", "alpha")
    assert unknown.returncode == 2
    assert "--frobnicate" in unknown.stderr
    bad_wait = safe_pip("--max-wait", "soon", "install", "alpha")
    assert bad_wait.returncode == 2
    assert "--max-wait" in bad_wait.stderr
    missing = safe_pip("install", "-r", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2
    assert "nope.txt" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_cached_not_found_is_stale_and_other_indexes_are_not_used(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    import requests

    with Origin() as other, CDN(origin, edges=1, purge_delays=[None]) as cdn:
        other.publish("gamma", "0.5")
        assert requests.get(f"{cdn.simple_url}gamma/", timeout=10).status_code == 404
        warm_404 = ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html")
        for accept in warm_404:
            for enc in ("gzip", "identity"):
                requests.get(
                    f"{cdn.simple_url}gamma/",
                    headers={"Accept": accept, "Accept-Encoding": enc},
                    timeout=10,
                )
        origin.publish("gamma", "1.0")  # the CDN keeps its 404 (the purge is lost)
        proc = safe_pip(
            "--changelog", cdn.changelog_url, "--max-wait", "1",
            "install", "--index-url", cdn.simple_url, "--extra-index-url", other.simple_url,
            "--target", str(tmp_path / "t"), "gamma",
        )
    assert proc.returncode == 75, proc.stderr
    assert "refused gamma" in proc.stderr
    assert installed(tmp_path / "t") == {}


def test_sigterm_during_a_wait_ends_pip_and_installs_nothing(
    origin: Origin, tmp_path: Path, state_dir: Path
) -> None:
    import signal

    origin.publish("alpha", "1.0")
    links = older_in_find_links(tmp_path, "alpha", "0.9")
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0")
        target = pip_target(tmp_path)
        env = dict(os.environ)
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "safe_pip", "--changelog", cdn.changelog_url,
                "--max-wait", "60", "install", "--index-url", cdn.simple_url,
                "--find-links", str(links), "--target", str(target), "alpha",
            ],
            stderr=subprocess.PIPE, text=True, env=env,
        )
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until the guard is waiting out the stale page
            if "waiting for a fresh page of alpha" in line:
                break
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        proc.stderr.close()
        time.sleep(1)  # a surviving pip would now install alpha 0.9 from --find-links
    assert code == 128 + signal.SIGTERM
    assert installed(target) == {}
