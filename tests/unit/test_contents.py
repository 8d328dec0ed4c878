"""A page without a serial judged by what it lists against the journal's file events."""

from __future__ import annotations

import pytest

from safe_pip.index.contents import compare_listing_with_journal
from safe_pip.index.journal import (
    ChangelogEntry,
    FileEvent,
    JournalSummary,
    file_event_of,
    fold_content_changes,
)
from safe_pip.index.model import DistFile
from safe_pip.index.verdict import FILE_EVENTS, Evidence, Verdict, judge

WIN = "alpha-2.0-cp312-cp312-win_amd64.whl"
LINUX = "alpha-2.0-cp312-cp312-manylinux_2_28_x86_64.whl"
SDIST = "alpha-2.0.tar.gz"
OLD = "alpha-1.0-py3-none-any.whl"


def dist(name: str, yanked: bool = False) -> DistFile:
    return DistFile(name, f"https://files.example/{name}", {"sha256": "0" * 64}, yanked=yanked)


def add(serial: int, name: str) -> FileEvent:
    return FileEvent(serial, "add", name)


def test_a_page_with_every_added_file_is_fresh() -> None:
    verdict = compare_listing_with_journal(
        [dist(OLD), dist(SDIST), dist(WIN)], [add(5, SDIST), add(6, WIN)], complete=True
    )
    assert verdict.fresh and verdict.checked == 2


def test_no_event_in_the_window_is_fresh() -> None:
    verdict = compare_listing_with_journal([dist(OLD)], [], complete=False)
    assert verdict.fresh and verdict.checked == 0


def test_a_missing_file_is_stale_on_a_complete_mirror_only() -> None:
    events = [add(5, SDIST), add(6, WIN), add(7, LINUX)]
    filtered = [dist(OLD), dist(SDIST), dist(LINUX)]  # a mirror that drops Windows wheels
    complete = compare_listing_with_journal(filtered, events, complete=True)
    assert [str(d) for d in complete.stale] == [f"the page lacks {WIN}, added at serial 6"]
    other = compare_listing_with_journal(filtered, events, complete=False)
    assert not other.stale and not other.fresh
    assert [d.filename for d in other.unexplained] == [WIN]


def test_a_removed_file_still_listed_is_stale_even_when_filtering() -> None:
    events = [add(5, SDIST), add(6, WIN), FileEvent(9, "remove", WIN)]
    verdict = compare_listing_with_journal([dist(SDIST), dist(WIN)], events, complete=False)
    assert [(d.filename, d.serial, d.what) for d in verdict.stale] == [(WIN, 9, "removed")]
    # ...and a file added then removed is not missing once gone
    assert compare_listing_with_journal([dist(SDIST)], events, complete=True).fresh


def test_a_removed_release_or_project_must_be_gone() -> None:
    release = [add(5, SDIST), FileEvent(8, "remove-release", "2.0")]
    assert compare_listing_with_journal([dist(OLD)], release, complete=True).fresh
    stale = compare_listing_with_journal([dist(OLD), dist(SDIST)], release, complete=False)
    assert [(d.filename, d.serial) for d in stale.stale] == [(SDIST, 8)]
    project = [FileEvent(8, "remove-project", "")]
    gone = compare_listing_with_journal([dist(OLD)], project, complete=False)
    assert [(d.filename, d.what) for d in gone.stale] == [(OLD, "removed")]


def test_yanks_are_compared_where_the_page_carries_yank_data() -> None:
    yank = [FileEvent(8, "yank", "1.0")]
    # a complete mirror carries its upstream's yanks: the unseen yank is stale
    unseen = compare_listing_with_journal([dist(OLD)], yank, complete=True)
    assert [str(d) for d in unseen.stale] == [
        f"the page does not show {OLD} yanked (yanked at serial 8)"
    ]
    # a page with no yank mark anywhere may not carry yank data at all (not judged)...
    assert compare_listing_with_journal([dist(OLD)], yank, complete=False).fresh
    # ...but one that marks some file yanked does
    marked = [dist(OLD), dist("alpha-0.9.tar.gz", yanked=True)]
    assert compare_listing_with_journal(marked, yank, complete=False).stale
    # an unyank the page has not seen: it shows the yank mark, so it carries yank data
    unyank = [FileEvent(8, "yank", "1.0"), FileEvent(9, "unyank", "1.0")]
    still = compare_listing_with_journal([dist(OLD, yanked=True)], unyank, complete=False)
    assert [d.what for d in still.stale] == ["unyanked"]


def test_worst_names_the_newest_event() -> None:
    events = [add(5, SDIST), add(6, WIN)]
    verdict = compare_listing_with_journal([dist(OLD)], events, complete=True)
    worst = verdict.worst()
    assert worst is not None and worst.filename == WIN


def entry(serial: int, action: str, version: str | None = "2.0") -> ChangelogEntry:
    return ChangelogEntry("alpha", version, 0, action, serial)


@pytest.mark.parametrize(
    ("action", "event"),
    [
        (f"add cp312 file {WIN}", FileEvent(3, "add", WIN)),
        (f"remove file {WIN}", FileEvent(3, "remove", WIN)),
        ("yank release", FileEvent(3, "yank", "2.0")),
        ("unyank release", FileEvent(3, "unyank", "2.0")),
        ("remove release", FileEvent(3, "remove-release", "2.0")),
        ("remove project", FileEvent(3, "remove-project", "")),
        ("add Owner file", None),
        ("new release", None),
        ("create", None),
    ],
)
def test_file_events_are_read_from_journal_actions(action: str, event: FileEvent | None) -> None:
    assert file_event_of(entry(3, action)) == event


def test_the_summary_keeps_file_events_through_json() -> None:
    content: dict[str, int] = {}
    removed: set[str] = set()
    files: dict[str, list[FileEvent]] = {}
    rows = [entry(11, f"add py3 file {SDIST}"), entry(12, "add Owner bob", None)]
    head = fold_content_changes(rows, 10, content, removed, files)
    summary = JournalSummary(10, head, content, frozenset(removed), files)
    again = JournalSummary.from_json(summary.to_json())
    assert again.file_events("Alpha") == (FileEvent(11, "add", SDIST),)
    assert again.file_events("beta") == ()
    assert JournalSummary(10, 12, content).file_events("alpha") is None
    with pytest.raises(ValueError, match="file event"):
        JournalSummary.from_json({**summary.to_json(), "files": {"alpha": [[11, "eat", "x"]]}})


def test_the_verdict_names_the_file_events_as_the_authority() -> None:
    ev = Evidence(
        changelog_available=True,
        changelog_required=6,
        changelog_low=1,
        changelog_head=9,
        changelog_files=(add(6, WIN),),
        complete_mirror=True,
    )
    stale = judge(None, (), ev, [dist(OLD)])
    assert (stale.verdict, stale.required, stale.authority) == (Verdict.STALE, 6, FILE_EVENTS)
    assert WIN in stale.reason
    fresh = judge(None, (), ev, [dist(OLD), dist(WIN)])
    assert (fresh.verdict, fresh.authority) == (Verdict.FRESH, FILE_EVENTS)
    filtering = judge(None, (), Evidence(**{**ev.__dict__, "complete_mirror": False}), [dist(OLD)])
    assert filtering.verdict is Verdict.NO_SERIAL and "filtered" in filtering.reason
    # without the page's files (or the events), nothing changes from before
    assert judge(None, (), ev).verdict is Verdict.NO_SERIAL


def test_merging_keeps_file_events_only_for_the_window_that_has_them() -> None:
    events = {"alpha": [add(11, SDIST)]}
    with_files = JournalSummary(10, 12, {"alpha": 11}, files=events)
    older_bare = JournalSummary(5, 11, {"alpha": 11})
    newer_bare = JournalSummary(5, 13, {"alpha": 13})
    assert with_files.merged(older_bare) is with_files
    assert older_bare.merged(with_files) is with_files
    assert with_files.merged(newer_bare).files is None  # cannot claim events up to 13
    both = with_files.merged(JournalSummary(12, 14, {"alpha": 14}, files={"alpha": [add(14, WIN)]}))
    assert (both.low, both.head) == (10, 14)
    assert [e.serial for e in both.file_events("alpha") or ()] == [11, 14]


def test_files_added_before_a_quarantine_are_not_required() -> None:
    action = ChangelogEntry("alpha", None, 0, "project quarantined", 8)
    quarantine = file_event_of(action)
    assert quarantine == FileEvent(8, "quarantine", "")
    events = [add(5, SDIST), quarantine, add(9, WIN)]
    verdict = compare_listing_with_journal([], events, complete=True)
    assert [d.filename for d in verdict.stale] == [WIN]  # added after it: still required
