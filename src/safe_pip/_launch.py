"""Starting pip: its own process group, signals passed on to it, and what pip is pointed at
before the guard exists (the guard's socket and the numbers of its indexes).

The runner (``install``…) and ``run`` start their child here. The child is ended as a whole:
a refused view ends it before anything is installed, and SIGTERM, SIGHUP or Ctrl-C to
safe-pip end it first, because a pip left without its guard reads every page as empty and
could install from other sources (DESIGN.md).
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import threading

TYPE_CHECKING = False  # no typing before pip starts (issue 7)
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from safe_pip._guard import Refusal
    from safe_pip._setup import GuardSetup


class PipProcess:
    """pip in its own process group, ended as a whole on refusal or interrupt."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        self.refused = threading.Event()
        self.signalled: int = 0
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(list(argv), env=dict(env), start_new_session=True)

    def end(self, sig: int = signal.SIGTERM) -> None:
        with self._lock:
            if self.proc.poll() is not None:
                return
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
        try:
            self.proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

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
                    code = self.proc.wait()
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


@contextlib.contextmanager
def signals_raised() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Signalled` here (main thread only), so the caller
    can end pip before safe-pip goes (see :meth:`PipProcess.wait`)."""

    def forward(signum: int, _frame: object) -> None:
        raise Signalled(signum)

    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, forward)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def bypass_proxies_for_loopback(env: dict[str, str]) -> None:
    """The child reaches the guard on 127.0.0.1 directly, whatever proxy it is configured
    with (both spellings of ``NO_PROXY``: tools read one or the other)."""
    no_proxy = [p for p in env.get("NO_PROXY", "").split(",") if p]
    env["NO_PROXY"] = ",".join([*no_proxy, "127.0.0.1", "localhost"])
    env["no_proxy"] = env["NO_PROXY"]


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
            suffix = base64.b32encode(os.urandom(5)).decode("ascii").lower()
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
        self.token = base64.urlsafe_b64encode(os.urandom(18)).decode("ascii")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(self.BACKLOG)
        except OSError:
            self.sock.close()
            raise
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}/{self.token}"

    def close(self) -> None:
        self.sock.close()


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
