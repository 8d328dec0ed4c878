"""The files listed on the pages the guard served: registered under the guard's URLs, and
downloaded for pip only once their bytes match the page's hashes."""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Protocol

from safe_pip.guard.filecache import FileCache
from safe_pip.guard.indexes import IndexEntry
from safe_pip.guard.refusals import (
    ACCESS_DENIED,
    AccessDenied,
    NotFound,
    Referee,
    Refusal,
    Transient,
)
from safe_pip.guard.timing import PROGRESS_EVERY, Timing
from safe_pip.index.model import hash_dict
from safe_pip.index.pages import DistFile, ProjectPage
from safe_pip.net.http import Session, TransportError
from safe_pip.net.urls import credentials_of, netloc_of, redact, strip_credentials


@dataclass(frozen=True, slots=True)  # slots: one per file of every page served
class FileEntry:
    """A file listed on a page the guard served, and what the page says its bytes are."""

    url: str
    filename: str
    hashes: dict[str, str]
    metadata_hashes: dict[str, str]
    index: IndexEntry


class PrefetchHooks(Protocol):
    """What a file request asks the prefetcher: bytes it has, and news."""

    def file_ready(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int] | None:
        """Verified bytes for ``url`` fetched ahead of pip (or kept from an earlier run)."""

    def file_seen(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str], handle: IO[bytes]
    ) -> None:
        """A verified download is about to reach pip (metadata names the next pages)."""


#: A listed file's number in the guard's URLs: an int for a file registered on its own
#: (``register``), or (page slot, position on the page) for a file of a page the guard served.
FileKey = int | tuple[int, int]


class FileRegistry:
    """Every file the guard listed to pip (its number is in the file's guard URL). A served
    page is registered whole, in one slot, and a file of it is looked up in the page's own
    files only when asked for: a page lists thousands, pip fetches a handful. Thread-safe."""

    def __init__(
        self,
        session: Session,
        timeout: float | None,
        timing: Timing,
        referee: Referee,
        say: Callable[[str], None],
        cache: FileCache | None,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.timing = timing
        self.referee = referee
        self.say = say
        #: Verified files kept by sha256 (between runs, and for the several range requests a
        #: client such as uv makes for one wheel); None: every request downloads.
        self.cache = cache
        #: Pages and files fetched ahead of pip (see ``Guard.attach_prefetcher``).
        self.prefetcher: PrefetchHooks | None = None
        self.files: dict[int, FileEntry] = {}
        self._ids: dict[str, int] = {}
        #: The files of each page served, by slot; a page checked again takes its old slot.
        self._pages: list[tuple[IndexEntry, tuple[DistFile, ...]]] = []
        self._slots: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._download_locks: dict[str, threading.Lock] = {}

    # -- registering ------------------------------------------------------------------------

    def rewriter(
        self, entry: IndexEntry, project: str, page: ProjectPage, base: str
    ) -> Callable[[str], str]:
        """The guard URL (under the proxy's ``base``) of each file the page lists:
        ``f/<slot>/<position>/<filename>``. The renderers ask for the files in the page's
        order, so each URL is the next position; another URL is looked up in the page."""
        files = page.files
        with self._lock:
            slot = self._slots.setdefault((entry.number, project), len(self._pages))
            if slot == len(self._pages):
                self._pages.append((entry, files))
            else:
                self._pages[slot] = (entry, files)
        prefix = f"{base}/f/{slot}/"
        following = 0
        positions: dict[str, int] | None = None

        def rewrite(url: str) -> str:
            nonlocal following, positions
            if following < len(files) and files[following].url == url:
                position = following
                following += 1
            else:
                if positions is None:  # (a URL listed twice: the last file's)
                    positions = {dist.url: i for i, dist in enumerate(files)}
                found = positions.get(url)
                if found is None:
                    filename = url.rsplit("/", 1)[-1].split("?")[0]
                    file_id = self.register(url, filename, {}, {}, entry)
                    return f"{base}/f/{file_id}/{urllib.parse.quote(filename)}"
                position = found
            return f"{prefix}{position}/{_quote(files[position].filename)}"

        return rewrite

    def register(
        self,
        url: str,
        filename: str,
        hashes: dict[str, str],
        metadata_hashes: dict[str, str],
        entry: IndexEntry,
    ) -> int:
        with self._lock:
            file_id = self._ids.get(url)
            if file_id is None:
                file_id = len(self._ids)
                self._ids[url] = file_id
            self.files[file_id] = FileEntry(url, filename, hashes, metadata_hashes, entry)
            return file_id

    def entry(self, key: FileKey, name: str) -> FileEntry:
        """The listed file that ``name`` (a file name, or its ``.metadata``) at ``key`` is;
        raises ``NotFound`` for anything the guard did not list there."""
        if isinstance(key, int):
            entry = self.files.get(key)
            if entry is None or not _names(name, entry.filename):
                raise NotFound(name)
            return entry
        slot, position = key
        with self._lock:
            listed = self._pages[slot] if slot < len(self._pages) else None
        if listed is None:
            raise NotFound(name)
        index, files = listed
        dist = files[position] if position < len(files) else None
        if dist is None or not _names(name, dist.filename):
            # The page was checked again since it was served: the file may have moved.
            dist = next((f for f in reversed(files) if _names(name, f.filename)), None)
            if dist is None:
                raise NotFound(name)
        meta = dist.core_metadata
        return FileEntry(
            dist.url,
            dist.filename,
            hash_dict(dist.hashes),
            hash_dict(meta) if isinstance(meta, Mapping) else {},
            index,
        )

    def unproxy(self, text: str, base: str) -> str:
        """``text`` with the guard's file URLs put back as the files' own (no credentials)."""
        marker = f"{base}/f/"
        pieces: list[str] = []
        done = 0
        at = text.find(marker)
        while at >= 0:
            end = at + len(marker)
            numbers: list[int] = []
            while len(numbers) < 2:
                digits = _DIGITS.match(text, end)
                if digits is None or not text.startswith("/", digits.end()):
                    break
                numbers.append(int(digits.group()))
                end = digits.end() + 1
            found = self._listed_at(numbers)
            if found is not None:
                quoted = urllib.parse.quote(found.filename)
                if text.startswith(quoted, end):
                    pieces += [text[done:at], strip_credentials(found.url)]
                    done = end + len(quoted)
            at = text.find(marker, max(done, at + 1))
        return "".join(pieces) + text[done:]

    def _listed_at(self, numbers: list[int]) -> FileEntry | DistFile | None:
        with self._lock:
            if len(numbers) == 1:
                return self.files.get(numbers[0])
            if len(numbers) == 2 and numbers[0] < len(self._pages):
                files = self._pages[numbers[0]][1]
                return files[numbers[1]] if numbers[1] < len(files) else None
        return None

    # -- downloading ------------------------------------------------------------------------

    def fetch(self, key: FileKey, name: str) -> tuple[IO[bytes], int]:
        """A listed file (or its PEP 658 metadata), verified against the page's hashes.

        The bytes are spooled to disk while hashed and only then handed to pip, so a wrong or
        truncated file can be fetched again instead of reaching pip (a page can be fresher than
        the file host). Memory stays flat whatever the file's size.
        """
        entry = self.entry(key, name)
        if name == entry.filename:
            url, expected = entry.url, entry.hashes
        else:
            url, expected = metadata_url(entry.url), entry.metadata_hashes
        hooks = self.prefetcher
        ready = hooks.file_ready(entry, name, url, expected) if hooks is not None else None
        if ready is not None:
            return ready
        with self._lock:
            lock = self._download_locks.setdefault(url, threading.Lock())
        # One download per file at a time: a second request for it (uv asks for a wheel's
        # ranges one by one) waits for the first and is then answered from the cache.
        with lock:
            kept = self.cache.get(expected) if self.cache is not None else None
            if kept is not None:
                if hooks is not None:
                    hooks.file_seen(entry, name, url, expected, kept[0])
                return kept
            return self._fetch_retrying(entry, name, url, expected)

    def _fetch_retrying(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int]:
        timing = self.timing
        deadline = timing.clock() + timing.max_wait
        backoff = timing.first_backoff
        last_report = timing.clock()
        while True:
            try:
                handle, size = self.download(url, entry, expected)
                if self.prefetcher is not None:
                    self.prefetcher.file_seen(entry, name, url, expected, handle)
                return handle, size
            except NotFound:
                problem = f"{redact(url)} answered 404"
            except Transient as exc:
                problem = str(exc)
            except AccessDenied as exc:
                # Credentials do not arrive by waiting. A 403 is waited out (below): object
                # stores answer 403 for a file not stored yet.
                what = f"{name} on {netloc_of(exc.final_url)}"
                self.referee.refuse(
                    Refusal(
                        entry.filename, entry.index.display, ACCESS_DENIED, None, None,
                        exc.reason(what),
                    )
                )
            now = timing.clock()
            if now >= deadline:
                self.referee.refuse(
                    Refusal(
                        entry.filename,
                        entry.index.display,
                        "FILE",
                        None,
                        None,
                        f"{problem}; still failing after {timing.max_wait:g} s",
                    )
                )
            if now - last_report >= PROGRESS_EVERY:
                last_report = now
                self.say(f"waiting for {name}: {problem} ({deadline - now:.0f} s left)")
            timing.sleep(min(backoff, max(0.0, deadline - now)))
            backoff = min(backoff * 2, timing.max_backoff)

    def download(
        self, url: str, entry: FileEntry, expected: dict[str, str]
    ) -> tuple[IO[bytes], int]:
        """One download of ``url``, kept in the file cache once its hashes match; raises
        ``NotFound``, ``AccessDenied`` (401) or ``Transient``."""
        auth = None
        creds = credentials_of(entry.index.upstream)
        if creds and netloc_of(url) == netloc_of(entry.index.upstream):
            auth = creds
        hashers = {
            name: hashlib.new(name) for name in expected if name in hashlib.algorithms_available
        }
        cache = self.cache
        # Handed to the caller. A spool in the file cache's directory makes keeping the file
        # once verified a link, not a copy made while the client waits.
        spool = cache.spool() if cache is not None else None
        if spool is None:
            spool = tempfile.TemporaryFile(prefix="safe-pip-")  # noqa: SIM115
        size = 0
        try:
            with self.session.get(url, stream=True, auth=auth, timeout=self.timeout) as resp:
                if resp.status_code in (404, 410):
                    raise NotFound(url)
                if resp.status_code == 401:
                    raise AccessDenied(url, resp.url, 401, resp.credentials)
                if resp.status_code != 200:
                    raise Transient(f"{redact(url)} answered HTTP {resp.status_code}")
                for chunk in resp.iter_content(chunk_size=256 * 1024):
                    spool.write(chunk)
                    size += len(chunk)
                    for hasher in hashers.values():
                        hasher.update(chunk)
        except TransportError as exc:  # its message names the URL, without credentials
            spool.close()
            raise Transient(str(exc)) from exc
        except BaseException:
            spool.close()
            raise
        for name, hasher in hashers.items():
            if hasher.hexdigest() != expected[name].lower():
                spool.close()
                raise Transient(f"{redact(url)}: {name} does not match the page's hash")
        if cache is not None:
            cache.adopt(expected, spool, size)
        spool.seek(0)
        return spool, size


def metadata_url(url: str) -> str:
    """The URL of a file's PEP 658 metadata."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path + ".metadata"))


#: File names ``urllib.parse.quote`` leaves as they are (wheel names nearly always are).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.\-~/]*")
_DIGITS = re.compile(r"[0-9]+")


def _names(name: str, filename: str) -> bool:
    """Whether a request for ``name`` asks for the file ``filename`` or its PEP 658 metadata."""
    return name in (filename, filename + ".metadata")


def _quote(filename: str) -> str:
    return filename if _UNQUOTED.fullmatch(filename) else urllib.parse.quote(filename)
