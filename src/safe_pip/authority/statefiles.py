"""Careful file operations for the state directory, where another process (or a planted file)
may be at work at the same time.

* Reads open with ``O_NOFOLLOW`` and ``O_NONBLOCK`` and accept regular files only: a symlink
  planted in the state directory is refused, never followed, and a FIFO cannot hang a run.
* Writes go to a temp file in the same directory, created exclusively and without following
  links, fsynced, then ``os.replace``-d: a crash or a full disk leaves the old file whole.
* Read-merge-write cycles hold an exclusive ``flock``, so concurrent processes never lose each
  other's entries.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from safe_pip.errors import StateError

__all__ = ["exclusive_lock", "open_for_reading", "probe_writable", "write_atomically"]

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a planted FIFO must not hang the open
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC


def open_for_reading(path: Path) -> int | None:
    """A descriptor of the regular file ``path``, not following symlinks; None if absent.

    Raises :class:`StateError` for a symlink or anything but a regular file, and OSError for
    other failures (the caller decides whether an unreadable file matters).
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):  # no file, or no state dir yet
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():
            raise StateError(f"refusing symlinked state file {path}") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise StateError(f"refusing state file {path}: not a regular file")
    return fd


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``; on any failure the old file is left as it was.

    The temp file is created exclusively with mode 0o666 (so the umask applies, as for any
    file the user's programs make), written, fsynced and renamed over ``path``; the directory
    is then fsynced so that the rename survives a crash.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd: int | None = None
    try:
        fd = os.open(tmp, _CREATE_NEW, 0o666)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, path)
    except OSError as exc:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StateError(f"cannot write state file {path}: {exc}") from exc
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; best effort (not every filesystem allows it)."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def probe_writable(directory: Path) -> None:
    """Raise :class:`StateError` unless a file can be created (and removed) in ``directory``.

    The probe is created exclusively, without following links, and removed at once.
    """
    probe = directory / f".probe-{secrets.token_hex(6)}"
    try:
        os.close(os.open(probe, _CREATE_NEW, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise StateError(
            f"cannot write in state directory {directory}: {exc.strerror or exc}"
        ) from exc


@contextlib.contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing, never followed)."""
    try:
        import fcntl  # here, not at the top: state can still be read where it is missing
    except ImportError:  # pragma: no cover - Windows
        raise StateError(
            "safe-pip's state store needs POSIX file locking (fcntl), "
            "which this platform does not have"
        ) from None
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise StateError(f"refusing symlinked lock file {lock_path}") from exc
        raise StateError(f"cannot open lock file {lock_path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StateError(f"cannot lock {lock_path}: {exc}") from exc
        yield
    finally:
        os.close(fd)  # closing releases the flock
