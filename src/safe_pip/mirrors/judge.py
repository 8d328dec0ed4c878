"""Judging one mirror page against what the index's journal says of its project (pure).

The rule is the guard's: a page is behind only when the journal has a *content-changing*
entry (a file added or removed, a yank, a release or the project removed) newer than the
page's serial. Role, invite and team entries raise a project's serial without changing its
page (warehouse #12933); a mirror that waits for them is wedged (bandersnatch #1416, #1434),
so a mirror is never reported for them. A page without a serial is judged by what it lists
against the journal's file events, by the guard's content rule (:func:`judge_by_content`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.utils import (
    canonicalize_version,
)

from safe_pip.index.contents import compare_listing_with_journal
from safe_pip.index.journal import ChangelogEntry, file_event_of, is_content_change
from safe_pip.index.model import DistFile
from safe_pip.index.release import version_of
from safe_pip.report.mirror import MirrorFinding, MirrorKind

__all__ = ["Seen", "Upstream", "judge", "judge_by_content"]


@dataclass(frozen=True)
class Seen:
    """What the mirror answered for one project."""

    status: Literal["page", "missing", "failed"]
    serial: int | None = None  # the page's serial, where it carries one
    #: file name -> yanked, as the mirror's page lists them
    files: Mapping[str, bool] = field(default_factory=dict)
    reason: str = ""  # why it failed


@dataclass(frozen=True)
class Upstream:
    """What the index says of one project: its journal entries in ``(low, head]``, oldest
    first, and its last serial from ``list_packages_with_serial`` where that was asked."""

    low: int
    head: int
    entries: Sequence[ChangelogEntry] = ()
    listed: int | None = None

    @property
    def content(self) -> int | None:
        """The newest content-changing serial in the window."""
        serials = [e.serial for e in self.entries if is_content_change(e.action)]
        return max(serials) if serials else None

    @property
    def last(self) -> int | None:
        """The project's newest serial known (any entry, roles too)."""
        known = [e.serial for e in self.entries]
        if self.listed is not None:
            known.append(self.listed)
        return max(known) if known else None

    @property
    def removed(self) -> bool:
        """Whether the newest content change is ``remove project`` (a 404 is then right)."""
        content = [e for e in self.entries if is_content_change(e.action)]
        return bool(content) and content[-1].action.strip().lower() == "remove project"


def judge(
    project: str, seen: Seen, upstream: Upstream, *, complete: bool = False
) -> MirrorFinding | None:
    """The finding for one project, or None when the mirror is right about it.

    ``complete``: the mirror is declared to carry every file of the index (no filters); it
    matters only for pages without a serial (see :func:`judge_by_content`)."""
    content, last = upstream.content, upstream.last
    if seen.status == "failed":
        return MirrorFinding(project, MirrorKind.FAILED, seen.reason)
    if seen.status == "missing":
        if upstream.removed or (content is None and last is None):
            return None
        return MirrorFinding(
            project,
            MirrorKind.MISSING,
            f"the mirror answers 404; the index has it (serial {last})",
            index_serial=last,
        )
    if seen.serial is None:
        return judge_by_content(project, seen, upstream, complete=complete)
    serial = seen.serial
    if content is not None and serial < content:
        lacks, still, yanks = _differences(serial, seen.files, upstream.entries)
        what = "the index removed the project" if upstream.removed else ""
        what = "; ".join(x for x in (what, *yanks) if x)
        return MirrorFinding(
            project,
            MirrorKind.BEHIND,
            f"mirror serial {serial}, index {content}" + (f"; {what}" if what else ""),
            mirror_serial=serial,
            index_serial=content,
            lacks=lacks,
            still_lists=still,
        )
    if last is not None and serial > last or serial > upstream.head:
        newest = last if last is not None else upstream.head
        return MirrorFinding(
            project,
            MirrorKind.AHEAD,
            f"mirror serial {serial}, index {newest}: the changelog, read to serial "
            f"{upstream.head}, has nothing newer for the project (the index rolled back, or "
            "the mirror follows another index)",
            mirror_serial=serial,
            index_serial=newest,
        )
    if content is None and last is not None and serial < last and serial < upstream.low:
        return MirrorFinding(
            project,
            MirrorKind.UNVERIFIABLE,
            f"mirror serial {serial}, index {last}: the journal before serial "
            f"{upstream.low} was not read, so whether a content change or only role entries "
            "lie between is unknown",
            mirror_serial=serial,
            index_serial=last,
        )
    return None


def judge_by_content(
    project: str, seen: Seen, upstream: Upstream, *, complete: bool
) -> MirrorFinding | None:
    """A page without a serial (Artifactory, Nexus, proxpi, pypiserver, a static mirror),
    judged by what it lists against the project's file events in the journal window, by the
    guard's rule (:func:`~safe_pip.index.contents.compare_listing_with_journal`).

    ``behind`` when the page still lists a file the journal removed, shows a yank mark the
    journal has since changed, or (on a mirror declared ``complete``) lacks a file the journal
    added; ``unverifiable`` when its only disagreement is a lacking file on a mirror not
    declared complete (a filter and a lag look the same); None when it agrees with every
    event, or the window has none for the project (a cache would have kept it longer than
    the whole window).
    """
    events = [e for entry in upstream.entries if (e := file_event_of(entry)) is not None]
    listing = [DistFile(name, "", yanked=yanked) for name, yanked in seen.files.items()]
    verdict = compare_listing_with_journal(listing, events, complete=complete)
    if verdict.stale:
        newest = max(d.serial for d in verdict.stale)
        marks = [str(d) for d in verdict.stale if d.what in ("yanked", "unyanked")]
        what = f"mirror serial none, index {newest} by the changelog's file events"
        return MirrorFinding(
            project,
            MirrorKind.BEHIND,
            "; ".join([what, *marks]),
            index_serial=newest,
            lacks=tuple(sorted(d.filename for d in verdict.stale if d.what == "missing")),
            still_lists=tuple(sorted(d.filename for d in verdict.stale if d.what == "removed")),
        )
    if verdict.unexplained:
        newest = max(d.serial for d in verdict.unexplained)
        return MirrorFinding(
            project,
            MirrorKind.UNVERIFIABLE,
            "no serial on the mirror's page, and it lacks files the index added (up to serial "
            f"{newest}): filtered by the mirror or behind, which its content cannot tell "
            "(--complete-mirror declares that it filters nothing)",
            index_serial=newest,
            lacks=tuple(sorted(d.filename for d in verdict.unexplained)),
        )
    return None


def _differences(
    serial: int, files: Mapping[str, bool], entries: Sequence[ChangelogEntry]
) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """The files the page lacks and still lists, and the yanks it misses, by the journal's
    content entries after ``serial`` (later entries win)."""
    present: dict[str, bool] = {}  # file name -> whether the index lists it after the entries
    removed_versions: set[str] = set()
    gone = False
    yanked: dict[str, tuple[str, bool]] = {}  # canonical -> (as written, yanked after them)
    for entry in entries:
        if entry.serial <= serial:
            continue
        action = entry.action.strip()
        lowered = action.lower()
        version = canonicalize_version(entry.version) if entry.version else None
        if lowered.startswith("add ") and " file " in lowered and is_content_change(action):
            present[action.split(" file ", 1)[1].strip()] = True
        elif lowered.startswith("remove file "):
            present[action[len("remove file ") :].strip()] = False
        elif lowered == "remove release" and version:
            removed_versions.add(version)
            for filename in present:
                if (found := version_of(filename)) and canonicalize_version(found) == version:
                    present[filename] = False
        elif lowered in ("yank release", "unyank release") and version and entry.version:
            yanked[version] = (entry.version, lowered == "yank release")
        elif lowered == "remove project":
            gone = True
            present = dict.fromkeys(present, False)
    lacks = tuple(sorted(f for f, there in present.items() if there and f not in files))
    still = []
    for filename in files:
        version = version_of(filename)
        key = canonicalize_version(version) if version else None
        listed = present.get(filename)
        if listed is False or (listed is None and (gone or key in removed_versions)):
            still.append(filename)
    yanks = []
    for version, (written, now) in sorted(yanked.items()):
        shown = [
            y
            for f, y in files.items()
            if (v := version_of(f)) and canonicalize_version(v) == version
        ]
        if shown and any(y != now for y in shown):
            state = "yanked" if now else "not yanked"
            yanks.append(f"release {written} is {state} on the index")
    return lacks, tuple(sorted(still)), yanks
