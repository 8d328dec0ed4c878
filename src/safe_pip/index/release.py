"""One release as the journal and the pages show it: which files it has, and whether a copy of
the project's page shows all of them. Pure: ``safe-pip wait`` does the fetching
(:mod:`safe_pip.guard.propagation`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from safe_pip.index.journal import ChangelogEntry
from safe_pip.index.model import DistFile, ProjectPage

__all__ = ["JournalRelease", "release_files", "release_in_journal", "release_of", "same_version"]

_ADD_FILE = re.compile(r"add (?!owner |maintainer )\S+ file (\S.*)", re.IGNORECASE)
_REMOVE_FILE = re.compile(r"remove file (\S.*)", re.IGNORECASE)


def same_version(a: str, b: str) -> bool:
    """Two version strings name one version (PEP 440: ``1.0`` is ``1.0.0``)."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def release_of(filename: str) -> tuple[str, str] | None:
    """(canonical project, version) of a wheel or sdist file name; None for other names (pip
    skips file names it cannot parse)."""
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return str(name), str(version)


def version_of(filename: str) -> str | None:
    """The version of a wheel or sdist file name; None for other names."""
    release = release_of(filename)
    return release[1] if release else None


@dataclass(frozen=True)
class JournalRelease:
    """What the journal says one release has: its live files, and the serial a page must
    carry to list them all (the newest entry that changed the release's files)."""

    project: str  # canonical
    version: str
    files: tuple[str, ...]
    serial: int
    #: "remove release" or "remove project" came after the uploads: there is nothing to wait for.
    removed: bool = False


def release_in_journal(
    entries: Iterable[ChangelogEntry], project: str, version: str
) -> JournalRelease | None:
    """The release's files as ``entries`` (oldest first) add and remove them; None when no
    entry uploads a file of it. Entries are the journal's ``add <pyver> file <name>``,
    ``remove file <name>``, ``remove release`` and ``remove project``, as the index writes
    them."""
    key = canonicalize_name(project)
    files: dict[str, None] = {}
    serial = 0
    removed = False
    uploaded = False
    for entry in entries:
        if entry.name != key:
            continue
        action = entry.action.strip()
        if action.lower() == "remove project":
            files.clear()
            removed, serial = True, entry.serial
            continue
        if entry.version is None or not same_version(entry.version, version):
            continue
        added = _ADD_FILE.fullmatch(action)
        dropped = _REMOVE_FILE.fullmatch(action)
        if added:
            files[added.group(1).strip()] = None
            uploaded, removed, serial = True, False, entry.serial
        elif dropped:
            files.pop(dropped.group(1).strip(), None)
            serial = entry.serial
        elif action.lower() == "remove release":
            files.clear()
            removed, serial = True, entry.serial
    if not uploaded:
        return None
    return JournalRelease(key, version, tuple(files), serial, removed or not files)


def release_files(page: ProjectPage, project: str, version: str) -> dict[str, DistFile]:
    """The files ``page`` lists of one release, by file name."""
    key = canonicalize_name(project)
    found = {}
    for dist in page.files:
        release = release_of(dist.filename)
        if release is not None and release[0] == key and same_version(release[1], version):
            found[dist.filename] = dist
    return found
