"""Prefetching: pages (and files) fetched and verified before pip asks for them.

pip reads index pages one at a time and pays the index's latency on each. The guard knows the
top-level names before pip starts (its command line and requirements files) and learns each
dependency as soon as a distribution's metadata (a PEP 658 ``.metadata`` file, or a wheel's
``METADATA``) passes through it, so it can check those pages concurrently, over the session's
kept-alive connections, and have them ready when pip asks. Likewise, once pip has read a
wheel's metadata it is about to download that wheel, so the wheel is fetched alongside.

A prefetch never changes what pip resolves: pages are checked exactly as pip's own requests are
(``Guard.prefetch`` shares ``Guard.verified``'s cache and lock), pip still chooses what to read,
and a page pip never asks for is never a reason to refuse: a prefetch that ends in a refusal
keeps it with the page, to be told only if pip asks for that page. A prefetched file that
failed is simply downloaded again when pip asks, with the guard's usual retries.

Workers are daemon threads and ``close`` drops what is queued, so a prefetch can never hold up
the end of a run.
"""

from __future__ import annotations

import itertools
import logging
import platform
import queue
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name

from safe_pip.guard.dependencies import (
    MAX_METADATA,
    MAX_WHEEL_AHEAD,
    best_candidate,
    marker_environment,
    marker_true,
    project_of,
    requires_dist,
    target_environment,
    top_level,
    wheel_metadata,
)
from safe_pip.guard.files import metadata_url
from safe_pip.guard.guard import FileEntry, Guard, IndexEntry, NotFound, Refused
from safe_pip.guard.refusals import Transient
from safe_pip.pip.cmdline import PipCommand
from safe_pip.pip.requirements import ReqLine

logger = logging.getLogger("safe_pip")

#: Concurrent prefetches. The session keeps 16 connections per host; pip's own requests
#: through the guard use the rest.
WORKERS = 8


@dataclass
class _Download:
    """A file fetched ahead of pip: done once the download ended, either way."""

    entry: FileEntry
    url: str
    expected: dict[str, str]
    metadata: bool  # a PEP 658 .metadata file (read for dependencies), else the file itself
    #: Read for dependencies: a metadata file, or a wheel fetched ahead for its METADATA.
    learn: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[IO[bytes], int] | None = None
    #: A worker began it (under the prefetcher's lock); until then pip's own request may take
    #: it over, and the queued task is dropped.
    started: bool = False


#: A queued prefetch: a page (index, project), a file, or None (a worker's signal to stop).
_Task = tuple[IndexEntry, str] | _Download | None  # noqa: UP007
#: Queue priorities: pages first (pip waits on them soonest), then metadata, then files.
_PAGE, _METADATA, _FILE = 0, 1, 2

class Prefetcher:
    """Checks pages (and fetches files) ahead of pip for one run; see the module docstring.

    A dependency is prefetched only if its marker is true for the interpreter pip runs under
    (``python``, asked once in the background, else this one), with ``extra`` true only for
    the extras asked of the project that needs it, as pip evaluates them. If ``python``
    cannot tell, every dependency is prefetched (a superset is harmless).
    ``metadata_ahead``: pip resolves for this interpreter's tags and Python version, so the
    newest compatible wheel's metadata is fetched as soon as its page is verified (the whole
    tree is then learnt at the speed of its depth, not of its size); otherwise metadata is
    learnt only as pip reads it. ``files``: also fetch a wheel once pip has read its metadata
    (install, download and wheel download what they resolve).
    """

    def __init__(
        self,
        guard: Guard,
        *,
        python: str | None = None,
        metadata_ahead: bool = True,
        files: bool = True,
        workers: int = WORKERS,
    ) -> None:
        self.guard = guard
        self.python = python
        self.metadata_ahead = metadata_ahead and python is None
        self.files = files
        self._workers = workers
        self._queue: queue.PriorityQueue[tuple[int, int, _Task]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        self._wanted: set[tuple[int, str]] = set()
        self._extras: dict[str, set[str]] = {}
        self._specifiers: dict[str, SpecifierSet] = {}
        self._downloads: dict[str, _Download] = {}
        self._learnt: set[str] = set()  # URLs whose metadata was read for dependencies
        #: Each project's dependencies as read (of every version read), evaluated again when
        #: one of its extras is asked for after its metadata was read.
        self._requires: dict[str, list[Requirement]] = {}
        #: The marker environment: {} is this interpreter's (``Marker.evaluate``'s default),
        #: None an unknown one. While ``_asking``, dependencies read wait in ``_requires``.
        self._environment: dict[str, str] | None = {}
        self._asking = python is not None
        self._tags = frozenset(sys_tags()) if self.metadata_ahead else frozenset()
        self._python_version = platform.python_version()
        self._closed = threading.Event()
        self.pages = 0  #: pages checked ahead of pip
        self.fetched_files = 0  #: files (and metadata files) fetched ahead of pip
        guard.attach_prefetcher(self)

    def start(self, requirements: Iterable[Requirement] = ()) -> None:
        if self.python is not None:
            # pip has started already; its first metadata comes after its import and a page.
            threading.Thread(target=self._ask, name="prefetch-markers", daemon=True).start()
        for number in range(self._workers):
            threading.Thread(target=self._work, name=f"prefetch-{number}", daemon=True).start()
        self.want(requirements)

    def _ask(self) -> None:
        """Learn the target interpreter's marker environment, then evaluate what was read."""
        assert self.python is not None
        environment = None
        try:
            # pip's internals, imported inside the try: a pip that moved it costs the markers only.
            from pip._internal.cli.main_parser import identify_python_interpreter

            # As pip finds it: --python may name an environment's directory.
            python = identify_python_interpreter(self.python)
            if python is not None:
                environment = marker_environment(python)
        except Exception:  # noqa: BLE001 - a prefetch must never fail the run
            logger.debug("prefetch: no marker environment from %s", self.python, exc_info=True)
        with self._lock:
            self._environment, self._asking = environment, False
            read = {project: list(requires) for project, requires in self._requires.items()}
        if self._closed.is_set():
            return  # the run has ended: nothing is wanted any more
        for project, requires in read.items():
            self._consider(project, requires)

    def close(self) -> None:
        """Stop: drop what is queued; work in flight ends with the process (daemon threads)."""
        self._closed.set()
        for _ in range(self._workers):
            self._queue.put((-1, next(self._order), None))
        with self._lock:
            downloads, self._downloads = list(self._downloads.values()), {}
        for download in downloads:
            if download.done.is_set() and download.result is not None:
                download.result[0].close()

    # -- what to fetch ------------------------------------------------------------------------

    def want(self, requirements: Iterable[Requirement]) -> None:
        """Check these projects' pages on every guarded index, each once per run."""
        for req in requirements:
            name = canonicalize_name(req.name)
            with self._lock:
                extras = self._extras.setdefault(name, set())
                new = {canonicalize_name(extra) for extra in req.extras} - extras
                extras |= new
                # An extra asked for after the project's metadata was read (``beta`` first,
                # then ``beta[bar]``): what it needs is known already.
                again = list(self._requires.get(name, ())) if new and not self._asking else []
                known = self._specifiers.get(name)
                self._specifiers[name] = req.specifier if known is None else known & req.specifier
                entries = [e for e in self.guard.indexes if (e.number, name) not in self._wanted]
                self._wanted.update((e.number, name) for e in entries)
            for entry in entries:
                self._queue.put((_PAGE, next(self._order), (entry, name)))
            if again:
                self._consider(name, again)

    def _needed(self, req: Requirement, project: str) -> bool:
        if req.marker is None:
            return True
        with self._lock:
            extras = sorted(self._extras.get(project, ()))
            environment = self._environment
        return any(marker_true(req.marker, environment, extra) for extra in ["", *extras])

    def _consider(self, project: str, requires: Iterable[Requirement]) -> None:
        self.want(r for r in requires if self._needed(r, project))

    def _learn(self, project: str, metadata: bytes | None) -> None:
        if not metadata:
            return
        requires = requires_dist(metadata)
        with self._lock:
            self._requires.setdefault(project, []).extend(requires)
            if self._asking:
                return  # evaluated once the target interpreter has told its environment
        self._consider(project, requires)

    def _fetch_ahead(self, entry: FileEntry, *, metadata: bool, learn: bool = False) -> None:
        """Queue a download: a metadata file (read), or the file itself (read too if
        ``learn``: a wheel fetched for its METADATA, as soon as a metadata file would be)."""
        if metadata:
            url, expected = metadata_url(entry.url), dict(entry.metadata_hashes)
        else:
            url, expected = entry.url, dict(entry.hashes)
        learn = learn or metadata
        with self._lock:
            if self._closed.is_set() or url in self._downloads:
                return
            self._downloads[url] = download = _Download(entry, url, expected, metadata, learn)
        self._queue.put((_METADATA if learn else _FILE, next(self._order), download))

    # -- the guard's hooks (``PrefetchHooks``) -------------------------------------------------

    def file_ready(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str]
    ) -> tuple[IO[bytes], int] | None:
        with self._lock:
            download = self._downloads.pop(url, None)
            if download is not None and not download.started:
                # Still queued (behind pages and metadata, maybe many): pip's request fetches
                # it now instead of waiting for a worker; the queued task finds it gone.
                download = None
        result = None
        if download is not None:
            download.done.wait()  # in flight: waiting beats starting over
            result = download.result
            if result is not None and download.expected != expected:
                result[0].close()  # verified against other hashes than pip's page gives
                result = None
        if result is not None:
            self.file_seen(entry, name, url, expected, result[0])
        return result

    def file_seen(
        self, entry: FileEntry, name: str, url: str, expected: dict[str, str], handle: IO[bytes]
    ) -> None:
        try:
            project = project_of(entry.filename)
            # (Read by the worker that fetched it ahead: not parsed again, inside pip's request.)
            if name.endswith(".metadata"):
                if self._first_reading(url):
                    self._learn(project, handle.read(MAX_METADATA))
                if self.files and entry.filename.endswith(".whl"):
                    self._fetch_ahead(entry, metadata=False)
            elif (
                name.endswith(".whl") and not entry.metadata_hashes and self._first_reading(url)
            ):
                self._learn(project, wheel_metadata(handle))
        except Exception:  # noqa: BLE001 - a prefetch must never fail pip's request
            logger.debug("prefetch: could not read %s", name, exc_info=True)
        finally:
            handle.seek(0)

    def _first_reading(self, url: str) -> bool:
        """True once per URL: whether its metadata (a .metadata file, or a wheel's METADATA)
        is still to be read for dependencies."""
        with self._lock:
            first = url not in self._learnt
            self._learnt.add(url)
        return first

    # -- workers -------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            _, _, task = self._queue.get()
            if task is None or self._closed.is_set():
                return
            try:
                if isinstance(task, _Download):
                    with self._lock:
                        if self._downloads.get(task.url) is not task:
                            continue  # pip's own request took it over
                        task.started = True
                    self._download(task)
                else:
                    self._page(*task)
            except Exception:  # noqa: BLE001 - pip's own request meets the problem, if any
                logger.debug("prefetch failed: %r", task, exc_info=True)

    def _page(self, entry: IndexEntry, project: str) -> None:
        try:
            page = self.guard.prefetch(entry, project)
        except Refused:
            return  # kept with the page: told only if pip asks for it
        finally:
            with self._lock:
                self.pages += 1
        if page is None or not self.metadata_ahead:
            return
        with self._lock:
            specifier = self._specifiers.get(project, SpecifierSet())
        dist = best_candidate(page, specifier, self._tags, self._python_version)
        if dist is not None and isinstance(dist.core_metadata, Mapping):
            hashes, metadata_hashes = dict(dist.hashes), dict(dist.core_metadata)
            file = FileEntry(dist.url, dist.filename, hashes, metadata_hashes, entry)
            self._fetch_ahead(file, metadata=True)
            return
        # No PEP 658 file to read (indexes and mirrors that serve none): pip reads the METADATA
        # of the wheel it picks from the wheel itself, so that wheel is fetched ahead and read.
        dist = best_candidate(page, specifier, self._tags, self._python_version, metadata=False)
        if dist is not None and dist.size is not None and dist.size <= MAX_WHEEL_AHEAD:
            file = FileEntry(dist.url, dist.filename, dict(dist.hashes), {}, entry)
            self._fetch_ahead(file, metadata=False, learn=True)

    def _download(self, download: _Download) -> None:
        guard = self.guard
        metadata = None
        try:
            cache = guard.file_cache
            if cache is not None:
                download.result = cache.get(download.expected)
            if download.result is None:
                download.result = guard.download(download.url, download.entry, download.expected)
            if download.result is not None and download.learn:
                # Read before pip's request may take the handle (done), not while it is sent.
                handle = download.result[0]
                try:
                    if download.metadata:
                        metadata = handle.read(MAX_METADATA)
                    else:
                        metadata = wheel_metadata(handle)
                finally:
                    handle.seek(0)
                with self._lock:
                    self._learnt.add(download.url)
        except (NotFound, Transient):
            download.result = None  # pip's own request downloads it again, with retries
        finally:
            download.done.set()
        if download.result is None:
            return
        with self._lock:
            self.fetched_files += 1
        if metadata is not None:
            self._learn(project_of(download.entry.filename), metadata)



def start_prefetch(
    guard: Guard,
    cmd: PipCommand,
    python: str | None,
    lines: Iterable[ReqLine],
) -> Prefetcher:
    """The runner's prefetcher for one pip command, started on the command's own names and
    its requirements files' ``lines``."""
    prefetcher = Prefetcher(
        guard,
        python=python,
        metadata_ahead=target_environment(cmd, python),
        # Only these commands download the wheels they resolve; ``--dry-run`` reads metadata.
        files=cmd.command in ("install", "download", "wheel") and not cmd.value("dry_run"),
    )
    prefetcher.start(top_level(cmd, lines))
    return prefetcher
