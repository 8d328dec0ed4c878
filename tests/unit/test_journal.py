"""The journal model: which actions change a page, rows, folding, and the summary."""

from __future__ import annotations

import json

import pytest

from safe_pip.index.journal import (
    ChangelogEntry,
    JournalSummary,
    entry_from_row,
    fold_content_changes,
    is_content_change,
)

# --------------------------------------------------------------------------------------------
# Action classification
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "content"),
    [
        ("create", True),
        ("add source file example-1.0.tar.gz", True),
        ("add py3 file example-1.0-py3-none-any.whl", True),
        ("add cp311 file example-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", True),
        ("add 3.6 file example-1.0-py3.6.egg", True),
        ("remove file example-1.0.tar.gz", True),
        ("yank release", True),
        ("unyank release", True),
        ("remove release", True),
        ("remove project", True),
        ("  yank release  ", True),
        ("new release", False),
        ("add Owner alice", False),
        ("add Maintainer bob", False),
        ("remove Owner alice", False),
        ("remove Maintainer bob", False),
        ("change Owner alice to Maintainer", False),
        ("invite Owner carol", False),
        ("invite Maintainer carol", False),
        ("accepted Owner carol", False),
        ("accepted Maintainer carol", False),
        ("revoke_invite Owner carol", False),
        ("decline_invite Owner carol", False),
        ("add Owner file", False),  # a user called "file"
        ("add Owner file x", False),  # and a team that looks like one
        ("remove Owner file", False),
        ("add Maintainer my-team", False),  # team role
        ("remove Owner my-team", False),
        ("change Owner my-team to Maintainer", False),
        ("docupdate", False),
        ("update description", False),
        ("update classifiers", False),
        ("project quarantined", False),
        ("project unquarantined", False),
        ("", False),
        ("create extra", False),
        ("remove release candidate", False),
    ],
)
def test_action_classification(action: str, content: bool) -> None:
    assert is_content_change(action) is content


# --------------------------------------------------------------------------------------------
# JournalSummary
# --------------------------------------------------------------------------------------------


def test_summary_required_and_covers() -> None:
    summary = JournalSummary(10, 20, {"Foo_Bar": 15, "foo-bar": 12, "baz": 20})
    assert summary.required("foo.bar") == 15
    assert summary.required("FOO-BAR") == 15
    assert summary.required("other") is None
    assert summary.covers(10) and summary.covers(25)
    assert not summary.covers(9)
    assert dict(summary.content_serials) == {"foo-bar": 15, "baz": 20}


def test_summary_json_roundtrip() -> None:
    summary = JournalSummary(5, 9, {"a": 6, "b": 9})
    assert JournalSummary.from_json(summary.to_json()) == summary
    assert JournalSummary.from_json(json.dumps(summary.to_json())) == summary


@pytest.mark.parametrize(
    "garbage",
    [
        None,
        [],
        "not json",
        "[1, 2]",
        {},
        {"low": 1, "head": 2},
        {"low": "1", "head": 2, "content_serials": {}},
        {"low": True, "head": 2, "content_serials": {}},
        {"low": 3, "head": 2, "content_serials": {}},
        {"low": -1, "head": 2, "content_serials": {}},
        {"low": 1, "head": 2, "content_serials": []},
        {"low": 1, "head": 2, "content_serials": {"a": "2"}},
        {"low": 1, "head": 2, "content_serials": {"a": 1}},  # not in (low, head]
        {"low": 1, "head": 2, "content_serials": {"a": 3}},
        {"low": 1, "head": 2, "content_serials": {"": 2}},
    ],
)
def test_summary_from_json_rejects_garbage(garbage: object) -> None:
    with pytest.raises(ValueError):
        JournalSummary.from_json(garbage)


def test_summary_merged() -> None:
    a = JournalSummary(10, 20, {"x": 15, "y": 12})
    b = JournalSummary(18, 30, {"x": 19, "z": 25})
    merged = a.merged(b)
    assert (merged.low, merged.head) == (10, 30)
    assert dict(merged.content_serials) == {"x": 19, "y": 12, "z": 25}
    assert b.merged(a) == merged
    gap = JournalSummary(40, 50, {"q": 45})
    assert a.merged(gap) is gap and gap.merged(a) is gap  # a gap cannot be claimed as known


# --------------------------------------------------------------------------------------------
# Rows and folding
# --------------------------------------------------------------------------------------------


def test_entry_from_row_normalises_the_name() -> None:
    entry = entry_from_row(["Foo_Bar", "1.0", 1700000000, "yank release", 12])
    assert entry == ChangelogEntry("foo-bar", "1.0", 1700000000, "yank release", 12)
    assert entry_from_row(("x", None, 1, "create", 0)).version is None


@pytest.mark.parametrize(
    "row",
    [
        None,
        "foo",
        ["foo", None, 1, "create"],  # four fields
        ["foo", None, 1, "create", 2, 3],
        ["", None, 1, "create", 2],
        [3, None, 1, "create", 2],
        ["foo", 1.0, 1, "create", 2],
        ["foo", None, "1", "create", 2],
        ["foo", None, 1, None, 2],
        ["foo", None, 1, "create", -1],
        ["foo", None, 1, "create", True],
        ["foo", None, 1, "create", "2"],
    ],
)
def test_entry_from_row_rejects_other_shapes(row: object) -> None:
    with pytest.raises(ValueError, match="bad changelog row"):
        entry_from_row(row)


def _entry(name: str, action: str, serial: int) -> ChangelogEntry:
    return ChangelogEntry(name, None, 0, action, serial)


def test_fold_keeps_the_newest_content_change_and_the_head() -> None:
    content: dict[str, int] = {"a": 3}
    removed: set[str] = {"b"}
    head = fold_content_changes(
        [
            _entry("a", "add py3 file a-1.0-py3-none-any.whl", 6),
            _entry("a", "add Owner alice", 7),  # a role change: not content
            _entry("b", "create", 8),  # b comes back
            _entry("c", "remove project", 9),
            _entry("d", "new release", 10),
        ],
        5,
        content,
        removed,
    )
    assert head == 10
    assert content == {"a": 6, "b": 8, "c": 9}
    assert removed == {"c"}


def test_fold_of_nothing_keeps_the_head() -> None:
    assert fold_content_changes([], 5, {}, set()) == 5


def test_fold_refuses_an_entry_at_or_before_since() -> None:
    with pytest.raises(ValueError, match="after 5, got 5"):
        fold_content_changes([_entry("a", "create", 5)], 5, {}, set())
