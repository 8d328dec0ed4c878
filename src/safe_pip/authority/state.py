"""The state store: what this machine has seen of each index, kept across runs.

Two things are kept per index, each in its own JSON file so that damage to one (the
journal cache) never costs the other (the no-rollback memory):

* ``<stem>.serials.json``: normalised project name -> the highest serial safe-pip has seen
  on that project's page. A later page with a lower serial is a rollback, so these only
  ever go up.
* ``<stem>.journal.json``: the changelog's :class:`~safe_pip.index.journal.JournalSummary`, so
  a warm run asks the journal only for what is new (one call instead of two).

``<stem>`` is a readable slug of the index plus a short hash of its key; the key itself is
stored inside each file. Credentials are stripped before anything is keyed or written.

Every write is read-merge-write under the index's lock, so concurrent safe-pip processes
never lose each other's entries; how files are opened, written and locked safely is in
:mod:`safe_pip.authority.statefiles`. A corrupt or unreadable file is logged (one line,
logger ``safe_pip``) and treated as empty, because state is an optimisation and a guard
against rollback, never a reason to stop an install; a state directory that cannot be
created or written is a :class:`~safe_pip.errors.StateError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from safe_pip.authority.statefiles import (
    exclusive_lock,
    open_for_reading,
    probe_writable,
    write_atomically,
)
from safe_pip.errors import StateError
from safe_pip.index.journal import JournalSummary
from safe_pip.index.names import canonical_name

__all__ = ["STATE_DIR_ENV", "IndexState", "StateStore", "index_key"]

logger = logging.getLogger("safe_pip")

#: Environment variable that overrides the state directory.
STATE_DIR_ENV = "SAFE_PIP_STATE_DIR"

_FORMAT = 1
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DATA_FILE = re.compile(r"(?P<stem>.+-[0-9a-f]{16})\.(?P<kind>serials|journal)\.json")

_Kind = Literal["serials", "journal"]
_Status = Literal["missing", "ok", "corrupt"]


def index_key(index_url: str) -> str:
    """The identity of an index: credentials stripped, scheme and host lowercased, default
    port dropped, path normalised and ending in ``/``, query and fragment dropped.

    Why: ``https://user:pw@Host/simple`` and ``https://host:443/simple/`` are the same index
    and must share one memory, and a password must never reach a file name or a file.
    """
    parts = urlsplit(index_url.strip())
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError(f"index URL needs a scheme: {index_url!r}")
    try:
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:  # bad port
        raise ValueError(f"bad index URL: {exc}") from None
    if not host and scheme != "file":
        raise ValueError(f"index URL needs a host: {index_url!r}")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and _DEFAULT_PORTS.get(scheme) != port:
        netloc += f":{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    path = posixpath.normpath(path) if path not in ("", "/") else "/"
    if not path.startswith("/"):
        path = "/" + path
    if not path.endswith("/"):
        path += "/"
    return urlunsplit((scheme, netloc, path, "", ""))


def _stem(key: str) -> str:
    """``<slug>-<16 hex>``: readable for humans, unique by the hash of the full key."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    rest = key.split("://", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", rest).strip("-.").lower()[:48].rstrip("-.")
    return f"{slug or 'index'}-{digest}"


@dataclass(frozen=True)
class IndexState:
    """One index as the ``status`` command shows it."""

    key: str
    projects: int  # projects with a remembered serial
    newest_serial: int | None  # highest remembered serial, None if none
    journal_low: int | None  # cached journal window (low, head], None if no cache
    journal_head: int | None
    journal_size: int | None  # projects with a content change in the cached window


class StateStore:
    """Per-index memory of page serials and the cached changelog summary.

    ``root`` defaults to ``$SAFE_PIP_STATE_DIR`` if set, else platformdirs' user state dir
    for ``safe-pip``. Nothing is created until something is written.
    """

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            override = os.environ.get(STATE_DIR_ENV)
            if override:
                root = Path(override).expanduser()
            else:
                root = platformdirs.user_state_path("safe-pip", appauthor=False)
        self._root = Path(os.path.abspath(root))
        self._warned: set[tuple[Path, str]] = set()
        self._warned_lock = threading.Lock()
        #: Each journal file as this store last read or wrote it: which file it was, and the
        #: summary in it (see :meth:`save_journal`).
        self._journal_seen: dict[Path, tuple[tuple[int, int, int], JournalSummary]] = {}

    @property
    def root(self) -> Path:
        """The state directory (absolute)."""
        return self._root

    index_key = staticmethod(index_key)

    # -- remembered serials ----------------------------------------------------------------

    def remembered(self, index_url: str) -> dict[str, int]:
        """Normalised project name -> highest serial seen on its page at this index."""
        key = index_key(index_url)
        doc, _ = self._read(self._path(key, "serials"), key, "serials")
        return dict(doc) if doc is not None else {}

    def remember(self, index_url: str, serials: Mapping[str, int]) -> None:
        """Merge ``serials`` into the memory by maximum: a remembered serial never goes down.

        Read-merge-write under the index's lock, so concurrent processes keep each other's
        entries. Writes nothing when nothing would change.
        """
        incoming: dict[str, int] = {}
        for name, serial in serials.items():
            if isinstance(serial, bool) or not isinstance(serial, int) or serial < 0:
                raise ValueError(f"serial for {name!r} must be a non-negative int: {serial!r}")
            norm = canonical_name(name)
            incoming[norm] = max(serial, incoming.get(norm, serial))
        key = index_key(index_url)
        path = self._path(key, "serials")
        if not incoming and not self._exists(path):
            return
        with self._locked(key):
            doc, status = self._read(path, key, "serials")
            merged = dict(doc) if doc is not None else {}
            for name, serial in incoming.items():
                merged[name] = max(serial, merged.get(name, serial))
            if status == "ok" and merged == doc:
                return
            payload = {"format": _FORMAT, "index": key, "serials": dict(sorted(merged.items()))}
            self._write(path, payload)

    # -- journal cache ---------------------------------------------------------------------

    def load_journal(self, index_url: str) -> JournalSummary | None:
        """The cached changelog summary for this index, or None (none, or unusable)."""
        key = index_key(index_url)
        path = self._path(key, "journal")
        seen = _fingerprint(path)  # before reading: a file replaced meanwhile will not match
        summary, _ = self._read(path, key, "journal")
        if not isinstance(summary, JournalSummary):
            return None
        if seen is not None:
            self._journal_seen[path] = (seen, summary)
        return summary

    def save_journal(self, index_url: str, summary: JournalSummary) -> None:
        """Store ``summary``, merged with what another process may have saved meanwhile.

        Overlapping windows are united; otherwise the newer one wins (see
        :meth:`JournalSummary.merged`). A file unchanged since this store read or wrote it
        is not read again when its window lies within ``summary``'s: both hold every journal
        entry of their windows, so the merge would give ``summary`` (a window with file
        events is megabytes, read and written on every run).
        """
        key = index_key(index_url)
        path = self._path(key, "journal")
        with self._locked(key):
            seen = self._journal_seen.get(path)
            if seen is None or seen[0] != _fingerprint(path) or not _within(seen[1], summary):
                existing, _ = self._read(path, key, "journal")
                if existing is not None:
                    summary = existing.merged(summary)
            self._write(path, {"format": _FORMAT, "index": key, "journal": summary.to_json()})
            written = _fingerprint(path)
            if written is not None:
                self._journal_seen[path] = (written, summary)

    # -- housekeeping ----------------------------------------------------------------------

    def forget(self, index_url: str) -> bool:
        """Delete everything remembered about an index; True if there was anything."""
        key = index_key(index_url)
        paths = [self._path(key, "serials"), self._path(key, "journal")]
        if not any(self._exists(p) for p in paths):
            return False
        removed = False
        with self._locked(key):
            for path in paths:
                try:
                    path.unlink()
                    removed = True
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise StateError(f"cannot remove state file {path}: {exc}") from exc
        # The lock file stays: removing a lock another process may hold would let a third
        # process lock a fresh file at the same path while the second still works.
        return removed

    def indexes(self) -> list[IndexState]:
        """Every index with state, sorted by key (for ``safe-pip status``)."""
        try:
            names = sorted(os.listdir(self._root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StateError(f"cannot read state directory {self._root}: {exc}") from exc
        found: dict[str, dict[str, Any]] = {}
        for name in names:
            match = _DATA_FILE.fullmatch(name)
            if match is None:
                continue
            stem, kind = match["stem"], match["kind"]
            path = self._root / name
            key = self._stored_key(path)
            if key is None or _stem(key) != stem:
                if key is not None:
                    logger.warning("ignoring misplaced state file %s", path)
                continue
            doc, _ = self._read(path, key, "serials" if kind == "serials" else "journal")
            entry = found.setdefault(key, {})
            entry[kind] = doc
        result: list[IndexState] = []
        for key in sorted(found):
            serials: dict[str, int] | None = found[key].get("serials")
            journal: JournalSummary | None = found[key].get("journal")
            result.append(
                IndexState(
                    key=key,
                    projects=len(serials or {}),
                    newest_serial=max(serials.values()) if serials else None,
                    journal_low=journal.low if journal else None,
                    journal_head=journal.head if journal else None,
                    journal_size=len(journal.content_serials) if journal else None,
                )
            )
        return result

    # -- files -----------------------------------------------------------------------------

    def _path(self, key: str, kind: _Kind) -> Path:
        return self._root / f"{_stem(key)}.{kind}.json"

    @staticmethod
    def _exists(path: Path) -> bool:
        return os.path.lexists(path)

    def _load_json(self, path: Path) -> tuple[object, _Status]:
        """The parsed JSON of ``path`` (or None with why); raises StateError on a symlink."""
        try:
            fd = open_for_reading(path)
            if fd is None:
                return None, "missing"
            with os.fdopen(fd, "rb") as handle:
                data = handle.read()
        except StateError:
            raise
        except OSError as exc:
            self._warn_corrupt(path, f"cannot read it: {exc.strerror or exc}")
            return None, "corrupt"
        try:
            return json.loads(data), "ok"
        except (ValueError, RecursionError) as exc:
            self._warn_corrupt(path, f"not JSON: {exc}")
            return None, "corrupt"

    def _stored_key(self, path: Path) -> str | None:
        """The index key written inside a data file (for :meth:`indexes`)."""
        doc, status = self._load_json(path)
        if status == "ok" and isinstance(doc, dict) and isinstance(doc.get("index"), str):
            return str(doc["index"])
        if status == "ok":
            self._warn_corrupt(path, "no index key in it")
        return None

    def _read(self, path: Path, key: str, kind: _Kind) -> tuple[Any, _Status]:
        """Read and validate a data file: (content, status); content None unless "ok".

        The content is ``dict[str, int]`` for serials and :class:`JournalSummary` for the
        journal. Anything invalid is logged once and reported as "corrupt".
        """
        doc, status = self._load_json(path)
        if status != "ok":
            return None, status
        try:
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise ValueError(f"not a safe-pip state file (format {_FORMAT})")
            if doc.get("index") != key:
                raise ValueError(f"it belongs to another index ({doc.get('index')!r:.100})")
            if kind == "journal":
                return JournalSummary.from_json(doc.get("journal")), "ok"
            serials = doc.get("serials")
            if not isinstance(serials, dict):
                raise ValueError("no 'serials' object")
            for name, serial in serials.items():
                if isinstance(serial, bool) or not isinstance(serial, int) or serial < 0:
                    raise ValueError(f"bad serial for {name!r:.100}")
                if canonical_name(name) != name:
                    raise ValueError(f"project name not normalised: {name!r:.100}")
            return serials, "ok"
        except ValueError as exc:
            self._warn_corrupt(path, str(exc))
            return None, "corrupt"

    def _warn_corrupt(self, path: Path, reason: str) -> None:
        """One line per damaged file per store: a read then a rewrite need not say it twice."""
        reason = " ".join(reason.split())  # one line, whatever the parser said
        with self._warned_lock:
            if (path, reason) in self._warned:
                return
            self._warned.add((path, reason))
        logger.warning(
            "ignoring unusable state file %s (%s); starting afresh", path, reason
        )

    def check_usable(self) -> None:
        """Raise :class:`StateError` unless the state directory can be created and written.

        Called before pip starts: the serials kept here are the no-rollback memory, and a run
        that cannot keep them would find out only after installing (README: exit 2, "state
        dir unusable"). A probe file is created exclusively, without following links, and
        removed at once.
        """
        self._ensure_root()
        probe_writable(self._root)

    def _ensure_root(self) -> None:
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create state directory {self._root}: {exc.strerror or exc}"
            ) from exc

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """Hold the index's exclusive lock (``flock`` on ``<stem>.lock``)."""
        self._ensure_root()
        with exclusive_lock(self._root / f"{_stem(key)}.lock"):
            yield

    def _write(self, path: Path, payload: Mapping[str, Any]) -> None:
        """Atomically replace ``path`` with ``payload`` as JSON (caller holds the lock)."""
        data = (json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n").encode()
        self._ensure_root()
        write_atomically(path, data)


def _within(older: JournalSummary, newer: JournalSummary) -> bool:
    """Whether merging ``older`` into ``newer`` gives ``newer``: its window lies within
    ``newer``'s, and it kept no file events that ``newer`` lacks."""
    return (
        newer.low <= older.low <= older.head <= newer.head
        and (newer.files is not None or older.files is None)
    )


def _fingerprint(path: Path) -> tuple[int, int, int] | None:
    """Which file ``path`` is now (inode, size, modification time), None if there is none."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns
