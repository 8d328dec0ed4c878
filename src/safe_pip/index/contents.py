"""A page without a serial judged by what it lists, against the journal's file events.

Why: most caching mirrors (Artifactory and Nexus remote repositories, proxpi, nginx caches)
pass on no serial, so a page's freshness cannot be read from it. The journal still says which
files were added, removed, yanked and unyanked within the window the guard reads; a page that
disagrees with it is a stale copy, whatever the cache in front says.

The rule that tells a *filtering* mirror (bandersnatch's platform, pre-release and latest-N
filters; Artifactory exclude patterns) from one that is merely *behind*: filters only take
files away. They never keep a file the index removed, and never change a file's yank mark. So:

* a page that still lists a file the journal removed (by ``remove file``, ``remove release``
  or ``remove project``), or marks a release's files yanked or not against the journal's
  newest yank or unyank, is stale on any mirror;
* a page that lacks files the journal added (and did not remove) is stale only on a mirror
  declared *complete* (``complete=True``: it carries every file of its upstream). On another
  mirror a missing file may be filtered on purpose, so it proves nothing either way;
* a yank mark is compared only where the page carries yank data: a complete mirror (its
  upstream has yanks), or a page that marks some file yanked.

PyPI hides a quarantined project's or release's files without a ``remove`` entry: files added
before a quarantine action are not required any more (a current page would lack them).

A page with no file event in the window is fresh by the same reasoning as a serial below the
window: a cache would have had to keep it longer than the whole window.

Pure: no network and no files. ``mirror-check`` and the guard's verdict both use
:func:`compare_listing_with_journal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from safe_pip.index.journal import FileEvent
from safe_pip.index.model import DistFile
from safe_pip.index.release import version_of

__all__ = ["ListingDisagreement", "ListingVerdict", "compare_listing_with_journal"]


@dataclass(frozen=True)
class ListingDisagreement:
    """One way a page disagrees with the journal: the file, the event's serial, and why."""

    filename: str
    serial: int
    what: str  # "missing", "removed", "yanked", "unyanked"

    def __str__(self) -> str:
        if self.what == "missing":
            return f"the page lacks {self.filename}, added at serial {self.serial}"
        if self.what == "removed":
            return f"the page still lists {self.filename}, removed at serial {self.serial}"
        if self.what == "yanked":
            return f"the page does not show {self.filename} yanked (yanked at serial {self.serial})"
        return f"the page shows {self.filename} yanked (unyanked at serial {self.serial})"


@dataclass(frozen=True)
class ListingVerdict:
    """What the journal's file events say of one page's listing.

    ``stale``: disagreements no filtering mirror can explain (or, on a complete mirror, any).
    ``unexplained``: files the journal added that the page lacks, on a mirror not declared
    complete: filtered on purpose, or behind; nothing can tell which.
    ``checked``: how many of the window's events concerned this page (0: nothing changed
    within the window, which proves the page fresh by itself).
    """

    stale: tuple[ListingDisagreement, ...]
    unexplained: tuple[ListingDisagreement, ...]
    checked: int

    @property
    def fresh(self) -> bool:
        """Proven current: no disagreement at all."""
        return not self.stale and not self.unexplained

    def worst(self) -> ListingDisagreement | None:
        """The disagreement to name: the newest event the page has not seen."""
        found = self.stale or self.unexplained
        return max(found, key=lambda d: d.serial) if found else None


def _version_key(filename: str) -> str | None:
    version = version_of(filename)
    return None if version is None else _normal(version)


def _normal(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def compare_listing_with_journal(
    files: Iterable[DistFile], events: Sequence[FileEvent], *, complete: bool
) -> ListingVerdict:
    """Judge a page's files against its project's file events in the journal window.

    ``files`` are what the page lists, ``events`` the project's :class:`FileEvent` list,
    oldest first, every event of the window (a partial list proves nothing), and ``complete``
    whether the index is declared to carry every file of the journal's index (no filters).
    See the module docstring for the rule.
    """
    listed = {f.filename: f for f in files}
    # What the window says each file should be: (listed?, serial of the deciding event).
    expected: dict[str, tuple[bool, int]] = {}
    release_removed: dict[str, int] = {}  # version -> serial of its removal
    project_removed: int | None = None
    yank: dict[str, tuple[bool, int]] = {}  # version -> (yanked?, serial)
    added_after: dict[str, int] = {}
    for event in events:
        if event.kind == "add":
            expected[event.target] = (True, event.serial)
            added_after[event.target] = event.serial
        elif event.kind == "remove":
            expected[event.target] = (False, event.serial)
        elif event.kind == "remove-release":
            version = _normal(event.target)
            release_removed[version] = event.serial
            for name, (present, _) in list(expected.items()):
                if present and _version_key(name) == version:
                    expected[name] = (False, event.serial)
        elif event.kind == "quarantine":
            # Quarantined files leave the page without a journal entry of their own: what was
            # added before can no longer be required (a current page would be refused).
            expected = {name: state for name, state in expected.items() if not state[0]}
        elif event.kind == "remove-project":
            project_removed = event.serial
            for name, (present, _) in list(expected.items()):
                if present:
                    expected[name] = (False, event.serial)
        else:
            yank[_normal(event.target)] = (event.kind == "yank", event.serial)

    stale: list[ListingDisagreement] = []
    unexplained: list[ListingDisagreement] = []
    for name, (present, serial) in expected.items():
        if present and name not in listed:
            (stale if complete else unexplained).append(
                ListingDisagreement(name, serial, "missing")
            )
    carries_yanks = complete or any(f.yanked for f in listed.values())
    for name, dist in listed.items():
        added = added_after.get(name, 0)
        key = _version_key(name)
        gone = expected.get(name)
        if gone is not None and not gone[0]:
            stale.append(ListingDisagreement(name, gone[1], "removed"))
            continue
        if project_removed is not None and project_removed > added:
            stale.append(ListingDisagreement(name, project_removed, "removed"))
            continue
        if key is not None and release_removed.get(key, 0) > added:
            stale.append(ListingDisagreement(name, release_removed[key], "removed"))
            continue
        mark = yank.get(key) if key is not None else None
        if mark is not None and carries_yanks and mark[0] != dist.yanked:
            stale.append(ListingDisagreement(name, mark[1], "yanked" if mark[0] else "unyanked"))
    return ListingVerdict(tuple(stale), tuple(unexplained), len(events))
