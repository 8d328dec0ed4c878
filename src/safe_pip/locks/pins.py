"""Pins: what ``safe-pip check`` checks, read from requirements files (and by ``locks.pylock``,
``locks.uvlock``, ``locks.poetrylock`` and ``locks.pdmlock`` from lock files).

A pin is one distribution the user expects the index to serve exactly: a project, a version
(``None`` when the requirement is not pinned with ``==``), where it is written, and what the
user recorded about its files (``--hash`` values; a lock's file names, URLs, sizes and upload
times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from safe_pip.pip.requirements import ReqLine


@dataclass(frozen=True)
class LockedFile:
    """One file of a lock entry (PEP 751 ``packages[].wheels[]`` or ``packages[].sdist``)."""

    filename: str
    url: str | None
    hashes: dict[str, str]
    size: int | None
    upload_time: str | None  # as written in the lock (TOML datetime rendered ISO 8601)
    line: int | None = None


@dataclass(frozen=True)
class LockPins:
    """What one lock file gives ``safe-pip check``."""

    kind: str  # "pylock", "uv", "poetry" or "pdm"
    pins: list[Pin]
    skipped: int  # packages not from an index (git, paths, URLs, editables, the project)
    #: indexes to look at besides pip's own for pins without an index (PDM's sources)
    extra_indexes: tuple[str, ...] = ()
    #: find-links locations the lock's tool also reads (PDM's find_links sources)
    find_links: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pin:
    """One pinned (or not quite pinned) distribution, and where it is written."""

    project: str  # canonical name (PEP 503)
    version: str | None  # the exact version; None when not pinned
    file: str
    line: int | None
    source: Literal["requirements", "pylock", "uv", "poetry", "pdm"]
    requested: str = ""  # the requirement as written, for messages
    hashes: tuple[str, ...] = ()  # "algo:hexdigest" from --hash
    files: tuple[LockedFile, ...] = ()
    index: str | None = None  # the lock's index for it (pylock packages[].index, uv's source)
    constraint: bool = False


def exact_version(requirement: Requirement) -> str | None:
    """The version a requirement pins exactly (``==X`` without a wildcard, or ``===X``)."""
    specs = list(requirement.specifier)
    if len(specs) != 1:
        return None
    spec = specs[0]
    if spec.operator == "===":
        return spec.version
    if spec.operator == "==" and not spec.version.endswith(".*"):
        return spec.version
    return None


def same_version(a: str, b: str) -> bool:
    """PEP 440 equality (``1.0 == 1.0.0``), falling back to text for legacy versions."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def pins_from_requirements(lines: list[ReqLine]) -> list[Pin]:
    """The pins of the requirement lines of one or more requirements files (with includes).

    Direct references (``name @ url``, paths, URLs) and editables are not looked up on an
    index, so they are not pins. A constraint that pins ``==`` is checked like a requirement
    (pip would install exactly that), and a requirement left open is not ``unpinned`` when a
    constraint pins it. Markers are not evaluated: a lock names pins for every platform, and
    each must be installable on its own.
    """
    pinned_by_constraint = {
        canonicalize_name(line.requirement.name)
        for line in lines
        if line.constraint
        and line.kind == "requirement"
        and line.requirement is not None
        and exact_version(line.requirement) is not None
    }
    pins: list[Pin] = []
    for line in lines:
        if line.kind != "requirement" or line.requirement is None:
            continue
        req = line.requirement
        name = canonicalize_name(req.name)
        version = exact_version(req)
        if version is None and (line.constraint or name in pinned_by_constraint):
            continue  # an open constraint pins nothing; a constraint pins this requirement
        pins.append(
            Pin(
                project=name,
                version=version,
                file=line.path,
                line=line.line,
                source="requirements",
                requested=str(req),
                hashes=line.hashes,
                constraint=line.constraint,
            )
        )
    return pins
