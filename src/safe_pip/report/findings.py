"""What ``safe-pip check`` finds: the finding kinds and the result of one check.

Kept apart from the check itself so that every output format (``report.formats``) renders the
same model, and the JSON shape stays stable whatever the check learns to do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Kind(str, enum.Enum):
    """A kind of finding; the value is what the reports show (and the SARIF rule id)."""

    MISSING = "missing"
    HASH_MISMATCH = "hash-mismatch"
    YANKED = "yanked"
    UNPINNED = "unpinned"
    CHANGED = "changed"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    QUARANTINED = "quarantined"

    def __str__(self) -> str:
        return self.value

    @property
    def summary(self) -> str:
        return _SUMMARIES[self]

    @property
    def level(self) -> str:
        """``error`` or ``warning``: its SARIF level, and whether it fails the check by
        default (``check --fail-on`` chooses otherwise)."""
        return "warning" if self in _WARNINGS else "error"


_SUMMARIES = {
    Kind.MISSING: "The pinned version is not on the index (checked on a view proven fresh).",
    Kind.HASH_MISMATCH: "A hash given for the pin matches no file the index lists for it.",
    Kind.YANKED: "The pinned release or file is yanked on the index (PEP 592).",
    Kind.UNPINNED: "The requirement is not pinned to one exact version with ==.",
    Kind.CHANGED: "The lock's file URL, size or upload time no longer matches the index.",
    Kind.ARCHIVED: "The project is archived on the index (PEP 792): no further fixes will come.",
    Kind.DEPRECATED: "The project is deprecated on the index (PEP 792), maybe superseded.",
    Kind.QUARANTINED: "The project is quarantined on the index (PEP 792): under review, "
    "e.g. for malware; the index serves none of its files.",
}
#: Kinds that do not mean "this pin cannot be installed as written" (or must not be).
_WARNINGS = {Kind.YANKED, Kind.UNPINNED, Kind.ARCHIVED, Kind.DEPRECATED}
#: What sets exit 1 unless ``check --fail-on`` says otherwise: every error-level kind, and
#: yanked and unpinned, which failed the check before the choice existed (a CI job that
#: relied on that keeps failing); the project-status warnings do not.
DEFAULT_FAIL_ON = frozenset(Kind) - {Kind.ARCHIVED, Kind.DEPRECATED}


@dataclass(frozen=True)
class Finding:
    """One problem with one pin, where it is written (``line`` is None when unknown)."""

    kind: Kind
    project: str
    version: str | None
    file: str
    line: int | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {
            "project": self.project,
            "version": self.version,
            "kind": self.kind.value,
            "level": self.kind.level,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }


@dataclass
class CheckResult:
    """Everything a report shows: the files read, the findings, and per index the serials."""

    files: list[str]
    pins: int
    findings: list[Finding] = field(default_factory=list)
    #: index URL (credentials removed) -> {project: serial of the page checked, or None}
    serials: dict[str, dict[str, int | None]] = field(default_factory=dict)
    #: locked packages not from an index (git, paths, URLs, editables), so not checked
    skipped: int = 0

    def sorted_findings(self) -> list[Finding]:
        return sorted(
            self.findings,
            key=lambda f: (f.file, f.line or 0, f.project, f.kind.value, f.message),
        )
