"""``safe-pip mirror-check``: a simulated mirror (``safe_pip.testing.Mirror``) of an origin
index, fed behind on purpose, judged against the origin's journal over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from safe_pip.cli import main
from safe_pip.mirrors.judge import Seen
from safe_pip.mirrors.pages import MirrorPages
from safe_pip.testing import CDN, PROFILES, Mirror, Origin

A2 = "alpha-2.0-py3-none-any.whl"


pytestmark = pytest.mark.usefixtures("no_network")  # conftest


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        for name in ("alpha", "beta", "gamma", "delta"):
            server.publish(name, "1.0")
        yield server


def _mirror(origin: Origin, **kwargs: object) -> Mirror:
    """A mirror holding every project as the origin has it now (started by ``with``)."""
    mirror = Mirror(origin, **kwargs)  # type: ignore[arg-type]
    mirror.sync()
    return mirror


def _check(origin: Origin, mirror: Mirror, *args: str) -> int:
    return main(
        ["--changelog", origin.upstream_changelog_url, "mirror-check", *args, mirror.simple_url]
    )


def test_bandersnatch_mirror_behind_missing_ahead(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:
        behind_at = origin.content_serial("alpha")
        newest = origin.publish("alpha", "2.0")
        origin.role_change("beta")  # raises beta's serial, changes no page: never reported
        missing = origin.publish("epsilon", "1.0")
        origin.publish("gamma", "1.1")
        mirror.sync("gamma")  # behind the index, then caught up: right
        mirror.sync("delta", serial=origin.last_serial + 50)  # fed from another index
        assert _check(origin, mirror) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"alpha: behind: mirror serial {behind_at}, index {newest}; lacks {A2}",
        f"delta: ahead: mirror serial {origin.last_serial + 50}, index "
        f"{origin.project_serial('delta')}: the changelog, read to serial {origin.last_serial}, "
        "has nothing newer for the project (the index rolled back, or the mirror follows "
        "another index)",
        f"epsilon: missing: the mirror answers 404; the index has it (serial {missing})",
    ]
    assert "checked 5 projects" in err
    assert "1 missing, 1 behind, 1 ahead" in err


def test_a_consistent_mirror_exits_0_and_role_entries_are_not_findings(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:
        origin.role_change("alpha", "alice")
        origin.role_change("beta", "bob")
        assert _check(origin, mirror) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "checked 4 projects" in err and "no findings" in err


def test_json_has_stable_keys_and_names_lists_projects_to_resync(
    origin: Origin, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with _mirror(origin) as mirror:
        origin.publish("alpha", "2.0")
        origin.yank("beta", "1.0", "broken")
        origin.remove_release("gamma", "1.0")
        report = tmp_path / "mirror.json"
        assert _check(origin, mirror, "--format", "json", "-o", str(report)) == 1
        assert _check(origin, mirror, "--format", "names") == 1
    document = json.loads(report.read_text())
    assert set(document) == {
        "version", "tool", "mirror", "changelog", "selection", "journal", "projects",
        "seconds", "counts", "findings", "refreshed",
    }
    assert document["selection"] == "window"
    assert document["journal"] == {"low": 0, "head": origin.last_serial}
    by_project = {f["project"]: f for f in document["findings"]}
    assert {p: f["kind"] for p, f in by_project.items()} == {
        "alpha": "behind", "beta": "behind", "gamma": "behind"
    }
    assert set(by_project["alpha"]) == {
        "project", "kind", "message", "mirror_serial", "index_serial", "lacks", "still_lists"
    }
    assert by_project["alpha"]["lacks"] == [A2]
    assert "release 1.0 is yanked on the index" in by_project["beta"]["message"]
    assert by_project["gamma"]["still_lists"] == ["gamma-1.0-py3-none-any.whl"]
    assert capsys.readouterr().out == "alpha\nbeta\ngamma\n"


def test_devpi_refresh_fixes_what_is_behind(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin, profile="devpi", refresh=True) as mirror:
        origin.publish("alpha", "2.0")
        origin.publish("epsilon", "1.0")
        assert _check(origin, mirror, "--refresh") == 0
        assert mirror.refreshes == {"alpha": 1, "epsilon": 1}
        out, err = capsys.readouterr()
        assert out.splitlines() == [
            "alpha: refreshed: was behind, now right",
            "epsilon: refreshed: was missing, now right",
        ]
        assert "refreshed 2, fixed 2" in err
        assert _check(origin, mirror) == 0  # and it stays right


def test_devpi_refresh_that_does_not_help_is_still_a_finding(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin, profile="devpi", refresh=True, refresh_fixes=False) as mirror:
        origin.publish("alpha", "2.0")
        assert _check(origin, mirror, "--refresh", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["refreshed"] == [
        {"project": "alpha", "before": "behind", "fixed": False, "after": "behind"}
    ]
    assert [f["kind"] for f in document["findings"]] == ["behind"]


def test_a_refresh_the_mirror_refuses_says_why(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:  # bandersnatch: no refresh endpoint (404)
        origin.publish("alpha", "2.0")
        assert _check(origin, mirror, "--refresh") == 1
    out = capsys.readouterr().out
    assert "alpha: behind:" in out and "refresh failed: HTTP 404" in out


def test_all_reads_every_listed_project_and_reaches_back_for_old_serials(
    origin: Origin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:
        old = origin.content_serial("alpha")
        newest = origin.publish("alpha", "2.0")  # content change, then many others
        origin.role_change("beta")  # role only, before the window too
        for number in range(6):
            origin.publish(f"filler{number}", "1.0")
        mirror.sync(*(f"filler{number}" for number in range(6)))
        monkeypatch.setattr("safe_pip.mirrors.upstream.DEFAULT_WINDOW", 5)
        assert _check(origin, mirror) == 0  # the window holds only the fillers
        assert _check(origin, mirror, "--all", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["selection"] == "all"
    assert document["projects"] == 10
    assert document["journal"]["low"] <= old
    assert [(f["project"], f["kind"], f["mirror_serial"], f["index_serial"])
            for f in document["findings"]] == [("alpha", "behind", old, newest)]


def test_since_a_serial_or_a_moment(origin: Origin, capsys: pytest.CaptureFixture[str]) -> None:
    clock = [time.time() + 10]  # after the fixture's entries: journal times only go forward
    origin.clock = lambda: clock[0]
    with _mirror(origin) as mirror:
        origin.publish("alpha", "2.0")
        clock[0] += 3600
        point = origin.last_serial
        origin.publish("beta", "2.0")
        assert _check(origin, mirror, "--since", str(point), "--format", "names") == 1
        assert capsys.readouterr().out == "beta\n"
        moment = datetime.fromtimestamp(clock[0] - 60, tz=timezone.utc).isoformat()
        assert _check(origin, mirror, "--since", moment, "--format", "names") == 1
        assert capsys.readouterr().out == "beta\n"


def test_a_page_without_serial_lacking_an_upload_is_unverifiable_not_wrong(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin, profile="plain") as mirror:
        origin.publish("alpha", "2.0")
        assert _check(origin, mirror) == 0
        out, _ = capsys.readouterr()
        assert out.startswith("alpha: unverifiable: no serial on the mirror's page")
        assert main(
            ["--strict", "--changelog", origin.upstream_changelog_url, "mirror-check",
             "--format", "names", mirror.simple_url]
        ) == 1
        assert capsys.readouterr().out == ""  # nothing shown wrong: nothing to resync


def test_a_page_the_mirror_cannot_serve_is_failed(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    # The origin itself as a bandersnatch-style mirror that never lags, with a broken page.
    with Origin(profile="bandersnatch") as index:
        index.publish("alpha", "1.0")
        index.publish("beta", "1.0")
        index.faults.inject("beta", "bad-json")
        code = main(
            ["--changelog", index.upstream_changelog_url, "mirror-check", index.simple_url]
        )
    assert code == 1
    assert capsys.readouterr().out.startswith("beta: failed: malformed index page")


@pytest.mark.parametrize("fault", ["500", "405"])
def test_an_unreadable_changelog_judges_nothing(
    origin: Origin, fault: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:
        origin.changelog_fault = fault  # type: ignore[assignment]
        code = main(
            ["--max-wait", "0", "--changelog", origin.upstream_changelog_url,
             "mirror-check", mirror.simple_url]
        )
        assert mirror.pages_served == 0
    assert code == 75
    out, err = capsys.readouterr()
    assert out == ""
    assert f"HTTP {fault}" in err and "nothing was judged (exit 75)" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://mirror.example/simple/"], "MIRROR_URL must be an http(s) URL"),
        (["--since", "yesterday", "http://127.0.0.1:9/simple/"], "--since: expected a serial"),
        (["--all", "--since", "5", "http://127.0.0.1:9/simple/"], "not allowed with"),
        (["--jobs", "0", "http://127.0.0.1:9/simple/"], "--jobs must be at least 1"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mirror-check", *args]) == 2
    assert message in capsys.readouterr().err


def test_the_changelog_is_asked_a_bounded_number_of_times(origin: Origin) -> None:
    with _mirror(origin) as mirror:
        for number in range(40):
            origin.publish(f"more{number}", "1.0")
        origin.calls.clear()
        assert _check(origin, mirror) == 1  # 40 missing
        assert dict(origin.calls) == {"changelog_last_serial": 1, "changelog_since_serial": 1}
        origin.calls.clear()
        assert _check(origin, mirror, "--all") == 1
        assert dict(origin.calls) == {
            "changelog_last_serial": 1,
            "changelog_since_serial": 1,
            "list_packages_with_serial": 1,
        }
        assert mirror.pages_served == 2 * 44


def test_a_progress_line_on_a_terminal(
    origin: Origin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    with _mirror(origin) as mirror:
        origin.publish("alpha", "2.0")
        assert _check(origin, mirror) == 1
    err = capsys.readouterr().err
    assert "\rsafe-pip: checked 4/4 projects, 1 findings" in err
    assert err.rstrip().endswith("1 behind")  # the line is cleared before the summary


def test_all_reaches_back_a_bounded_number_of_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(changelog_page_size=2) as origin, Mirror(origin) as mirror:
        origin.publish("alpha", "1.0")
        mirror.sync()
        origin.publish("alpha", "2.0")
        for number in range(8):
            origin.publish(f"filler{number}", "1.0")
        mirror.sync(*(f"filler{number}" for number in range(8)))
        monkeypatch.setattr("safe_pip.mirrors.upstream.DEFAULT_WINDOW", 4)
        monkeypatch.setattr("safe_pip.mirrors.upstream.EXTEND_CALLS", 1)
        origin.calls.clear()
        assert _check(origin, mirror, "--all", "--format", "json") == 0
        # the window: 2 calls of 2 rows; reaching back: at most 1 + 1 calls, which do not
        # reach the window (the index answers 2 rows a call, not 50,000), so not kept
        assert origin.calls["changelog_since_serial"] == 4
    document = json.loads(capsys.readouterr().out)
    assert [(f["project"], f["kind"]) for f in document["findings"]] == [
        ("alpha", "unverifiable")
    ]
    assert "was not read" in document["findings"][0]["message"]


def test_credentials_never_shown_and_a_wrong_url_gets_a_hint(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin) as mirror:
        url = mirror.simple_url.replace("http://", "http://user:s3cret-pw@")
        wrong = url.replace("/simple/", "/")  # not the simple index: every page 404
        argv = ["--changelog", origin.upstream_changelog_url, "mirror-check", "--format", "json"]
        assert main([*argv, wrong]) == 1
    out, err = capsys.readouterr()
    assert "s3cret" not in out + err
    assert json.loads(out)["counts"]["missing"] == 4
    assert "every project is missing: is MIRROR_URL the mirror's simple index" in err


def test_a_page_synced_after_the_journal_was_read_is_not_ahead(
    origin: Origin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    read = MirrorPages.read
    with _mirror(origin) as mirror:

        def meanwhile(pages: MirrorPages, project: str) -> Seen:
            if project == "alpha":  # the index and the mirror move on after the journal read
                origin.publish("alpha", "2.0")
                mirror.sync("alpha")
            return read(pages, project)

        monkeypatch.setattr(MirrorPages, "read", meanwhile)
        origin.calls.clear()
        assert _check(origin, mirror) == 0
        # one more call, to read on past the page's serial
        assert origin.calls["changelog_since_serial"] == 2
    assert capsys.readouterr().out == ""


# -- mirrors whose pages carry no serial: judged by content against the journal's file events


def _plain_check(origin: Origin, mirror: Mirror, *args: str, complete: bool = False) -> int:
    declared = ["--complete-mirror"] if complete else []
    return main(
        ["--changelog", origin.upstream_changelog_url, *declared, "mirror-check", *args,
         mirror.simple_url]
    )  # fmt: skip


def test_a_serialless_mirror_behind_by_an_upload_is_behind_when_declared_complete(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin, profile="plain") as mirror:
        newest = origin.publish("alpha", "2.0")
        assert _plain_check(origin, mirror, complete=True) == 1
        complete = capsys.readouterr().out
        # Not declared complete, the lacking file may be filtered: not shown wrong.
        assert _plain_check(origin, mirror) == 0
        undeclared = capsys.readouterr().out
        mirror.sync("alpha")
        assert _plain_check(origin, mirror, complete=True) == 0
        synced = capsys.readouterr()
    assert complete.splitlines() == [
        f"alpha: behind: mirror serial none, index {newest} by the changelog's file events; "
        f"lacks {A2}"
    ]
    assert undeclared.startswith("alpha: unverifiable: no serial on the mirror's page, and it ")
    assert f"lacks {A2}" in undeclared and "--complete-mirror" in undeclared
    assert synced.out == "" and "checked 4 projects" in synced.err and "no findings" in synced.err


def test_a_serialless_mirror_still_listing_a_removed_file_or_missing_a_yank_is_behind(
    origin: Origin, capsys: pytest.CaptureFixture[str]
) -> None:
    with _mirror(origin, profile="plain") as mirror:
        removed = origin.remove_file("gamma", "gamma-1.0-py3-none-any.whl")
        yanked = origin.yank("beta", "1.0", "broken")
        assert _plain_check(origin, mirror, "--format", "json") == 1
        undeclared = json.loads(capsys.readouterr().out)
        assert _plain_check(origin, mirror, "--format", "json", complete=True) == 1
        declared = json.loads(capsys.readouterr().out)
    # A filter never keeps a removed file: behind on any mirror.
    assert [(f["project"], f["kind"], f["still_lists"], f["index_serial"])
            for f in undeclared["findings"]] == [
        ("gamma", "behind", ["gamma-1.0-py3-none-any.whl"], removed)
    ]  # fmt: skip
    # The page marks no file yanked: whether it carries yank data at all is known only when
    # the mirror is declared complete.
    beta = {f["project"]: f for f in declared["findings"]}["beta"]
    assert beta["kind"] == "behind" and beta["index_serial"] == yanked
    assert f"does not show beta-1.0-py3-none-any.whl yanked (yanked at serial {yanked})" in (
        beta["message"]
    )


def test_a_serialless_mirror_filtering_a_platform_is_not_reported_unless_declared_complete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The upstream has Linux and Windows wheels; a caching mirror without serials (a TTL, never
    purged) carries the Linux one only, on purpose."""
    tags = ["cp312-cp312-manylinux_2_28_x86_64", "cp312-cp312-win_amd64"]
    windows = "alpha-2.0-cp312-cp312-win_amd64.whl"
    with Origin() as upstream, Origin(profile=PROFILES["plain"].caching(3600.0)) as filtered:
        for index, kept in ((upstream, tags), (filtered, tags[:1])):
            index.publish("beta", "1.0")
            index.publish("alpha", "1.0")
            index.publish("alpha", "2.0")
            index.add_wheels("alpha", "2.0", kept)
        with CDN(filtered) as cdn:
            args = ["--changelog", upstream.changelog_url]
            assert main([*args, "mirror-check", cdn.simple_url]) == 0
            used = capsys.readouterr()
            assert main([*args, "--complete-mirror", "mirror-check", cdn.simple_url]) == 1
            declared = capsys.readouterr().out
    assert ": behind:" not in used.out and "1 unverifiable" in used.err
    assert used.out.startswith("alpha: unverifiable:") and windows in used.out
    assert declared.startswith("alpha: behind: mirror serial none, index ")
    assert declared.rstrip().endswith(f"lacks {windows}")
