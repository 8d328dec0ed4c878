"""Judging pins against the index: is each pinned file listed, as pinned, on a fresh page?

Every page is read through the guard (``Guard.verified``), so a pin is judged only from a
view of the index proven fresh; ``missing`` is never said from a stale cached copy. Pages
are fetched concurrently, one per index and project, shared by every pin; with ``download``
the pinned files' bytes are fetched through the guard and hashed too.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from safe_pip.guard.guard import Guard, IndexEntry, Refused
from safe_pip.index.pages import DistFile, ProjectPage
from safe_pip.index.release import release_of
from safe_pip.locks.pins import LockedFile, Pin, same_version
from safe_pip.net.urls import strip_credentials
from safe_pip.report.findings import CheckResult, Finding, Kind

#: Page and file fetches in flight at once (the session's connection pool holds as many).
WORKERS = 16
#: Hashes computed over downloaded bytes (pip's --hash algorithms).
_ALGORITHMS = ("sha256", "sha384", "sha512")
_FRACTION_RE = re.compile(r"T[0-9:]+\.([0-9]+)")


class FindLinks:
    """pip's ``--find-links`` locations: local directories are listed; remote ones are not
    checked (pip reads them directly, no index cache sits before them)."""

    def __init__(self, locations: Sequence[str]) -> None:
        self.filenames: set[str] = set()
        self.remote = [u for u in locations if u.startswith(("http://", "https://"))]
        for location in locations:
            path = location[len("file://") :] if location.startswith("file://") else location
            if location not in self.remote and os.path.isdir(path):
                self.filenames.update(os.listdir(path))


@dataclass(frozen=True)
class _Listed:
    """A file an index lists for a pinned version."""

    entry: IndexEntry
    dist: DistFile


class PinChecker:
    """Looks the pins up on their indexes through the guard and says what it finds.

    ``indexes`` are those pip would use for a pin without an index of its own;
    ``lock_indexes`` maps each lock's index URL to its guarded entry (None: a local index,
    which no cache sits before). ``say`` takes the warnings, one line each.
    """

    def __init__(
        self,
        guard: Guard,
        indexes: list[IndexEntry],
        lock_indexes: Mapping[str, IndexEntry | None],
        download: bool,
        find_links: FindLinks,
        say: Callable[[str], None],
    ) -> None:
        self.guard = guard
        self.indexes = indexes
        self.lock_indexes = lock_indexes
        self.download = download
        self.find_links = find_links
        self.say = say
        self.pages: dict[tuple[int, str], ProjectPage | None] = {}
        self.digests: dict[str, dict[str, str]] = {}
        self.findings: list[Finding] = []
        self._warned: set[str] = set()

    def _entries(self, pin: Pin) -> list[IndexEntry]:
        """The indexes a pin is looked up on: its lock's index, else those pip would use."""
        if pin.index is None:
            return self.indexes
        entry = self.lock_indexes[pin.index]
        return [] if entry is None else [entry]

    def _parallel(self, jobs: Iterable[Callable[[], None]]) -> bool:
        """Run jobs on the pool; False when the guard refused any of them."""
        jobs = list(jobs)
        with ThreadPoolExecutor(max_workers=min(WORKERS, max(1, len(jobs)))) as pool:
            futures = [pool.submit(job) for job in jobs]
            refused = False
            for future in futures:
                try:
                    future.result()
                except Refused:
                    refused = True
        return not refused

    def run(self, pins: list[Pin], files: list[str]) -> CheckResult | None:
        """Fetch every page (and with ``download`` every pinned file), then judge each pin;
        None when the guard refused the view (the refusals are the guard's to say)."""
        wanted: dict[tuple[int, str], tuple[IndexEntry, str]] = {}
        for pin in pins:
            if pin.version is not None:
                for entry in self._entries(pin):
                    wanted.setdefault((entry.number, pin.project), (entry, pin.project))

        def fetch(key: tuple[int, str], entry: IndexEntry, project: str) -> Callable[[], None]:
            def job() -> None:
                self.pages[key] = self.guard.verified(entry, project)

            return job

        if not self._parallel(fetch(k, e, p) for k, (e, p) in wanted.items()):
            return None
        if self.download:
            needed = {
                listed.dist.url: listed
                for pin in pins
                if pin.version is not None and (pin.hashes or pin.files)
                for listed in self._listed(pin)
                if not pin.files or any(f.filename == listed.dist.filename for f in pin.files)
            }
            if not self._parallel(self._downloader(listed) for listed in needed.values()):
                return None
        for pin in pins:
            self._judge(pin)
        serials: dict[str, dict[str, int | None]] = {}
        for (_number, project), (entry, _) in wanted.items():
            serials.setdefault(strip_credentials(entry.upstream), {})[project] = entry.seen.get(
                project
            )
        return CheckResult(files=files, pins=len(pins), findings=self.findings, serials=serials)

    def _downloader(self, listed: _Listed) -> Callable[[], None]:
        def job() -> None:
            dist = listed.dist
            file_id = self.guard.register_file(
                dist.url, dist.filename, dict(dist.hashes), {}, listed.entry
            )
            handle, size = self.guard.fetch_file(file_id, dist.filename)
            names = {*_ALGORITHMS, *(a for a in dist.hashes if a in hashlib.algorithms_available)}
            hashers = {name: hashlib.new(name) for name in names}
            with handle:
                left = size
                while left > 0:
                    chunk = handle.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
                    for hasher in hashers.values():
                        hasher.update(chunk)
            self.digests[dist.url] = {name: h.hexdigest() for name, h in hashers.items()}

        return job

    def _listed(self, pin: Pin) -> list[_Listed]:
        assert pin.version is not None
        out = []
        for entry in self._entries(pin):
            page = self.pages.get((entry.number, pin.project))
            for dist in page.files if page else ():
                release = release_of(dist.filename)
                if release and release[0] == pin.project and same_version(release[1], pin.version):
                    out.append(_Listed(entry, dist))
        return out

    def _add(self, pin: Pin, kind: Kind, message: str) -> None:
        self.findings.append(Finding(kind, pin.project, pin.version, pin.file, pin.line, message))

    def _warn_once(self, line: str) -> None:
        if line not in self._warned:
            self._warned.add(line)
            self.say(f"warning: {line}")

    def _judge(self, pin: Pin) -> None:
        if pin.version is None:
            if pin.source == "pylock":
                self._add(pin, Kind.UNPINNED, "the lock entry names no version")
            else:
                self._add(pin, Kind.UNPINNED, f"{pin.requested!r} is not pinned with ==")
            return
        entries = self._entries(pin)
        if not entries and pin.index is not None:
            return  # a local file:// index: no cache sits before it
        if self._status(pin, entries) == "quarantined":
            return  # its files are withheld: "missing" would say less than "quarantined"
        listed = self._listed(pin)
        if not listed:
            self._missing(pin, entries)
            return
        if all(item.dist.yanked for item in listed):
            reason = next((i.dist.yanked_reason for i in listed if i.dist.yanked_reason), "")
            self._add(pin, Kind.YANKED, "the release is yanked" + (f": {reason}" if reason else ""))
        elif pin.files:
            for locked in pin.files:
                self._locked_file(pin, locked, listed)
        for spec in pin.hashes:
            self._hash(pin, spec, listed)

    def _status(self, pin: Pin, entries: list[IndexEntry]) -> str | None:
        """Report the PEP 792 status of the pin's project (archived, deprecated, quarantined)
        as the first index that has the project gives it; return that status."""
        for entry in entries:
            page = self.pages.get((entry.number, pin.project))
            if page is None:
                continue
            kind = _STATUS_KINDS.get(page.status or "")
            if kind is not None:
                reason = f": {page.status_reason}" if page.status_reason else ""
                self._add(pin, kind, f"{entry.display} marks {pin.project} {kind}{reason}")
            return page.status
        return None

    def _missing(self, pin: Pin, entries: list[IndexEntry]) -> None:
        for name in self.find_links.filenames:
            release = release_of(name)
            if (
                release
                and release[0] == pin.project
                and same_version(release[1], pin.version or "")
            ):
                return  # pip would take it from a --find-links directory
        if self.find_links.remote:
            self._warn_once(
                f"{pin.project} {pin.version} is not on the indexes; remote --find-links "
                "locations are not checked"
            )
            return
        if not entries:
            self._add(
                pin,
                Kind.MISSING,
                "not found: no index to look on (--no-index) and not "
                "in the --find-links directories",
            )
            return
        where = []
        for entry in entries:
            page = self.pages.get((entry.number, pin.project))
            serial = entry.seen.get(pin.project)
            if page is None:
                where.append(f"{entry.display} has no project {pin.project}")
            else:
                at = f" (page serial {serial})" if serial is not None else ""
                where.append(f"{entry.display} lists no files of {pin.version}{at}")
                known = page.versions is not None and any(
                    same_version(v, pin.version or "") for v in page.versions
                )
                if known or pin.files:
                    # The release existed (the page's PEP 700 versions still name it, or the
                    # lock names its files) and its files went without a yank: deleted, or
                    # quarantined (PyPI quarantines single releases so).
                    proof = (
                        "the index still lists the version" if known else "the lock names its files"
                    )
                    where[-1] = (
                        f"removed from the index (deleted or quarantined): {where[-1]}, "
                        f"though {proof}"
                    )
        self._add(pin, Kind.MISSING, "; ".join(where))

    def _hash(self, pin: Pin, spec: str, listed: list[_Listed]) -> None:
        algo, _, digest = spec.partition(":")
        digest = digest.lower()
        matched: list[_Listed] = []
        unknown = 0
        for item in listed:
            known = self.digests.get(item.dist.url) if self.download else item.dist.hashes
            if known is None or algo not in known:
                unknown += 1
            elif known[algo].lower() == digest:
                matched.append(item)
        if matched:
            yanked = [m for m in matched if m.dist.yanked]
            if yanked and len(yanked) < len(listed):
                self._add(
                    pin,
                    Kind.YANKED,
                    f"{yanked[0].dist.filename} ({algo}:{digest[:12]}…) "
                    "is yanked" + _reason(yanked[0].dist),
                )
            return
        if unknown:
            self._warn_once(
                f"{pin.project} {pin.version}: the index lists no {algo} hash for some files; "
                "--download hashes their bytes"
            )
            return
        source = "bytes" if self.download else "listed hashes"
        self._add(
            pin,
            Kind.HASH_MISMATCH,
            f"no file of {pin.version} has {algo}:{digest} "
            f"(by their {source}; {len(listed)} files listed)",
        )

    def _locked_file(self, pin: Pin, locked: LockedFile, listed: list[_Listed]) -> None:
        item = next((i for i in listed if i.dist.filename == locked.filename), None)
        if item is None:
            self._add(
                pin,
                Kind.CHANGED,
                f"{locked.filename} is no longer listed for "
                f"{pin.version} (the index lists {len(listed)} other files)",
            )
            return
        dist = item.dist
        if dist.yanked:
            self._add(pin, Kind.YANKED, f"{dist.filename} is yanked" + _reason(dist))
        if locked.url and strip_credentials(locked.url) != strip_credentials(dist.url):
            self._add(
                pin,
                Kind.CHANGED,
                f"{dist.filename}: the lock's URL {locked.url} is now "
                f"{strip_credentials(dist.url)} on the index",
            )
        if locked.size is not None and dist.size is not None and locked.size != dist.size:
            self._add(
                pin,
                Kind.CHANGED,
                f"{dist.filename}: size {locked.size} in the lock, {dist.size} on the index",
            )
        if (
            locked.upload_time
            and dist.upload_time
            and not _same_time(locked.upload_time, dist.upload_time)
        ):
            self._add(
                pin,
                Kind.CHANGED,
                f"{dist.filename}: uploaded {locked.upload_time} "
                f"in the lock, {dist.upload_time} on the index",
            )
        known = self.digests.get(dist.url) if self.download else dist.hashes
        common = [a for a in locked.hashes if known and a in known]
        if not common:
            self._warn_once(
                f"{dist.filename}: no hash in the lock the index lists; --download hashes its bytes"
            )
            return
        for algo in common:
            assert known is not None
            if known[algo].lower() != locked.hashes[algo]:
                source = "its bytes hash" if self.download else "the index lists"
                self._add(
                    pin,
                    Kind.HASH_MISMATCH,
                    f"{dist.filename}: the lock has {algo}:"
                    f"{locked.hashes[algo]}, {source} {known[algo].lower()}",
                )


#: PEP 792 statuses that are findings, by their kind (``active`` is none).
_STATUS_KINDS = {
    "archived": Kind.ARCHIVED,
    "deprecated": Kind.DEPRECATED,
    "quarantined": Kind.QUARANTINED,
}


def _reason(dist: DistFile) -> str:
    return f": {dist.yanked_reason}" if dist.yanked_reason else ""


def _same_time(a: str, b: str) -> bool:
    """Two ISO 8601 moments are the same instant (``Z`` and ``+00:00`` alike), ``a`` (the
    lock's) read at its own precision: uv writes upload times cut to milliseconds where the
    index gives microseconds."""
    try:
        x = datetime.fromisoformat(a.replace("Z", "+00:00"))
        y = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return a == b
    fraction = _FRACTION_RE.search(a)
    digits = len(fraction.group(1)) if fraction else 0
    if digits < 6:
        unit = 10 ** (6 - digits)
        y = y.replace(microsecond=y.microsecond // unit * unit)
    if (x.tzinfo is None) != (y.tzinfo is None):
        return x.replace(tzinfo=None) == y.replace(tzinfo=None)
    return x == y
