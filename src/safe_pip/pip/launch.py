"""Starting pip: its own process group, signals passed on to it, and what pip is pointed at
before the guard exists (the guard's socket and the numbers of its indexes).

The runner (``install``…) and ``run`` start their child here. The child is ended as a whole:
a refused view ends it before anything is installed, and SIGTERM, SIGHUP or Ctrl-C to
safe-pip end it first, because a pip left without its guard reads every page as empty and
could install from other sources (pip's index collector reads a failed page as empty).

Everything here runs before pip starts, so this module loads nothing but C modules: the
process is spawned with ``os.posix_spawn`` (``subprocess`` brings ``locale``, ``re``,
``selectors`` and ``threading``), the socket is made with ``_socket`` and the handlers set
with ``_signal``, the modules ``socket`` and ``signal`` are built on (they add ``enum``
types, ~15 ms here). Together those modules delayed pip's start by about 35 ms (issue 7).
Where ``posix_spawn`` cannot start a new session, ``subprocess`` does it.
"""

from __future__ import annotations

import _signal
import _socket
import binascii
import os
import sys

TYPE_CHECKING = False  # no typing before pip starts (issue 7)
if TYPE_CHECKING:
    import socket
    import subprocess
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    from safe_pip.guard.guard import Refusal
    from safe_pip.guard.setup import GuardSetup

#: Seconds an ended child gets between SIGTERM (or SIGINT) and SIGKILL.
END_GRACE = 3.0


def _spawn(
    argv: Sequence[str], env: Mapping[str, str]
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """Start ``argv`` in a new session; its pid, and the ``Popen`` where ``subprocess`` did it.

    On Linux, what ``Popen(start_new_session=True)`` does, with ``os.posix_spawn``:
    ``argv[0]`` is looked up on PATH unless it has a slash; SIGPIPE and SIGXFSZ are back to
    their defaults in the child (Python ignores them); descriptors other than the standard
    streams are not inherited (Python opens its own non-inheritable; any inherited one is
    closed in the child, as ``close_fds`` does). A command that cannot be run raises
    ``OSError``, as with ``Popen``. ``subprocess`` starts it elsewhere, and where the spawn
    would differ: ``posix_spawnp`` searches this process's PATH where ``Popen`` searches the
    child's, and without ``/proc`` the inherited descriptors cannot be listed.
    """
    searched = os.sep not in argv[0]
    inherited = _inherited_descriptors() if sys.platform.startswith("linux") else None
    if (
        inherited is not None
        and hasattr(os, "posix_spawn")
        and not (searched and env.get("PATH") != os.environ.get("PATH"))
    ):
        spawn = os.posix_spawnp if searched else os.posix_spawn
        try:
            pid = spawn(
                argv[0],
                list(argv),
                dict(env),
                setsid=True,
                setsigdef=[_signal.SIGPIPE, _signal.SIGXFSZ],
                file_actions=[(os.POSIX_SPAWN_CLOSE, fd) for fd in inherited] or None,
            )
        except NotImplementedError:  # a C library without POSIX_SPAWN_SETSID
            pass
        else:
            return pid, None
    import subprocess

    proc = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)
    return proc.pid, proc


def _inherited_descriptors() -> list[int] | None:
    """Open descriptors above 2 that a child would inherit (usually none); None when they
    cannot be listed."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:  # the listing's own descriptor, closed by now
                continue
    return found


class PipProcess:
    """pip in its own process group, ended as a whole on refusal or interrupt."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.pid, self._popen = _spawn(argv, env)
        import threading  # after pip has started

        self.refused = threading.Event()
        self.signalled: int = 0
        self.returncode: int | None = None
        self._ending = threading.Lock()
        self._reaping = threading.Lock()  # one waitpid at a time; it sets returncode

    def _reap(self, *, block: bool) -> int | None:
        """The exit code once the child is reaped; None while it runs, or while another
        thread is blocked reaping it (as ``Popen.poll`` does)."""
        if self.returncode is not None:
            return self.returncode
        if not self._reaping.acquire(blocking=block):
            return None
        try:
            if self.returncode is None:
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped behind our back (SIGCHLD ignored): no code to give
            self.returncode = 255
        finally:
            self._reaping.release()
        if self.returncode is not None and self._popen is not None:
            self._popen.returncode = self.returncode  # reaped here, not by the Popen
        return self.returncode

    def end(self, sig: int | None = None) -> None:
        """Signal the child's whole group (SIGTERM unless told), then SIGKILL the group after
        ``END_GRACE`` seconds if the child is still there."""
        with self._ending:
            if self._reap(block=False) is not None or not self._signal_group(
                _signal.SIGTERM if sig is None else sig
            ):
                return
        import time

        deadline = time.monotonic() + END_GRACE
        while self._reap(block=False) is None:
            if time.monotonic() >= deadline:
                self._signal_group(_signal.SIGKILL)
                # Reaped at once, unless it is stuck in the kernel: then left as it is.
                deadline = time.monotonic() + 1.0
                while self._reap(block=False) is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                return
            time.sleep(0.01)

    def _signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group; False if the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def refuse(self, _refusal: Refusal) -> None:
        self.refused.set()
        self.end()

    def wait(self) -> int:
        """pip's exit code; a signal to safe-pip ends pip's whole group first.

        If safe-pip died and left pip running, pip would find the guard gone, read every page
        as empty and could install from other sources: so SIGTERM and SIGHUP are forwarded.
        """
        with signals_raised():
            while True:
                try:
                    code = self._reap(block=True)
                    # A blocking reap waits for the reaping lock, then for the child itself.
                    assert code is not None
                    return 128 + self.signalled if self.signalled else code
                except (KeyboardInterrupt, Signalled) as exc:
                    self.interrupted(exc)

    def interrupted(self, exc: BaseException) -> int:
        """End pip's group for a signal safe-pip received; the exit code that signal means."""
        if isinstance(exc, Signalled):
            self.signalled = exc.signum
            self.end(_signal.SIGTERM)
        else:
            self.signalled = int(_signal.SIGINT)
            self.end(_signal.SIGINT)
        return 128 + self.signalled


class Signalled(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


class signals_raised:  # noqa: N801 - used as a function: ``with signals_raised():``
    """SIGTERM and SIGHUP raise :class:`Signalled` here (main thread only), so the caller
    can end pip before safe-pip goes (see :meth:`PipProcess.wait`)."""

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}

    @staticmethod
    def _forward(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    def __enter__(self) -> None:
        for sig in (_signal.SIGTERM, _signal.SIGHUP):
            try:
                self._previous[sig] = _signal.signal(sig, self._forward)
            except ValueError:  # not the main thread: it alone may set handlers (and get them)
                return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            _signal.signal(signum, handler)
        self._previous.clear()


def make_workdir(prefix: str = "safe-pip-") -> str:
    """A new private directory where ``tempfile.mkdtemp`` would make it, without importing
    ``tempfile`` (with ``random``, ``shutil`` and ``hashlib``) before pip starts.

    The candidates are tempfile's on POSIX (``TMPDIR``, ``TEMP``, ``TMP``, then ``/tmp``,
    ``/var/tmp``, ``/usr/tmp``), the first that takes the directory wins; elsewhere, or if
    none does, ``tempfile`` itself decides (and says why it could not).
    """
    if os.name == "posix":
        names = [os.environ.get(var) for var in ("TMPDIR", "TEMP", "TMP")]
        for base in [*(n for n in names if n), "/tmp", "/var/tmp", "/usr/tmp"]:
            suffix = os.urandom(5).hex()
            path = os.path.join(os.path.abspath(base), prefix + suffix)
            try:
                os.mkdir(path, 0o700)
            except OSError:
                continue
            return path
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)


class Listener:
    """The guard's loopback socket and path token, made before anything else.

    pip is handed the guard's URLs and started before the guard's modules are even imported;
    its first requests wait in this socket's backlog until the guard serves them.
    """

    BACKLOG = 64

    def __init__(self) -> None:
        # secrets.token_urlsafe(18), without importing secrets' hmac and hashlib before pip
        token = binascii.b2a_base64(os.urandom(18), newline=False).decode("ascii")
        self.token = token.replace("+", "-").replace("/", "_")
        raw = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            raw.bind(("127.0.0.1", 0))
            raw.listen(self.BACKLOG)
        except OSError:
            raw.close()
            raise
        self._raw: _socket.socket | None = raw
        self._sock: socket.socket | None = None
        #: The guard as an HTTP proxy (no token: it only answers its own URLs, which need the
        #: token, and tunnels to vouched hosts).
        self.proxy_url = f"http://127.0.0.1:{raw.getsockname()[1]}"
        self.base = f"{self.proxy_url}/{self.token}"

    @property
    def sock(self) -> socket.socket:
        """The listening socket, as the ``socket`` module's object the guard's server needs
        (made from the C one on first use, once pip has started)."""
        if self._sock is None:
            import socket

            assert self._raw is not None
            self._sock = socket.socket(fileno=self._raw.detach())
            self._raw = None
        return self._sock

    def close(self) -> None:
        for sock in (self._raw, self._sock):
            if sock is not None:
                sock.close()


class IndexPlan:
    """The guard's number for each index, fixed before the guard exists.

    It numbers URLs exactly as :meth:`Guard.add_index` will (first come, by URL with a
    trailing slash), and :meth:`apply` replays the same calls on the guard and checks that
    every URL pip was given is the one the guard serves.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.calls: list[tuple[str, bool, str]] = []
        self._numbers: dict[str, int] = {}

    def guarded(self, url: str, *, main: bool = False) -> str:
        """The proxy URL pip is given for one index (local file:// indexes are left alone)."""
        if not url.startswith(("http://", "https://")):
            return url
        key = url if url.endswith("/") else url + "/"
        number = self._numbers.setdefault(key, len(self._numbers))
        proxied = f"{self.base}/i/{number}/"
        self.calls.append((url, main, proxied))
        return proxied

    def apply(self, setup: GuardSetup) -> None:
        for url, main, proxied in self.calls:
            entry = setup.add_index(url, main=main)
            if entry is None or setup.guard.index_url(entry) != proxied:
                raise RuntimeError(f"safe-pip bug: index {url} was not given {proxied}")
