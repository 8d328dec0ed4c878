"""Verified files kept between runs, by sha256, so a warm install downloads nothing twice.

pip's own HTTP cache cannot hit through the guard: the file URLs pip is given carry the
guard's per-run port and token. So the guard keeps what it has verified itself, under
platformdirs' user cache dir, named by the file's sha256. A file is served from here only
when the (freshly verified) page lists that sha256, and its bytes are hashed again on the
way out, so a damaged copy is dropped and downloaded anew; the cache never decides *which*
file is used, only saves fetching bytes already known.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO

import platformdirs

logger = logging.getLogger("safe_pip")

#: Files larger than this are not kept (a cache is for the many small wheels of a tree).
MAX_FILE = 256 * 1024 * 1024
#: The cache is pruned, oldest first, down to this size at the end of a run that kept files.
MAX_TOTAL = 2 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024
#: Downloads in progress are named so, at the cache's top level (kept files are one level down).
_PART = ".part-"
#: A spool older than this belongs to no running download (a run that was killed).
_PART_LIFETIME = 24 * 3600.0


def default_root() -> Path:
    return Path(platformdirs.user_cache_dir("safe-pip")) / "files"


class FileCache:
    """Verified files by sha256 (see the module docstring). Safe to share between processes:
    files appear by atomic rename and are verified on every read."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()
        #: Something was kept by this object: only then can the cache have outgrown its limit,
        #: so :meth:`prune` skips the walk over every kept file otherwise.
        self.added = False

    def _path(self, digest: str) -> Path | None:
        digest = digest.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return None
        return self.root / digest[:2] / digest

    def get(self, expected: dict[str, str]) -> tuple[IO[bytes], int] | None:
        """The kept file whose sha256 the page gives, hashed again; None if absent or damaged."""
        path = self._path(expected.get("sha256", ""))
        if path is None:
            return None
        try:
            handle = path.open("rb")
        except OSError:
            return None
        hasher, size = hashlib.sha256(), 0
        try:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        except OSError:
            handle.close()
            return None
        if hasher.hexdigest() != expected["sha256"].lower():
            handle.close()
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        handle.seek(0)
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: pruned last
        return handle, size

    def spool(self) -> IO[bytes] | None:
        """A file to download into, in the cache's own directory, so that keeping it after
        verification is a link, not a copy (None: the cache directory is not writable).

        Its temporary name goes when it is closed; an interrupted run's leftovers are removed
        by :meth:`prune`.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            return tempfile.NamedTemporaryFile(dir=self.root, prefix=_PART)  # noqa: SIM115
        except OSError as exc:
            logger.debug("file cache: no spool in %s: %s", self.root, exc)
            return None

    def adopt(self, expected: dict[str, str], spool: IO[bytes], size: int) -> None:
        """Keep a verified file downloaded into a :meth:`spool`: a hard link, so pip's copy is
        never waited for and big files are not written twice."""
        path = self._path(expected.get("sha256", ""))
        if path is None or size > MAX_FILE or path.exists():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(str(getattr(spool, "name", "")), path)
            self.added = True
        except FileExistsError:
            pass  # another run kept it meanwhile
        except OSError as exc:  # no hard links here: copy instead
            logger.debug("file cache: could not link %s: %s", path.name, exc)
            self.put(expected, spool, size)

    def put(self, expected: dict[str, str], handle: IO[bytes], size: int) -> None:
        """Keep a verified file (its position is restored); failures cost only the copy."""
        path = self._path(expected.get("sha256", ""))
        if path is None or size > MAX_FILE or path.exists():
            return
        position = handle.tell()
        partial: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle.seek(0)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
                partial = tmp.name
                shutil.copyfileobj(handle, tmp, _CHUNK)
            os.replace(partial, path)
            self.added = True
        except OSError as exc:
            logger.debug("file cache: could not keep %s: %s", path.name, exc)
            if partial is not None:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
        finally:
            handle.seek(position)

    def prune(self, limit: int = MAX_TOTAL) -> None:
        """Drop the least recently used files until the cache is under ``limit`` bytes, and
        spools an interrupted run left behind; nothing to do unless this run kept a file."""
        if not self.added:
            return
        self.added = False  # a long-running guard prunes again only after keeping more
        stale = time.time() - _PART_LIFETIME
        with contextlib.suppress(OSError):
            for part in self.root.glob(f"{_PART}*"):
                with contextlib.suppress(OSError):
                    if part.stat().st_mtime < stale:
                        part.unlink()
        try:
            files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*/*")]
        except OSError:
            return
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= limit:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
