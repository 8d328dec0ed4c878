"""Starting pip: its own process group, signals passed on to it, and what pip is pointed at
before the guard exists (the guard's socket and the numbers of its indexes).

The runner (``install``…) and ``run`` start their child here. The child is ended as a whole:
a refused view ends it before anything is installed, and SIGTERM, SIGHUP or Ctrl-C to
safe-pip end it first, because a pip left without its guard reads every page as empty and
could install from other sources (pip's index collector reads a failed page as empty).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

#: Seconds an ended child gets between SIGTERM (or SIGINT) and SIGKILL.
END_GRACE = 3.0


class PipProcess:
    """pip in its own process group, ended as a whole on refusal or interrupt."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        # A new session: the child's process group is its own, so ending that group ends
        # build-isolation pips and build backends too, and the terminal's Ctrl-C reaches only
        # safe-pip, which decides how pip ends.
        self._popen = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)
        self.pid = self._popen.pid
        self.refused = threading.Event()
        self.signalled: int = 0
        self._ending = threading.Lock()

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has been reaped (``-N`` for signal N), else None."""
        return self._popen.returncode

    def end(self, sig: int | None = None) -> None:
        """Signal the child's whole group (SIGTERM unless told), then SIGKILL the group after
        ``END_GRACE`` seconds if the child is still there."""
        with self._ending:
            # poll() gives None while another thread is blocked in wait(): still running.
            if self._popen.poll() is not None or not self._signal_group(
                signal.SIGTERM if sig is None else sig
            ):
                return
        try:
            self._popen.wait(END_GRACE)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            # Reaped at once, unless it is stuck in the kernel: then left as it is.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(1.0)

    def _signal_group(self, sig: int) -> bool:
        """Send ``sig`` to the child's process group; False if the group is gone."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def refuse(self) -> None:
        """The guard refused a view: end pip before it can install anything."""
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
                    code = self._popen.wait()
                    return 128 + self.signalled if self.signalled else code
                except (KeyboardInterrupt, Signalled) as exc:
                    self.interrupted(exc)

    def interrupted(self, exc: BaseException) -> int:
        """End pip's group for a signal safe-pip received; the exit code that signal means."""
        if isinstance(exc, Signalled):
            self.signalled = exc.signum
            self.end(signal.SIGTERM)
        else:
            self.signalled = int(signal.SIGINT)
            self.end(signal.SIGINT)
        return 128 + self.signalled


class Signalled(Exception):
    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


def _raise_signalled(signum: int, _frame: FrameType | None) -> None:
    raise Signalled(signum)


@contextlib.contextmanager
def signals_raised() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Signalled` here (main thread only), so the caller
    can end pip before safe-pip goes (see :meth:`PipProcess.wait`)."""
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, _raise_signalled)
        except ValueError:  # not the main thread: it alone may set handlers (and get them)
            break
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Listener:
    """The guard's loopback socket and path token, made before pip starts.

    pip is handed the guard's URLs and started before the guard is built; its first requests
    wait in this socket's backlog until the guard serves them.
    """

    BACKLOG = 64

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(18)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(self.BACKLOG)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        #: The guard as an HTTP proxy (no token: it only answers its own URLs, which need the
        #: token, and tunnels to vouched hosts).
        self.proxy_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.base = f"{self.proxy_url}/{self.token}"

    def close(self) -> None:
        self.sock.close()


class IndexPlan:
    """The guard's number for each index, fixed before the guard exists.

    It numbers URLs exactly as :meth:`Guard.add_index` will (first come, by URL with a
    trailing slash); :meth:`GuardSetup.add_planned` replays ``calls`` on the guard and checks
    that every URL pip was given is the one the guard serves.
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

