"""The mirror judge: a page against the journal's entries for its project (pure)."""

from __future__ import annotations

from safe_pip.index.journal import ChangelogEntry
from safe_pip.mirrors.judge import Seen, Upstream, judge
from safe_pip.mirrors.upstream import Journal
from safe_pip.report.mirror import MirrorFinding, MirrorFormat, MirrorKind, MirrorResult


def _e(serial: int, action: str, version: str | None = None, name: str = "demo") -> ChangelogEntry:
    return ChangelogEntry(name, version, 1_700_000_000 + serial, action, serial)


WHEEL_1 = "demo-1.0-py3-none-any.whl"
WHEEL_2 = "demo-2.0-py3-none-any.whl"
HISTORY = (
    _e(101, "create"),
    _e(102, "new release", "1.0"),
    _e(103, f"add py3 file {WHEEL_1}", "1.0"),
    _e(104, "new release", "2.0"),
    _e(105, f"add py3 file {WHEEL_2}", "2.0"),
)


def _page(serial: int | None, *files: str, yanked: frozenset[str] = frozenset()) -> Seen:
    return Seen("page", serial, {f: f in yanked for f in files})


def test_a_page_at_the_newest_content_serial_is_right() -> None:
    assert judge("demo", _page(105, WHEEL_1, WHEEL_2), Upstream(100, 105, HISTORY)) is None


def test_behind_names_the_serials_and_the_files_it_lacks() -> None:
    finding = judge("demo", _page(103, WHEEL_1), Upstream(100, 105, HISTORY))
    assert finding is not None
    assert finding.kind is MirrorKind.BEHIND
    assert (finding.mirror_serial, finding.index_serial) == (103, 105)
    assert finding.lacks == (WHEEL_2,)
    assert finding.message == "mirror serial 103, index 105"


def test_role_entries_never_make_a_page_behind() -> None:
    history = (*HISTORY, _e(106, "add Owner alice"), _e(107, "invite Maintainer bob"))
    assert judge("demo", _page(105, WHEEL_1, WHEEL_2), Upstream(100, 107, history)) is None


def test_behind_names_files_removed_and_yanks_missed() -> None:
    history = (
        *HISTORY,
        _e(106, f"remove file {WHEEL_1}", "1.0"),
        _e(107, "yank release", "2.0"),
    )
    finding = judge("demo", _page(105, WHEEL_1, WHEEL_2), Upstream(100, 107, history))
    assert finding is not None and finding.kind is MirrorKind.BEHIND
    assert finding.still_lists == (WHEEL_1,)
    assert finding.lacks == ()
    assert "release 2.0 is yanked on the index" in finding.message


def test_a_removed_release_is_still_listed() -> None:
    history = (*HISTORY, _e(106, "remove release", "2.0"))
    finding = judge("demo", _page(105, WHEEL_1, WHEEL_2), Upstream(100, 106, history))
    assert finding is not None and finding.still_lists == (WHEEL_2,)


def test_a_removed_project_is_right_as_404_and_behind_as_a_page() -> None:
    history = (*HISTORY, _e(106, "remove project"))
    assert judge("demo", Seen("missing"), Upstream(100, 106, history)) is None
    finding = judge("demo", _page(105, WHEEL_1, WHEEL_2), Upstream(100, 106, history))
    assert finding is not None and finding.kind is MirrorKind.BEHIND
    assert finding.still_lists == (WHEEL_1, WHEEL_2)
    assert "the index removed the project" in finding.message


def test_missing_and_ahead() -> None:
    missing = judge("demo", Seen("missing"), Upstream(100, 105, HISTORY))
    assert missing is not None and missing.kind is MirrorKind.MISSING
    assert missing.index_serial == 105
    ahead = judge("demo", _page(200, WHEEL_1, WHEEL_2), Upstream(100, 105, HISTORY))
    assert ahead is not None and ahead.kind is MirrorKind.AHEAD
    assert (ahead.mirror_serial, ahead.index_serial) == (200, 105)


def test_listed_serial_from_before_the_window() -> None:
    # --all: the index lists serial 90 for a project with no entry in the window.
    right = judge("demo", _page(90, WHEEL_1), Upstream(100, 105, (), listed=90))
    assert right is None
    ahead = judge("demo", _page(95, WHEEL_1), Upstream(100, 105, (), listed=90))
    assert ahead is not None and ahead.kind is MirrorKind.AHEAD
    unknown = judge("demo", _page(50, WHEEL_1), Upstream(100, 105, (), listed=90))
    assert unknown is not None and unknown.kind is MirrorKind.UNVERIFIABLE
    assert "before serial 100 was not read" in unknown.message


def test_a_page_without_serial_is_unverifiable_and_a_failure_is_failed() -> None:
    finding = judge("demo", _page(None, WHEEL_1), Upstream(100, 105, HISTORY))
    assert finding is not None and finding.kind is MirrorKind.UNVERIFIABLE
    assert not finding.kind.wrong
    failed = judge("demo", Seen("failed", reason="HTTP 500"), Upstream(100, 105, HISTORY))
    assert failed is not None and failed.kind is MirrorKind.FAILED and failed.kind.wrong


def test_journal_selects_projects_with_content_changes_only() -> None:
    journal = Journal(100, 100)
    journal.add([*HISTORY, _e(106, "add Owner alice", name="roles-only")])
    assert journal.selected() == ["demo"]
    journal.listed = {"roles-only": 106, "old": 5}
    assert journal.selected() == ["demo", "old", "roles-only"]


def test_names_format_lists_what_to_resync_once() -> None:
    result = MirrorResult("http://m.example/simple/", "http://index.example/pypi", "window", 0, 9)
    result.findings = [
        judge("demo", _page(103, WHEEL_1), Upstream(100, 105, HISTORY)),  # type: ignore[list-item]
        judge("zeta", _page(None), Upstream(100, 105, HISTORY)),  # type: ignore[list-item]
    ]
    assert MirrorFormat.NAMES.render(result) == "demo\n"
    text = MirrorFormat.TEXT.render(result)
    assert text.splitlines()[0] == (
        f"demo: behind: mirror serial 103, index 105; lacks {WHEEL_2}"
    )


def _content(page: Seen, history: tuple[ChangelogEntry, ...], *, complete: bool) -> object:
    return judge("demo", page, Upstream(100, history[-1].serial, history), complete=complete)


def test_a_page_without_serial_lacking_an_upload_is_behind_on_a_complete_mirror() -> None:
    finding = _content(_page(None, WHEEL_1), HISTORY, complete=True)
    assert isinstance(finding, MirrorFinding) and finding.kind is MirrorKind.BEHIND
    assert (finding.mirror_serial, finding.index_serial, finding.lacks) == (None, 105, (WHEEL_2,))
    assert finding.message == "mirror serial none, index 105 by the changelog's file events"


def test_a_page_without_serial_lacking_an_upload_elsewhere_is_unverifiable() -> None:
    """A filtering mirror and a lagging one lack the same file: not shown wrong."""
    finding = _content(_page(None, WHEEL_1), HISTORY, complete=False)
    assert isinstance(finding, MirrorFinding) and finding.kind is MirrorKind.UNVERIFIABLE
    assert finding.lacks == (WHEEL_2,) and "--complete-mirror" in finding.message


def test_a_removed_file_or_missed_yank_is_behind_on_any_mirror() -> None:
    removed = (*HISTORY, _e(106, f"remove file {WHEEL_2}", "2.0"))
    finding = _content(_page(None, WHEEL_1, WHEEL_2), removed, complete=False)
    assert isinstance(finding, MirrorFinding) and finding.kind is MirrorKind.BEHIND
    assert finding.still_lists == (WHEEL_2,) and finding.index_serial == 106
    # A page that marks some file yanked carries yank data: a yank it missed is shown.
    yanked = (*HISTORY, _e(106, "yank release", "1.0"), _e(107, "yank release", "2.0"))
    page = _page(None, WHEEL_1, WHEEL_2, yanked=frozenset({WHEEL_1}))
    finding = _content(page, yanked, complete=False)
    assert isinstance(finding, MirrorFinding) and finding.kind is MirrorKind.BEHIND
    assert f"does not show {WHEEL_2} yanked (yanked at serial 107)" in finding.message


def test_a_page_without_serial_agreeing_or_with_no_events_is_right() -> None:
    assert _content(_page(None, WHEEL_1, WHEEL_2), HISTORY, complete=True) is None
    roles = (_e(106, "add Owner alice"),)
    assert judge("demo", _page(None), Upstream(105, 106, roles), complete=True) is None
