"""Fault injection for the simulator: what a broken index, CDN or file host does to a client.

Each fault is keyed by a normalised project name (its ``/simple/<p>/`` page and
``/pypi/<p>/json``), a file name on the file host, or an exact request path, and is served
``times`` times (or forever), then the server answers normally again. That lets a test prove
both halves of the guard's promise: a fault that clears within ``--max-wait`` is retried
through; one that does not is refused (exit 75) with nothing installed.

Kinds (:data:`FaultKind`):

* transport, any server: ``"500"``, ``"502"``, ``"503"`` (that status), ``"401"`` (that
  status with a Basic ``WWW-Authenticate`` challenge, whatever credentials came: an index that
  refuses them), ``"403"`` (that status: an index that forbids access), ``"reset"`` (half
  the body, then a TCP reset), ``"truncate"`` (half the body against its Content-Length, then
  a clean close), ``"hang"`` (headers and half the body, then nothing until the server
  stops: a client's read timeout must end it);
* project pages (origin): ``"bad-html"`` (HTML copies carry a hash that is not hex),
  ``"bad-json"`` (JSON copies cut in half), ``"bad-body"`` (both), ``"wrong-type"``
  (``Content-Type: application/octet-stream``), ``"serials-disagree"`` (the header says one
  more than the body), ``"serial-negative"`` and ``"serial-text"`` (every serial ``-3`` or
  ``"3a"``), ``"serial-back"`` (the first request is answered normally, every later one
  with the serial two lower: a serial going backwards between two fetches);
* files (origin's file host): ``"404"``, ``"wrong-bytes"`` (the right length, other bytes),
  and the transport kinds.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Literal

__all__ = ["FaultKind", "Faults"]

FaultKind = Literal[
    "500",
    "502",
    "503",
    "401",
    "403",
    "reset",
    "truncate",
    "hang",
    "bad-html",
    "bad-json",
    "bad-body",
    "wrong-type",
    "serials-disagree",
    "serial-negative",
    "serial-text",
    "serial-back",
    "404",
    "wrong-bytes",
]
TRANSPORT_FAULTS = frozenset({"500", "502", "503", "401", "403", "reset", "truncate", "hang"})
PAGE_FAULTS = TRANSPORT_FAULTS | {
    "bad-html",
    "bad-json",
    "bad-body",
    "wrong-type",
    "serials-disagree",
    "serial-negative",
    "serial-text",
    "serial-back",
}
FILE_FAULTS = TRANSPORT_FAULTS | {"404", "wrong-bytes"}

#: A hung response waits this long at most; the server's stop() ends it at once.
_HANG_SECONDS = 3600.0
_SERIAL_COMMENT = re.compile(rb"<!--SERIAL (\d+)-->")


@dataclass
class _Fault:
    kind: str
    times: int | None  # left to serve; None: forever
    served: int = 0


class Faults:
    """A thread-safe table of faults (see the module docstring). ``served`` counts by key."""

    def __init__(self, allowed: Iterable[str] = PAGE_FAULTS | FILE_FAULTS) -> None:
        self._allowed = frozenset(allowed)
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}
        self.served: Counter[str] = Counter()

    def inject(self, key: str, kind: FaultKind, *, times: int | None = None) -> None:
        """Serve ``kind`` for requests matching ``key`` (``times`` times, or forever)."""
        if kind not in self._allowed:
            raise ValueError(f"fault {kind!r} is not one this server can inject")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for forever)")
        with self._lock:
            self._faults[key] = _Fault(kind, times)

    def clear(self, key: str | None = None) -> None:
        """Remove the fault on ``key``, or every fault."""
        with self._lock:
            if key is None:
                self._faults.clear()
            else:
                self._faults.pop(key, None)

    def take(self, *keys: str) -> tuple[str, int] | None:
        """The fault to serve for a request matching any of ``keys``: (kind, times served
        before), counted as served; None when the request is to be answered normally."""
        with self._lock:
            for key in keys:
                fault = self._faults.get(key)
                if fault is None:
                    continue
                served = fault.served
                fault.served += 1
                self.served[key] += 1
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[key]
                return fault.kind, served
        return None


def send_transport_fault(
    handler: BaseHTTPRequestHandler,
    kind: str,
    body: bytes,
    headers: Iterable[tuple[str, str]],
    stopping: threading.Event,
) -> None:
    """Answer ``handler``'s request with a transport fault (status, reset, truncate, hang)."""
    if kind in ("500", "502", "503", "401", "403"):
        text = f"{kind} fault injected by the simulator\n".encode()
        handler.send_response(int(kind))
        handler.send_header("Content-Type", "text/plain")
        if kind == "401":
            handler.send_header("WWW-Authenticate", 'Basic realm="index"')
        handler.send_header("Content-Length", str(len(text)))
        handler.end_headers()
        handler.wfile.write(text)
        return
    body = body or b"x" * 256
    handler.send_response(200)
    for key, value in headers:
        if key.lower() not in ("content-length", "content-encoding"):
            handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    handler.close_connection = True
    sock: socket.socket = handler.connection
    if kind == "hang":
        stopping.wait(_HANG_SECONDS)
    elif kind == "reset":
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    else:  # truncate: a clean close, short of the promised length
        sock.shutdown(socket.SHUT_WR)


def corrupt_page(
    kind: str, served: int, body: bytes, serial: int, is_json: bool
) -> tuple[bytes, str | None, str | None]:
    """A project page body with a body or serial fault applied.

    Returns (body, header serial text or None to keep it, Content-Type or None to keep it).
    """
    if kind == "wrong-type":
        return body, None, "application/octet-stream"
    if (kind in ("bad-html", "bad-body") and not is_json) and b"#sha256=" in body:
        return body.replace(b"#sha256=", b"#sha256=not-hex-"), None, None
    if kind in ("bad-json", "bad-body") and is_json:
        return body[: len(body) // 2], None, None
    if kind == "serials-disagree":
        return body, str(serial + 1), None
    value: int | str
    if kind == "serial-negative":
        value = -3
    elif kind == "serial-text":
        value = "3a"
    elif kind == "serial-back" and served > 0:
        value = max(serial - 2, 0)
    else:
        return body, None, None
    if is_json:
        doc = json.loads(body)
        if "_last-serial" in doc.get("meta", {}):
            doc["meta"]["_last-serial"] = value
        body = json.dumps(doc).encode()
    else:
        body = _SERIAL_COMMENT.sub(f"<!--SERIAL {value}-->".encode(), body)
    return body, str(value), None
