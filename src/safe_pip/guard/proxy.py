"""The guard's loopback HTTP server, run in a background thread for one run or for ``serve``.

What it answers and how is :mod:`safe_pip.guard.handler`'s; here it is started, and stopped
at once when pip ends or ``serve`` is told to stop.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable

from safe_pip.guard.guard import Guard
from safe_pip.guard.handler import Answered, Closing, OnRefused, ProxyServer

__all__ = ["Answered", "Proxy", "closing_sleep"]


def closing_sleep(guard: Guard) -> Callable[[float], None]:
    """A sleep for the guard's waits that ends at once, raising ``Closing``, on shutdown."""

    def sleep(seconds: float) -> None:
        if guard.closing.wait(seconds):
            raise Closing()

    return sleep


class Proxy:
    """Runs the guard's HTTP server in a background thread, for one run or for ``serve``.

    The defaults are install's: 127.0.0.1, a random port and a random token, refused requests
    held. ``serve`` passes its address, its token ("" for none), ``on_refused="503"`` and a
    callback per answer; links in its pages are then path-absolute (``/TOKEN/f/…``), so they
    work whatever host name the clients reach it by. Binding errors (a busy port) raise OSError.
    ``listening``: a loopback socket already bound and listening (the runner's, made before
    pip started), used instead of binding one; the proxy closes it when it stops.
    """

    def __init__(
        self,
        guard: Guard,
        *,
        on_refused: OnRefused = "hold",
        address: tuple[str, int] | None = None,
        token: str | None = None,
        on_answer: Callable[[Answered], None] | None = None,
        listening: socket.socket | None = None,
    ) -> None:
        self.guard = guard
        self.token = secrets.token_urlsafe(18) if token is None else token
        self._server = ProxyServer(
            guard,
            self.token,
            address=address or ("127.0.0.1", 0),
            on_refused=on_refused,
            on_answer=on_answer,
            listening=listening,
        )
        port = self._server.server_address[1]
        prefix = f"/{self.token}" if self.token else ""
        self.base = f"http://127.0.0.1:{port}{prefix}"
        guard.serve_at(self.base if address is None else prefix)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def vouch(self, hosts: set[tuple[str, int]]) -> None:
        """Let clients reach these ``(host, port)`` pairs through the guard as their proxy
        (direct references the user named); every other host stays refused."""
        self._server.vouched = frozenset((host.lower(), port) for host, port in hosts)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    @property
    def active(self) -> int:
        """Requests being answered right now."""
        return self._server.active

    def stop(self, grace: float = 0.0) -> None:
        """Stop listening; waits cut short; answers in flight get up to ``grace`` seconds."""
        self.guard.closing.set()
        # A listening socket shut down wakes serve_forever's select at once (on Linux), so it
        # need not wait for its next poll to see the shutdown request.
        with contextlib.suppress(OSError):
            self._server.socket.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        deadline = time.monotonic() + grace
        while self._server.active and time.monotonic() < deadline:
            time.sleep(0.02)
        self._server.server_close()
