"""The state of the simulated index: projects, releases, files and the journal.

:class:`IndexState` keeps what a real index keeps and changes it as the real one does:
every change appends a :class:`JournalEntry` whose id is the next serial, with the real
index's action string, and raises the project's ``last_serial``. Content changes (not role
changes) are announced to purge listeners, the way the real index purges its CDN.
:class:`~._origin.Origin` serves this state over HTTP.
"""

from __future__ import annotations

import hashlib
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, NamedTuple

from packaging.utils import canonicalize_name
from packaging.version import Version

from ._profiles import PYPI, Profile, profile_named
from ._wheels import build_wheel, metadata_of


class JournalEntry(NamedTuple):
    """One changelog row, in the order and types ``changelog_since_serial`` returns them."""

    name: str  # display name, as the real changelog gives it
    version: str | None  # None for project-level entries (create, remove project, roles)
    timestamp: int
    action: str
    serial: int


@dataclass
class File:
    """A wheel on the file host, and its PEP 658 metadata file."""

    filename: str
    data: bytes
    metadata: bytes
    sha256: str
    metadata_sha256: str
    requires_python: str | None
    upload_time: datetime  # naive UTC, as the real index stores it
    available_at: float  # time.monotonic() from which the file host serves it
    with_metadata: bool

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def url_path(self) -> str:
        return f"/packages/{self.sha256[:2]}/{self.sha256[2:16]}/{self.filename}"


@dataclass
class Release:
    version: str
    files: dict[str, File] = field(default_factory=dict)
    yanked: bool = False
    yanked_reason: str = ""
    quarantined: bool = False  # its files are off the page and the file host, not yanked


@dataclass
class Project:
    """A project: its releases by version, each with its files by name."""

    name: str  # display name from the first upload
    releases: dict[str, Release] = field(default_factory=dict)
    status: str = "active"  # PEP 792; a quarantined project's page lists no files
    status_reason: str = ""


def _with_zip_comment(data: bytes, comment: bytes) -> bytes:
    """A zip archive written without a comment, given one: the end-of-central-directory
    record is its last 22 bytes and ends with the comment's length."""
    if len(comment) > 0xFFFF or data[-22:-18] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        raise ValueError("not a zip archive without a comment")
    return data[:-2] + len(comment).to_bytes(2, "little") + comment


def _to_naive_utc(moment: datetime | float) -> datetime:
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


class IndexState:
    """Projects, releases, files and the append-only journal of one index (thread-safe).

    Mutating methods write journal entries with the real index's action strings and return
    the last serial written. ``profile`` decides whether new files get a PEP 658 metadata
    file unless told. ``clock`` (seconds since the epoch) stamps journal entries and default
    upload times: a test sets one to publish at chosen moments instead of sleeping.
    """

    def __init__(self, profile: Profile | str = PYPI) -> None:
        self.profile = profile_named(profile)
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._projects: dict[str, Project] = {}
        self._journal: list[JournalEntry] = []
        self._project_serials: dict[str, int] = {}
        self._content_serials: dict[str, int] = {}
        self._files: dict[str, File] = {}  # live files by file name
        self._used_filenames: set[str] = set()
        self._listeners: list[Callable[[str], None]] = []

    # ----------------------------------------------------------------- listeners

    def add_purge_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(normalized_project_name)`` after every content change."""
        with self._lock:
            self._listeners.append(callback)

    def remove_purge_listener(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self, key: str) -> None:
        # Called after the state changed and outside the lock, so a listener that looks
        # at the time it is called sees a moment at or after the change.
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback(key)

    # ----------------------------------------------------------------- journal

    def _write(self, key: str, version: str | None, action: str, *, content: bool) -> int:
        serial = len(self._journal) + 1
        name = self._projects[key].name
        self._journal.append(JournalEntry(name, version, int(self.clock()), action, serial))
        self._project_serials[key] = serial
        if content:
            self._content_serials[key] = serial
        return serial

    def _project(self, name: str) -> tuple[str, Project]:
        key = canonicalize_name(name)
        project = self._projects.get(key)
        if project is None:
            raise KeyError(f"no project {name!r} on the index")
        return key, project

    def _release(self, name: str, version: str) -> tuple[str, Project, Release]:
        key, project = self._project(name)
        release = project.releases.get(version)
        if release is None:
            raise KeyError(f"no release {name} {version} on the index")
        return key, project, release

    # ----------------------------------------------------------------- operations

    def publish(
        self,
        name: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
        upload_time: datetime | float | None = None,
        file_delay: float = 0.0,
        with_metadata: bool | None = None,
        payload_size: int = 0,
    ) -> int:
        """Upload a wheel of ``name`` ``version``; return the serial of the last entry.

        Writes ``create`` (first upload of the project), ``new release`` and
        ``add py3 file <filename>``. ``upload_time`` (datetime, naive meaning UTC, or epoch
        seconds) defaults to now; it is the PEP 700 ``upload-time`` on the page.
        ``file_delay``: the file host answers 404 for the file (and its ``.metadata``) for
        that many seconds, as when a page lists a file before the file host has it.
        ``with_metadata``: serve a PEP 658 metadata file for it (default: as the profile does).
        A file name is never accepted twice, even after removal (as on the real index).
        """
        Version(version)  # raises InvalidVersion (a ValueError) as the index would refuse
        filename, data = build_wheel(
            name,
            version,
            requires=tuple(requires),
            requires_python=requires_python,
            payload_size=payload_size,
        )
        metadata = metadata_of(data)
        key = canonicalize_name(name)
        with self._lock:
            if filename in self._used_filenames:
                raise ValueError(f"file name {filename} was already used on this index")
            if key not in self._projects:
                self._projects[key] = Project(name)
                self._write(key, None, "create", content=True)
            project = self._projects[key]
            release = project.releases.get(version)
            if release is None:
                release = project.releases[version] = Release(version)
                self._write(key, version, "new release", content=True)
            file = File(
                filename=filename,
                data=data,
                metadata=metadata,
                sha256=hashlib.sha256(data).hexdigest(),
                metadata_sha256=hashlib.sha256(metadata).hexdigest(),
                requires_python=requires_python,
                upload_time=_to_naive_utc(self.clock() if upload_time is None else upload_time),
                available_at=time.monotonic() + file_delay,
                with_metadata=(
                    self.profile.metadata_files if with_metadata is None else with_metadata
                ),
            )
            release.files[filename] = file
            self._files[filename] = file
            self._used_filenames.add(filename)
            serial = self._write(key, version, f"add py3 file {filename}", content=True)
        self._notify(key)
        return serial

    def add_wheels(self, name: str, version: str, tags: Iterable[str]) -> int:
        """List more wheels of a published release, one per wheel tag; return the last serial.

        A tag is ``python-abi-platform`` (``"cp312-cp312-manylinux_2_17_x86_64"``). Real
        pages list a wheel per platform and Python; building each would make a page of
        thousands of files slow to publish. Each added wheel is instead the release's first
        wheel with a zip comment of its own (a valid wheel with its own hash, installable if
        a client picks it) and shares that wheel's metadata file. Writes one
        ``add <python tag> file <filename>`` entry per wheel and purges once.
        """
        key = canonicalize_name(name)
        with self._lock:
            _, _, release = self._release(name, version)
            if not release.files:
                raise KeyError(f"release {name} {version} has no file to copy")
            base = next(iter(release.files.values()))
            prefix = base.filename.rsplit("-", 3)[0]  # "<name>-<version>"
            serial = self.project_serial(name)
            for tag in tags:
                filename = f"{prefix}-{tag}.whl"
                if filename in self._used_filenames:
                    raise ValueError(f"file name {filename} was already used on this index")
                data = _with_zip_comment(base.data, filename.encode("utf-8"))
                file = File(
                    filename=filename,
                    data=data,
                    metadata=base.metadata,
                    sha256=hashlib.sha256(data).hexdigest(),
                    metadata_sha256=base.metadata_sha256,
                    requires_python=base.requires_python,
                    upload_time=base.upload_time,
                    available_at=base.available_at,
                    with_metadata=base.with_metadata,
                )
                release.files[filename] = file
                self._files[filename] = file
                self._used_filenames.add(filename)
                action = f"add {tag.split('-', 1)[0]} file {filename}"
                serial = self._write(key, version, action, content=True)
        self._notify(key)
        return serial

    def yank(self, name: str, version: str, reason: str = "") -> int:
        """Yank a release (PEP 592); writes ``yank release``."""
        with self._lock:
            key, _, release = self._release(name, version)
            release.yanked, release.yanked_reason = True, reason
            serial = self._write(key, version, "yank release", content=True)
        self._notify(key)
        return serial

    def unyank(self, name: str, version: str) -> int:
        """Undo a yank; writes ``unyank release``."""
        with self._lock:
            key, _, release = self._release(name, version)
            release.yanked, release.yanked_reason = False, ""
            serial = self._write(key, version, "unyank release", content=True)
        self._notify(key)
        return serial

    def remove_file(self, name: str, filename: str) -> int:
        """Delete one file (the release stays); writes ``remove file <filename>``."""
        with self._lock:
            key, project = self._project(name)
            for release in project.releases.values():
                if filename in release.files:
                    del release.files[filename]
                    self._files.pop(filename, None)
                    serial = self._write(
                        key, release.version, f"remove file {filename}", content=True
                    )
                    break
            else:
                raise KeyError(f"no file {filename} in project {name!r}")
        self._notify(key)
        return serial

    def remove_release(self, name: str, version: str) -> int:
        """Delete a release and its files; writes ``remove release``."""
        with self._lock:
            key, project, release = self._release(name, version)
            for filename in release.files:
                self._files.pop(filename, None)
            del project.releases[version]
            serial = self._write(key, version, "remove release", content=True)
        self._notify(key)
        return serial

    def remove_project(self, name: str) -> int:
        """Delete a project; its page answers 404. Writes ``remove project``."""
        with self._lock:
            key, project = self._project(name)
            for release in project.releases.values():
                for filename in release.files:
                    self._files.pop(filename, None)
            serial = self._write(key, None, "remove project", content=True)
            del self._projects[key]
        self._notify(key)
        return serial

    def set_status(self, name: str, status: str, reason: str = "") -> int:
        """Mark the project with a PEP 792 status (``active``, ``archived``, ``quarantined``,
        ``deprecated``); writes ``<status> project``. A status changes what the page says but
        not which files an installer may pick (files hidden by a quarantine aside), so the
        entry is not a content change; the page is purged all the same."""
        with self._lock:
            key, project = self._project(name)
            project.status, project.status_reason = status, reason
            for release in project.releases.values():
                for filename, file in release.files.items():
                    if status == "quarantined":
                        self._files.pop(filename, None)
                    elif not release.quarantined:
                        self._files[filename] = file
            serial = self._write(key, None, f"{status} project", content=False)
        self._notify(key)
        return serial

    def quarantine_release(self, name: str, version: str) -> int:
        """Quarantine one release, as PyPI does: its files leave the page and the file host
        without a yank or a removal, and the release stays in the page's PEP 700 ``versions``.
        Writes ``quarantine release``, not a content change (no file entry is written)."""
        with self._lock:
            key, _, release = self._release(name, version)
            release.quarantined = True
            for filename in release.files:
                self._files.pop(filename, None)
            serial = self._write(key, version, "quarantine release", content=False)
        self._notify(key)
        return serial

    def role_change(self, name: str, user: str = "someone") -> int:
        """Add an owner; writes ``add Owner <user>``.

        Like the real index, this raises the project's ``last_serial`` but changes nothing
        on its page and purges nothing, so cached pages stay one serial behind the journal.
        """
        with self._lock:
            key, _ = self._project(name)
            return self._write(key, None, f"add Owner {user}", content=False)

    # ----------------------------------------------------------------- read access

    @property
    def last_serial(self) -> int:
        """The global serial: the highest journal id."""
        with self._lock:
            return len(self._journal)

    @property
    def journal(self) -> list[JournalEntry]:
        """A copy of the whole journal, in serial order."""
        with self._lock:
            return list(self._journal)

    def project_serial(self, name: str) -> int:
        """The project's ``last_serial``: its highest journal id, of any action kind."""
        with self._lock:
            return self._project_serials[canonicalize_name(name)]

    def content_serial(self, name: str) -> int:
        """The project's highest journal id of a content-changing entry (not roles)."""
        with self._lock:
            return self._content_serials[canonicalize_name(name)]

    def file_bytes(self, filename: str) -> bytes:
        """The bytes of a live file (e.g. to install it directly in a test)."""
        with self._lock:
            return self._files[filename].data

    def _live_file(self, filename: str) -> File | None:
        with self._lock:
            return self._files.get(filename)

    def _snapshot(self, name: str) -> tuple[Project, int] | None:
        """A copy of the project and its ``last_serial``, to render outside the lock."""
        key = canonicalize_name(name)
        with self._lock:
            project = self._projects.get(key)
            if project is None:
                return None
            releases = {v: replace(r, files=dict(r.files)) for v, r in project.releases.items()}
            copy = Project(project.name, releases, project.status, project.status_reason)
            return copy, self._project_serials[key]

    def _listing(self) -> tuple[int, list[tuple[str, str, int]]]:
        """The global serial and ``(normalized name, display name, last_serial)`` per project."""
        with self._lock:
            rows = [(k, p.name, self._project_serials[k]) for k, p in self._projects.items()]
            return len(self._journal), sorted(rows)

    def _changelog_call(self, method: str, params: tuple[Any, ...], page_size: int) -> object:
        """The result of an XML-RPC changelog call, or the Fault the real index answers."""
        if method == "changelog_last_serial" and not params:
            return self.last_serial
        if method == "changelog_since_serial" and len(params) == 1:
            since = int(params[0])
            with self._lock:
                rows = [e for e in self._journal if e.serial > since]
                rows = rows[: max(page_size, 0)]
            return [list(row) for row in rows]
        if method == "list_packages_with_serial" and not params:
            with self._lock:
                return {p.name: self._project_serials[k] for k, p in self._projects.items()}
        if method in ("changelog_last_serial", "changelog_since_serial"):
            raise xmlrpc.client.Fault(-32602, f"server error; invalid parameters for {method}")
        if method == "list_packages_with_serial":
            raise xmlrpc.client.Fault(-32602, f"server error; invalid parameters for {method}")
        raise xmlrpc.client.Fault(-32601, f"server error; requested method {method} not found")
