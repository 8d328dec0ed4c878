"""The loopback HTTP server pip talks to: the one place that speaks HTTP to pip.

It listens on 127.0.0.1 on a random port and answers only under a random per-run path token,
so another local user can neither use it nor learn what is installed. Every answer it gives pip
is marked ``no-store``: pip >= 26.2 would otherwise cache index pages for ten minutes and hide
staleness the guard has just ruled out.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import secrets
import shutil
import socket
import threading
import urllib.parse
from typing import Any

from packaging.utils import canonicalize_name

from safe_pip._guard import Guard, NotFound, Refused

logger = logging.getLogger("safe_pip")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, guard: Guard, token: str) -> None:
        self.guard = guard
        self.token = token
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # pip hanging up mid-transfer (it was ended after a refusal) is not news.
        logger.debug("proxy connection error from %s", client_address, exc_info=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, pip's delayed
    # ACK then costs ~40 ms on every page and file (measured: 2.3x plain pip's time, issue 7).
    disable_nagle_algorithm = True
    server_version = "safe-pip-guard"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("proxy: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        guard = self.server.guard
        path = urllib.parse.urlsplit(self.path).path
        parts = path.split("/")
        # "", token, kind, number, name, ""
        if len(parts) < 4 or not secrets.compare_digest(parts[1], self.server.token):
            self._plain(404, "not found\n")
            return
        try:
            if parts[2] == "i" and len(parts) >= 5 and parts[3].isdigit():
                project = urllib.parse.unquote(parts[4])
                if not project:
                    self._plain(404, "safe-pip serves project pages only\n")
                    return
                normal = canonicalize_name(project)
                if len(parts) == 5 or normal != project:
                    self._redirect(f"/{parts[1]}/i/{parts[3]}/{normal}/")
                    return
                served = guard.page(int(parts[3]), normal, self.headers.get("Accept", ""))
                self._send(200, served.content_type, served.body)
            elif parts[2] == "f" and len(parts) == 5 and parts[3].isdigit():
                name = urllib.parse.unquote(parts[4])
                handle, size = guard.fetch_file(int(parts[3]), name)
                with handle:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(size))
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    shutil.copyfileobj(handle, self.wfile, 256 * 1024)
            else:
                self._plain(404, "not found\n")
        except NotFound:
            self._plain(404, "not found\n")
        except Refused:
            # Never answer: pip would read an error as "no candidates here" and carry on with
            # other sources (DESIGN.md). The runner ends pip; this request dies with it.
            guard.closing.wait()
            self.close_connection = True

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _plain(self, status: int, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode())

    def _redirect(self, location: str) -> None:
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()


class Proxy:
    """Runs the guard's HTTP server in a background thread for one run."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.token = secrets.token_urlsafe(18)
        self._server = _Server(guard, self.token)
        port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{port}/{self.token}"
        guard.proxy_base = self.base
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.guard.closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
        with contextlib.suppress(OSError):
            self._server.socket.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
