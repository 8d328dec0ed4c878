"""The verdict is a pure function: every branch, without servers."""

from __future__ import annotations

import pytest

from safe_pip.index.verdict import Evidence, Verdict, judge, judge_missing

FP = ("files", "a")
OTHER = ("files", "b")


def changelog(required: int | None, *, low: int = 0, head: int = 100, **kw: object) -> Evidence:
    return Evidence(
        changelog_available=True,
        changelog_required=required,
        changelog_low=low,
        changelog_head=head,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("serial", "evidence", "expected"),
    [
        (10, changelog(10), Verdict.FRESH),
        (11, changelog(10), Verdict.FRESH),
        (9, changelog(10), Verdict.STALE),
        (5, changelog(None, low=50), Verdict.FRESH),  # no content change in the window
        (None, changelog(10), Verdict.NO_SERIAL),
        (None, Evidence(), Verdict.NO_SERIAL),
        (10, Evidence(), Verdict.UNVERIFIED),
        (10, Evidence(remembered=10), Verdict.UNVERIFIED),
        (9, Evidence(remembered=10), Verdict.ROLLBACK),
        # a role change raised the serial seen before; the changelog proves the content current
        (9, changelog(8, remembered=10), Verdict.FRESH),
        # ...unless the changelog itself is behind what was seen (it rolled back too)
        (9, changelog(8, head=9, remembered=10), Verdict.ROLLBACK),
        # stale by the changelog and below memory: waited out, not refused at once
        (7, changelog(8, remembered=10), Verdict.STALE),
        (10, Evidence(origin_available=True, origin_serial=10, origin_fingerprint=FP),
         Verdict.FRESH),
        (9, Evidence(origin_available=True, origin_serial=10, origin_fingerprint=OTHER),
         Verdict.STALE),
        # same content, lower serial: a role change at the origin
        (9, Evidence(origin_available=True, origin_serial=10, origin_fingerprint=FP),
         Verdict.FRESH),
        (None, Evidence(origin_available=True, origin_serial=None, origin_fingerprint=FP),
         Verdict.FRESH),
        (None, Evidence(origin_available=True, origin_serial=None, origin_fingerprint=OTHER),
         Verdict.STALE),
        # the origin no longer lists the project the cache still shows
        (9, Evidence(origin_available=True, origin_fingerprint=None), Verdict.STALE),
    ],
)
def test_verdicts(serial: int | None, evidence: Evidence, expected: Verdict) -> None:
    assert judge(serial, FP, evidence).verdict is expected


def test_stale_names_the_requirement() -> None:
    result = judge(9, FP, changelog(12))
    assert (result.seen, result.required, result.authority) == (9, 12, "changelog")


def test_any_authority_saying_stale_wins() -> None:
    ev = Evidence(
        changelog_available=True,
        changelog_required=5,
        origin_available=True,
        origin_serial=12,
        origin_fingerprint=OTHER,
    )
    result = judge(9, FP, ev)
    assert result.verdict is Verdict.STALE
    assert result.required == 12


def test_missing_page_is_stale_when_the_changelog_knows_the_project() -> None:
    assert judge_missing(changelog(None)) is None  # no content change: a 404 is believable
    stale = judge_missing(changelog(7))
    assert stale is not None and stale.verdict is Verdict.STALE and stale.required == 7
    removed = Evidence(
        changelog_available=True, changelog_required=7, changelog_removed=True
    )
    assert judge_missing(removed) is None
    origin = Evidence(origin_available=True, origin_serial=3, origin_fingerprint=FP)
    assert judge_missing(origin) is not None
    assert judge_missing(Evidence(origin_available=True)) is None
