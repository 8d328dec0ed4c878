"""What ``safe-pip mirror-check`` finds, and its formats: text for people, JSON for scripts,
names for the mirror's own resync (``bandersnatch sync NAME …``).

The JSON keys follow ``check``'s (``version``, ``tool``, ``findings`` each with ``project``
and ``kind``) so one script can read both; ``version`` changes if the keys do.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

from safe_pip import __version__
from safe_pip.index.names import brief_list

__all__ = ["MirrorFinding", "MirrorFormat", "MirrorKind", "MirrorResult", "Refreshed"]


class MirrorKind(str, enum.Enum):
    """A kind of mirror finding; the value is what the reports show."""

    MISSING = "missing"  # the index has the project, the mirror answers 404
    BEHIND = "behind"  # the mirror's page misses a content change the changelog has
    AHEAD = "ahead"  # the mirror's serial is past the index's own for the project
    #: a page without a serial whose only disagreement is a lacking file on a mirror not
    #: declared complete (filtered or behind), or a journal read too short to tell
    UNVERIFIABLE = "unverifiable"
    FAILED = "failed"  # the mirror's page could not be fetched or read

    def __str__(self) -> str:
        return self.value

    @property
    def wrong(self) -> bool:
        """Whether the mirror is shown wrong (exit 1); ``unverifiable`` is only not proven
        right, as the guard's UNVERIFIED: a warning, a finding under ``--strict``."""
        return self is not MirrorKind.UNVERIFIABLE


@dataclass(frozen=True)
class MirrorFinding:
    """One project the mirror got wrong (or that could not be judged), and what it lacks."""

    project: str
    kind: MirrorKind
    message: str
    mirror_serial: int | None = None
    index_serial: int | None = None
    #: files the index has (added after the mirror's serial) and the mirror's page does not
    lacks: tuple[str, ...] = ()
    #: files the index removed after the mirror's serial and the mirror's page still lists
    still_lists: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "kind": self.kind.value,
            "message": self.message,
            "mirror_serial": self.mirror_serial,
            "index_serial": self.index_serial,
            "lacks": list(self.lacks),
            "still_lists": list(self.still_lists),
        }


@dataclass(frozen=True)
class Refreshed:
    """One project the mirror was asked to refetch (devpi), and how it stood after."""

    project: str
    before: MirrorKind
    after: MirrorFinding | None  # None: the mirror is right about it now

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "before": self.before.value,
            "fixed": self.after is None,
            "after": None if self.after is None else self.after.kind.value,
        }


@dataclass
class MirrorResult:
    """One mirror check: which window of the journal, how many pages, what was found."""

    mirror: str  # credentials removed
    changelog: str  # credentials removed
    selection: str  # "window", "since" or "all"
    low: int  # every journal entry after it was read
    head: int  # the index's global serial when the journal was read
    projects: int = 0  # pages checked
    seconds: float = 0.0
    findings: list[MirrorFinding] = field(default_factory=list)
    refreshed: list[Refreshed] = field(default_factory=list)

    def sorted_findings(self) -> list[MirrorFinding]:
        return sorted(self.findings, key=lambda f: (f.project, f.kind.value))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((k.value for k in MirrorKind), 0)
        for finding in self.findings:
            counts[finding.kind.value] += 1
        return counts



def finding_line(finding: MirrorFinding) -> str:
    """``PROJECT: KIND: MESSAGE; lacks …; still lists …`` (one line)."""
    line = f"{finding.project}: {finding.kind}: {finding.message}"
    if finding.lacks:
        line += f"; lacks {brief_list(finding.lacks)}"
    if finding.still_lists:
        line += f"; still lists {brief_list(finding.still_lists)}"
    return line


class MirrorFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    NAMES = "names"

    def __str__(self) -> str:
        return self.value

    def render(self, result: MirrorResult) -> str:
        if self is MirrorFormat.JSON:
            return _json(result)
        if self is MirrorFormat.NAMES:
            # What the mirror should fetch again: never the unverifiable ones (not shown wrong).
            names = dict.fromkeys(f.project for f in result.sorted_findings() if f.kind.wrong)
            return "".join(name + "\n" for name in names)
        lines = [finding_line(f) for f in result.sorted_findings()]
        lines += [
            f"{r.project}: refreshed: was {r.before}, "
            + ("now right" if r.after is None else f"still {r.after.kind}")
            for r in sorted(result.refreshed, key=lambda r: r.project)
        ]
        return "".join(line + "\n" for line in lines)


def _json(result: MirrorResult) -> str:
    document = {
        "version": 1,
        "tool": f"safe-pip {__version__}",
        "mirror": result.mirror,
        "changelog": result.changelog,
        "selection": result.selection,
        "journal": {"low": result.low, "head": result.head},
        "projects": result.projects,
        "seconds": round(result.seconds, 3),
        "counts": result.counts(),
        "findings": [f.as_dict() for f in result.sorted_findings()],
        "refreshed": [r.as_dict() for r in sorted(result.refreshed, key=lambda r: r.project)],
    }
    return json.dumps(document, indent=2) + "\n"


def summary_line(result: MirrorResult) -> str:
    """``checked N projects on MIRROR in S s (journal LOW..HEAD): …`` for stderr."""
    counts = {k: v for k, v in result.counts().items() if v}
    found = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no findings"
    fixed = sum(1 for r in result.refreshed if r.after is None)
    refreshed = f"; refreshed {len(result.refreshed)}, fixed {fixed}" if result.refreshed else ""
    return (
        f"checked {result.projects} projects on {result.mirror} in {result.seconds:.1f} s "
        f"(journal serials {result.low}..{result.head}): {found}{refreshed}"
    )
