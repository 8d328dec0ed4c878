"""Mirrors without serials, judged by what their pages list against the changelog's file events.

A plain index (no serial anywhere) behind a caching mirror that keeps pages for a TTL and is
never purged (``Profile.caching``), as Artifactory and Nexus remote repositories and proxpi
are. Its upstream's changelog is given with ``--changelog``; ``--complete-mirror`` declares
that the mirror carries every file. Real pip (and pip under ``run`` and ``serve``, and
``check``) against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import Served, installed, safe_pip

from safe_pip.testing import CDN, PROFILES, Origin, fill_cache

NO_SERIAL_WARNING = "gives no serials; the freshness of its pages cannot be proven"
NEW = "alpha-2.0-py3-none-any.whl"
LONG = 3600.0  # a mirror that will not refresh within the test


def mirror(ttl: float) -> Origin:
    origin = Origin(profile=PROFILES["plain"].caching(ttl))
    origin.start()
    origin.publish("beta", "1.0")
    origin.publish("alpha", "1.0", requires=["beta>=1"])
    return origin


@pytest.fixture
def slow_mirror() -> Iterator[Origin]:
    origin = mirror(LONG)
    try:
        yield origin
    finally:
        origin.stop()


def install(
    cdn: CDN, changelog: str, *guard: str, tmp: Path
) -> tuple[int, str | None, str, dict[str, object]]:
    """``safe-pip install alpha`` through the mirror: exit code, alpha's version, stderr and
    the guard report's page record for alpha."""
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / "target"
    report_file = tmp / "report.json"
    proc = safe_pip(
        "--changelog", changelog, "--guard-report", str(report_file), *guard,
        "install", "--index-url", cdn.simple_url, "--target", str(target), "--no-cache-dir",
        "alpha",
    )  # fmt: skip
    pages = json.loads(report_file.read_text())["pages"] if report_file.exists() else []
    alpha = next((p for p in pages if p.get("project") == "alpha"), {})
    return proc.returncode, installed(target).get("alpha"), proc.stderr, alpha


def test_a_fresh_mirror_is_proven_fresh_by_file_events(
    slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
    with CDN(slow_mirror) as cdn:
        code, version, err, page = install(
            cdn, slow_mirror.upstream_changelog_url, "--complete-mirror", "-v", tmp=tmp_path
        )
    assert (code, version) == (0, "2.0"), err
    assert NO_SERIAL_WARNING not in err, err
    assert page["verdict"] == "FRESH" and page["authority"] == "changelog file events", page
    assert "alpha on" in err and "FRESH by changelog file events" in err, err


def test_behind_by_one_upload_is_waited_out_when_the_mirror_refreshes(
    tmp_path: Path, state_dir: Path
) -> None:
    origin = mirror(2.0)
    try:
        with CDN(origin) as cdn:
            fill_cache(cdn, "alpha", api=False)
            origin.publish("alpha", "2.0", requires=["beta>=1"])
            code, version, err, page = install(
                cdn, origin.upstream_changelog_url, "--complete-mirror", "--max-wait", "30",
                tmp=tmp_path,
            )  # fmt: skip
    finally:
        origin.stop()
    assert (code, version) == (0, "2.0"), err
    assert page["verdict"] == "FRESH" and int(str(page["attempts"])) > 1, page


def test_behind_by_one_upload_is_refused_when_the_mirror_does_not_refresh(
    slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(slow_mirror) as cdn:
        fill_cache(cdn, "alpha", api=False)
        serial = slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
        code, version, err, page = install(
            cdn, slow_mirror.upstream_changelog_url, "--complete-mirror", "--max-wait", "2",
            tmp=tmp_path,
        )  # fmt: skip
        # Plain pip through the same mirror installs the old release, and says nothing.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
        plain = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--index-url", cdn.simple_url, "--target",
             str(tmp_path / "plain"), "--no-cache-dir", "--disable-pip-version-check", "alpha"],
            capture_output=True, text=True, env=env, timeout=240, check=False,
        )  # fmt: skip
    assert (code, version) == (75, None), err
    line = next(x for x in err.splitlines() if "refused alpha from" in x)
    assert f"{serial} required" in line and f"the page lacks {NEW}, added at serial" in line
    assert page["verdict"] == "REFUSED (STALE)" and page["authority"] == "changelog file events"
    assert installed(tmp_path / "plain").get("alpha") == "1.0", plain.stderr


def test_a_mirror_that_filters_a_platform_is_never_refused(
    tmp_path: Path, state_dir: Path
) -> None:
    """The upstream lists Windows and Linux wheels; the mirror leaves Windows out on purpose.
    Without --complete-mirror the page is used (NO-SERIAL, the missing file named under -v);
    declared complete, the same page is refused: the declaration is the rule."""
    tags = ["cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-win_amd64"]
    with Origin() as upstream, Origin(profile=PROFILES["plain"].caching(LONG)) as filtered:
        for index, kept in ((upstream, tags), (filtered, tags[:1])):
            index.publish("beta", "1.0")
            index.publish("alpha", "1.0", requires=["beta>=1"])
            index.publish("alpha", "2.0", requires=["beta>=1"])
            index.add_wheels("alpha", "2.0", kept)
        with CDN(filtered) as cdn:
            used = install(
                cdn, upstream.changelog_url, "--max-wait", "2", "-v", tmp=tmp_path / "u"
            )
            declared = install(
                cdn, upstream.changelog_url, "--complete-mirror", "--max-wait", "1",
                tmp=tmp_path / "d",
            )  # fmt: skip
    code, version, err, page = used
    assert (code, version) == (0, "2.0"), err
    assert NO_SERIAL_WARNING in err, err
    assert page["verdict"] == "NO-SERIAL" and "win_amd64" in str(page["reason"]), page
    assert declared[:2] == (75, None), declared[2]
    assert "win_amd64.whl, added at serial" in declared[2], declared[2]


def test_a_removed_file_still_listed_is_refused_on_any_mirror(
    slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
    with CDN(slow_mirror) as cdn:
        fill_cache(cdn, "alpha", api=False)
        serial = slow_mirror.remove_file("alpha", NEW)
        code, version, err, _ = install(
            cdn, slow_mirror.upstream_changelog_url, "--max-wait", "1", tmp=tmp_path
        )
    assert (code, version) == (75, None), err
    assert f"the page still lists {NEW}, removed at serial {serial}" in err, err


def test_a_yank_the_mirror_has_not_seen_is_refused(
    slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
    with CDN(slow_mirror) as cdn:
        fill_cache(cdn, "alpha", api=False)
        serial = slow_mirror.yank("alpha", "2.0", "broken")
        code, version, err, _ = install(
            cdn, slow_mirror.upstream_changelog_url, "--complete-mirror", "--max-wait", "1",
            tmp=tmp_path,
        )  # fmt: skip
    assert (code, version) == (75, None), err
    assert f"does not show {NEW} yanked (yanked at serial {serial})" in err, err


@pytest.mark.parametrize("command", ["check", "run", "serve"])
def test_the_other_commands_refuse_a_mirror_behind(
    command: str, slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(slow_mirror) as cdn:
        fill_cache(cdn, "alpha", api=False)
        slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
        guard = [
            "--changelog", slow_mirror.upstream_changelog_url, "--complete-mirror",
            "--max-wait", "1",
        ]  # fmt: skip
        if command == "serve":
            served = Served(*guard, "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url)
            try:
                status = served.get("alpha").status_code
            finally:
                assert served.stop() == 0
            assert status == 503, served.lines
            assert any(f"the page lacks {NEW}" in line for line in served.lines), served.lines
            return
        if command == "check":
            (tmp_path / "r.txt").write_text("alpha==1.0\n")
            proc = safe_pip(*guard, "check", "-i", cdn.simple_url, str(tmp_path / "r.txt"))
        else:
            proc = safe_pip(
                *guard, "run", "--index-url", cdn.simple_url, "--",
                sys.executable, "-m", "pip", "install", "--target", str(tmp_path / "t"),
                "--no-cache-dir", "alpha",
            )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    assert f"the page lacks {NEW}, added at serial" in proc.stderr, proc.stderr
    assert not (tmp_path / "t").exists() or "alpha" not in installed(tmp_path / "t")


def test_a_bad_complete_mirror_variable_is_a_usage_error(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "r.txt").write_text("alpha==1.0\n")
    proc = safe_pip("check", str(tmp_path / "r.txt"), env={"SAFE_PIP_COMPLETE_MIRROR": "maybe"})
    assert proc.returncode == 2, proc.stderr
    assert "SAFE_PIP_COMPLETE_MIRROR: expected 1 or 0, not 'maybe'" in proc.stderr


def test_the_variable_declares_the_mirror_complete(
    slow_mirror: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with CDN(slow_mirror) as cdn:
        fill_cache(cdn, "alpha", api=False)
        slow_mirror.publish("alpha", "2.0", requires=["beta>=1"])
        (tmp_path / "r.txt").write_text("alpha==1.0\n")
        proc = safe_pip(
            "--changelog", slow_mirror.upstream_changelog_url, "--max-wait", "0",
            "check", "-i", cdn.simple_url, str(tmp_path / "r.txt"),
            env={"SAFE_PIP_COMPLETE_MIRROR": "1"},
        )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    assert f"the page lacks {NEW}" in proc.stderr, proc.stderr
