"""The verdict: a pure function of a page's serial, what the authorities say, and memory.

Freshness is judged against a project's newest *content-changing* journal entry, never the
raw journal id: role, invite and team entries raise a project's serial without changing or
purging its page (warehouse #12933), and comparing against raw ids wedged bandersnatch for days
(bandersnatch #1416, #1434, #1633).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from safe_pip.index.contents import compare_listing_with_journal
from safe_pip.index.journal import FileEvent
from safe_pip.index.model import DistFile

#: The authority named when a page without a serial is judged by what it lists.
FILE_EVENTS = "changelog file events"


class Verdict(str, enum.Enum):
    """What the guard concluded about one page."""

    FRESH = "FRESH"  # proven at least as new as an authority requires
    STALE = "STALE"  # older than an authority requires: wait, then refuse
    ROLLBACK = "ROLLBACK"  # older than a serial seen before, and no authority says otherwise
    UNVERIFIED = "UNVERIFIED"  # no authority available; not older than anything seen
    NO_SERIAL = "NO-SERIAL"  # the index gives no serial and no authority can vouch

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Evidence:
    """What the authorities said about one project, gathered by the guard."""

    #: changelog: newest content-changing serial in the window, or None if none there.
    changelog_required: int | None = None
    #: the changelog answered (so ``changelog_required`` is meaningful).
    changelog_available: bool = False
    #: every entry with a serial above this is known to the changelog summary.
    changelog_low: int = 0
    #: global serial when the changelog was asked.
    changelog_head: int | None = None
    #: the newest content change in the window removed the project (a 404 is then the truth).
    changelog_removed: bool = False
    #: the project's file events in the changelog window (None: not kept for this index);
    #: a page without a serial is judged by its listing against them.
    changelog_files: tuple[FileEvent, ...] | None = None
    #: the index is declared a complete mirror of the changelog's index (no filters).
    complete_mirror: bool = False
    #: uncached origin: its serial for the project and a fingerprint of its content.
    origin_serial: int | None = None
    origin_fingerprint: Hashable | None = None
    origin_available: bool = False
    #: highest serial this machine (or a lock file) has seen for the project on this index.
    remembered: int | None = None


@dataclass(frozen=True)
class Judgement:
    """A verdict with the numbers behind it, as shown to the user and in the guard report."""

    verdict: Verdict
    seen: int | None
    required: int | None
    authority: str
    reason: str


def judge_missing(ev: Evidence) -> Judgement | None:
    """A "not found" answer for a project: STALE when an authority knows it exists, else None.

    Caches keep 404s too; a project created (or a file added) after the cached 404 is listed
    by the changelog, and pip would silently take it from another index instead.
    """
    if ev.origin_available and ev.origin_fingerprint is not None:
        return Judgement(
            Verdict.STALE, None, ev.origin_serial, "origin",
            "the index answered 404 but the uncached origin lists the project",
        )
    if ev.changelog_available and ev.changelog_required is not None and not ev.changelog_removed:
        return Judgement(
            Verdict.STALE, None, ev.changelog_required, "changelog",
            "the index answered 404 but the changelog has a content change for the project",
        )
    return None


def judge(
    serial: int | None,
    fingerprint: Hashable,
    ev: Evidence,
    files: Sequence[DistFile] | None = None,
) -> Judgement:
    """Judge one page.

    ``serial`` is the page's agreed serial (None when the index gives none), ``fingerprint``
    what an installer sees of it (files, hashes, yanks), ``ev`` the authorities' answers,
    ``files`` what the page lists (needed to judge a page without a serial by content).
    """
    proofs: list[str] = []
    stale: list[tuple[int, str, str]] = []  # (required, authority, reason)
    unproven = "the index gives no serial"

    if ev.origin_available:
        same = ev.origin_fingerprint is not None and ev.origin_fingerprint == fingerprint
        if ev.origin_fingerprint is None:
            # the origin does not know the project but the cache still lists it
            stale.append((ev.origin_serial or 0, "origin", "the origin no longer lists it"))
        elif same or (
            serial is not None and ev.origin_serial is not None and serial >= ev.origin_serial
        ):
            proofs.append("origin")
        else:
            stale.append(
                (ev.origin_serial or 0, "origin", "the uncached origin lists different files")
            )

    if ev.changelog_available and serial is not None:
        if ev.changelog_required is not None and serial < ev.changelog_required:
            stale.append(
                (ev.changelog_required, "changelog", "the changelog has a newer content change")
            )
        else:
            proofs.append("changelog")

    if (
        serial is None
        and files is not None
        and ev.changelog_available
        and ev.changelog_files is not None
    ):
        listing = compare_listing_with_journal(
            files, ev.changelog_files, complete=ev.complete_mirror
        )
        worst = listing.worst()
        if listing.stale and worst is not None:
            stale.append((worst.serial, FILE_EVENTS, str(worst)))
        elif worst is not None:
            unproven = (
                f"{worst}: filtered by the mirror or not yet seen (a complete mirror's "
                "page would be stale)"
            )
        else:
            proofs.append(FILE_EVENTS)

    if stale:
        most, authority, reason = max(stale)
        return Judgement(Verdict.STALE, serial, most, authority, reason)

    required: int | None = ev.changelog_required if ev.changelog_available else ev.origin_serial
    if serial is None:
        if proofs and proofs[0] == FILE_EVENTS:
            return Judgement(
                Verdict.FRESH, None, required, FILE_EVENTS,
                "lists what the changelog's file events require",
            )
        if proofs:
            return Judgement(Verdict.FRESH, None, required, proofs[0], "same content as origin")
        return Judgement(Verdict.NO_SERIAL, None, None, "none", unproven)

    if ev.remembered is not None and serial < ev.remembered:
        head = ev.changelog_head
        if proofs and not (proofs == ["changelog"] and head is not None and head < ev.remembered):
            # An authority proves the content current: the higher serial seen before came from
            # an entry that does not change the page (a role change, warehouse #12933).
            return Judgement(
                Verdict.FRESH, serial, required, proofs[0], "no content change since"
            )
        return Judgement(
            Verdict.ROLLBACK,
            serial,
            ev.remembered,
            "memory",
            "older than a serial seen before",
        )

    if proofs:
        return Judgement(Verdict.FRESH, serial, required, proofs[0], "proven")
    return Judgement(
        Verdict.UNVERIFIED,
        serial,
        ev.remembered,
        "memory" if ev.remembered is not None else "none",
        "no authority could be asked",
    )
