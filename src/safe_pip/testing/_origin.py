"""The origin of the simulated index: the authority that the CDN (and the guard) ask.

An :class:`Origin` keeps the state a real index keeps (projects, releases, files and an
append-only journal whose ids are the serials) and serves it over real HTTP on 127.0.0.1:
PEP 503 HTML and PEP 691 JSON project pages, the JSON API, the XML-RPC changelog, and, on a
separate port, a file host. Pages are rendered from the current state on every request, so
the origin itself is never stale; staleness comes only from the :class:`~._cdn.CDN` in front.

The HTTP plumbing shared with the CDN (:class:`_Server`, :class:`_Handler`, content
negotiation) lives here too, because the CDN must choose the same variant the origin does.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import html
import json
import socket
import ssl
import sys
import threading
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ._faults import TRANSPORT_FAULTS, Faults, corrupt_page, send_transport_fault
from ._profiles import PYPI, Profile, SerialForm, profile_named
from ._wheels import build_wheel, metadata_of

SerialSource = Literal["header", "json-meta", "html-comment"]
ChangelogFault = Literal["401", "403", "405", "500", "garbage", "timeout"]

#: Every place a real index puts a project's serial (PyPI puts it in all three).
ALL_SERIAL_SOURCES: frozenset[str] = PYPI.serial_sources

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_V1_TYPE = "application/vnd.pypi.simple.v1+html"
HTML_TYPE = "text/html"
# Server preference on a tie (e.g. "*/*" or no Accept): HTML first, as the real index does.
_OFFERS = (HTML_TYPE, HTML_V1_TYPE, JSON_TYPE)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_V1_TYPE,
}
_CONTENT_TYPES = {
    JSON_TYPE: JSON_TYPE,
    HTML_V1_TYPE: HTML_V1_TYPE,
    HTML_TYPE: "text/html; charset=utf-8",
}
_CACHE_CONTROL = "max-age=600, public"
# The timeout fault sleeps this long at most; stop() interrupts it at once.
_TIMEOUT_FAULT_SECONDS = 3600.0


def _q_value(params: str) -> float:
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None, *, json_pages: bool = True) -> str:
    """The media type the index answers ``accept`` with (one of the three simple-API types).

    Roughly RFC 9110: the most specific range matching an offer gives its q; the highest q
    wins; ties go to the range the client listed first, then to HTML. Nothing acceptable, or
    no header, gives ``text/html`` (the index never answers 406). An index without JSON pages
    (``json_pages=False``) answers ``text/html`` whatever is asked, as static servers do.
    """
    if not accept or not json_pages:
        return HTML_TYPE
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        if media:
            ranges.append((_ALIASES.get(media, media), _q_value(params)))
    best: tuple[float, int, int] | None = None
    chosen = HTML_TYPE
    for offer in _OFFERS:
        match: tuple[float, int, int] | None = None  # (q, specificity, -position)
        for position, (media, q) in enumerate(ranges):
            if media == offer:
                specificity = 2
            elif media == offer.split("/")[0] + "/*":
                specificity = 1
            elif media == "*/*":
                specificity = 0
            else:
                continue
            if match is None or specificity > match[1]:
                match = (q, specificity, -position)
        if match is None or match[0] <= 0:
            continue
        if best is None or match > best:
            best, chosen = match, offer
    return chosen


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows a gzip body."""
    for part in (accept_encoding or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip") and _q_value(params) > 0:
            return True
    return False


# --------------------------------------------------------------------------- HTTP plumbing

_OwnerT = TypeVar("_OwnerT")


class _Server(ThreadingHTTPServer, Generic[_OwnerT]):
    """A threaded HTTP server on 127.0.0.1 (random port) that can stop promptly.

    It remembers every open socket (client connections and, for the CDN, upstream ones) so
    that :meth:`stop` can shut them down: a handler blocked on a keep-alive read, a slow
    upstream or the changelog timeout fault then returns at once instead of holding a port.
    """

    daemon_threads = True
    request_queue_size = 64  # a resolver (or a guard's proxy) may open many connections at once

    def __init__(
        self, handler: type[_Handler], owner: _OwnerT, tls: ssl.SSLContext | None = None
    ) -> None:
        self.owner = owner
        self.tls = tls
        self.stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake runs on the first read, in the request's own thread, so a client
            # that stalls in it cannot hold up the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def watch(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.add(sock)

    def unwatch(self, sock: socket.socket | None) -> None:
        if sock is not None:
            with self._sockets_lock:
                self._sockets.discard(sock)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(request, socket.socket):
            self.watch(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            self.unwatch(request)
        super().shutdown_request(request)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A client that hangs up, or a stop() in mid-request, is normal here, not an error.
        if self.stopping.is_set() or isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    """Request handler base: HTTP/1.1 keep-alive, quiet, with interruptible delays."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK then costs ~40 ms per response.
    disable_nagle_algorithm = True
    timeout = 30  # an idle keep-alive connection is dropped after this many seconds
    server: _Server[Any]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines; tests read counters, not stderr."""

    def pause(self, seconds: float) -> None:
        """Sleep (simulated latency), but wake up as soon as the server stops."""
        if seconds > 0:
            self.server.stopping.wait(seconds)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        *,
        compress: bool = False,
    ) -> None:
        """Send a complete response; gzip it if ``compress`` and the client accepts gzip."""
        header_list = list(headers)
        if compress and accepts_gzip(self.headers.get("Accept-Encoding")):
            body = gzip.compress(body, mtime=0)  # mtime=0: identical bytes for equal pages
            header_list.append(("Content-Encoding", "gzip"))
        self.send_response(status)
        for key, value in header_list:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self) -> None:
        self.respond(404, b"Not Found\n", [("Content-Type", "text/plain; charset=utf-8")])


# --------------------------------------------------------------------------- index state


class JournalEntry(NamedTuple):
    """One changelog row, in the order and types ``changelog_since_serial`` returns them."""

    name: str  # display name, as the real changelog gives it
    version: str | None  # None for project-level entries (create, remove project, roles)
    timestamp: int
    action: str
    serial: int


@dataclass
class _File:
    filename: str
    data: bytes
    metadata: bytes
    sha256: str
    metadata_sha256: str
    requires_python: str | None
    upload_time: datetime  # naive UTC, as the real index stores it
    available_at: float  # time.monotonic() from which the file host serves it
    with_metadata: bool

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def url_path(self) -> str:
        return f"/packages/{self.sha256[:2]}/{self.sha256[2:16]}/{self.filename}"


@dataclass
class _Release:
    version: str
    files: dict[str, _File] = field(default_factory=dict)
    yanked: bool = False
    yanked_reason: str = ""


@dataclass
class _Project:
    name: str  # display name from the first upload
    releases: dict[str, _Release] = field(default_factory=dict)


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:  # pragma: no cover - publish() refuses invalid versions
        return (0, version)


def _with_zip_comment(data: bytes, comment: bytes) -> bytes:
    """A zip archive written without a comment, given one: the end-of-central-directory
    record is its last 22 bytes and ends with the comment's length."""
    if len(comment) > 0xFFFF or data[-22:-18] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        raise ValueError("not a zip archive without a comment")
    return data[:-2] + len(comment).to_bytes(2, "little") + comment


def _iso(moment: datetime) -> str:
    # The real index formats naive-UTC datetimes with isoformat() and a literal "Z".
    return moment.isoformat() + "Z"


def _to_naive_utc(moment: datetime | float | None) -> datetime:
    if moment is None:
        moment = time.time()
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, tz=timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


class Origin:
    """A package index origin with a journal, served on 127.0.0.1 (see the module docstring).

    Use as a context manager (or call :meth:`start` / :meth:`stop`). Mutating methods write
    journal entries with the real index's action strings and return the last serial
    written. Knobs that tests flip at run time are plain attributes:

    - ``profile``: the kind of index simulated (:mod:`._profiles`: ``"pypi"``, the default,
      ``"bandersnatch"``, ``"proxy-mirror"``, ``"devpi"``, ``"plain"``). It sets the knobs below
      that are not given, what the pages carry (metadata files, PEP 700, 740 and 792 fields,
      JSON or not), and whether ``POST /pypi`` answers the changelog or 405. The journal the
      index follows is always at :attr:`upstream_changelog_url` (for a mirror: its upstream's).
    - ``serial_sources``: which of ``"header"``, ``"json-meta"`` (PEP 691 ``meta._last-serial``
      and the JSON API's ``last_serial``), ``"html-comment"`` are emitted; empty simulates a
      static mirror.
    - ``fake_serial``: emit this constant instead of the real serial (a proxy product does).
    - ``json_serial_form``: ``"int"`` writes PEP 691 ``meta._last-serial`` as a JSON number
      (as the real index does), ``"str"`` as a string of digits (as bandersnatch mirrors do).
    - ``changelog_fault``: ``None``, ``"401"`` (with a Basic challenge, whatever credentials
      came), ``"403"``, ``"405"``, ``"500"``, ``"garbage"`` or ``"timeout"``.
    - ``changelog_page_size``: most rows one ``changelog_since_serial`` call returns.
    - ``latency``: seconds added to every request, on both the index and the file host.
    - ``faults``: a :class:`~._faults.Faults` table: per project, file name or path, a status,
      a reset, a truncated or hung body, a malformed page or serial, wrong file bytes.
    - ``basic_auth``: ``(user, password)`` the index host (pages, JSON API, changelog)
      requires, or None; the file host never requires it (as on the real index).
      ``authorization_seen`` records ``(host, path, Authorization header or None)``.
    - ``tls`` (constructor only): an SSL context; both hosts then serve HTTPS
      (see :mod:`._tls`).

    ``calls`` counts XML-RPC calls per method name (also those answered with a fault).
    """

    def __init__(
        self,
        *,
        profile: Profile | str = PYPI,
        changelog_page_size: int = 50000,
        serial_sources: Collection[str] | None = None,
        fake_serial: int | None = None,
        json_serial_form: SerialForm | None = None,
        changelog_fault: ChangelogFault | None = None,
        latency: float = 0.0,
        tls: ssl.SSLContext | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.tls = tls
        self.basic_auth = basic_auth
        self.faults = Faults()
        self.authorization_seen: list[tuple[str, str, str | None]] = []
        self.profile = profile_named(profile)
        self.changelog_page_size = changelog_page_size
        self.serial_sources: Collection[str] = frozenset(
            self.profile.serial_sources if serial_sources is None else serial_sources
        )
        self.fake_serial = fake_serial
        self.json_serial_form: SerialForm = json_serial_form or self.profile.json_serial_form
        self.changelog_fault: ChangelogFault | None = changelog_fault
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._projects: dict[str, _Project] = {}
        self._journal: list[JournalEntry] = []
        self._project_serials: dict[str, int] = {}
        self._content_serials: dict[str, int] = {}
        self._files: dict[str, _File] = {}  # live files by file name
        self._used_filenames: set[str] = set()
        self._listeners: list[Callable[[str], None]] = []
        self._index_server: _Server[Origin] | None = None
        self._file_server: _Server[Origin] | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Origin:
        """Start the index and the file host, each on its own random port."""
        if self._index_server is not None:
            raise RuntimeError("origin already started")
        self._index_server = _Server(_IndexHandler, self, self.tls)
        self._file_server = _Server(_FileHandler, self, self.tls)
        self._index_server.start()
        self._file_server.start()
        return self

    def stop(self) -> None:
        """Stop both servers; requests in flight (even a timeout fault) end at once."""
        for server in (self._index_server, self._file_server):
            if server is not None:
                server.stop()

    def __enter__(self) -> Origin:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _server(self, server: _Server[Origin] | None) -> _Server[Origin]:
        if server is None:
            raise RuntimeError("origin not started")
        return server

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the index (pages, JSON API, changelog)."""
        return self._server(self._index_server).url

    @property
    def simple_url(self) -> str:
        return self.url + "/simple/"

    @property
    def changelog_url(self) -> str:
        """Where to POST XML-RPC changelog calls."""
        return self.url + "/pypi"

    def media_type(self, accept: str | None) -> str:
        """The media type this index answers ``accept`` with (its profile may have no JSON)."""
        return negotiate(accept, json_pages=self.profile.json_pages)

    @property
    def upstream_changelog_url(self) -> str:
        """The changelog of the journal this index follows, whatever its profile: for PyPI its
        own ``/pypi``; for a mirror, its upstream's (the mirror's serials are the upstream's)."""
        return self.url + "/upstream/pypi"

    @property
    def files_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the file host (another port, as on the real index)."""
        return self._server(self._file_server).url

    # ----------------------------------------------------------------- listeners

    def add_purge_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(normalized_project_name)`` after every content change."""
        with self._lock:
            self._listeners.append(callback)

    def remove_purge_listener(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify(self, key: str) -> None:
        # Called after the state changed and outside the lock, so a listener that looks
        # at the time it is called sees a moment at or after the change.
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback(key)

    # ----------------------------------------------------------------- journal

    def _write(self, key: str, version: str | None, action: str, *, content: bool) -> int:
        serial = len(self._journal) + 1
        name = self._projects[key].name
        self._journal.append(JournalEntry(name, version, int(time.time()), action, serial))
        self._project_serials[key] = serial
        if content:
            self._content_serials[key] = serial
        return serial

    def _project(self, name: str) -> tuple[str, _Project]:
        key = canonicalize_name(name)
        project = self._projects.get(key)
        if project is None:
            raise KeyError(f"no project {name!r} on the index")
        return key, project

    def _release(self, name: str, version: str) -> tuple[str, _Project, _Release]:
        key, project = self._project(name)
        release = project.releases.get(version)
        if release is None:
            raise KeyError(f"no release {name} {version} on the index")
        return key, project, release

    # ----------------------------------------------------------------- operations

    def publish(
        self,
        name: str,
        version: str,
        *,
        requires: Iterable[str] = (),
        requires_python: str | None = None,
        upload_time: datetime | float | None = None,
        file_delay: float = 0.0,
        with_metadata: bool | None = None,
        payload_size: int = 0,
    ) -> int:
        """Upload a wheel of ``name`` ``version``; return the serial of the last entry.

        Writes ``create`` (first upload of the project), ``new release`` and
        ``add py3 file <filename>``. ``upload_time`` (datetime, naive meaning UTC, or epoch
        seconds) defaults to now; it is the PEP 700 ``upload-time`` on the page.
        ``file_delay``: the file host answers 404 for the file (and its ``.metadata``) for
        that many seconds, as when a page lists a file before the file host has it.
        ``with_metadata``: serve a PEP 658 metadata file for it (default: as the profile does).
        A file name is never accepted twice, even after removal (as on the real index).
        """
        Version(version)  # raises InvalidVersion (a ValueError) as the index would refuse
        filename, data = build_wheel(
            name,
            version,
            requires=tuple(requires),
            requires_python=requires_python,
            payload_size=payload_size,
        )
        metadata = metadata_of(data)
        key = canonicalize_name(name)
        with self._lock:
            if filename in self._used_filenames:
                raise ValueError(f"file name {filename} was already used on this index")
            if key not in self._projects:
                self._projects[key] = _Project(name)
                self._write(key, None, "create", content=True)
            project = self._projects[key]
            release = project.releases.get(version)
            if release is None:
                release = project.releases[version] = _Release(version)
                self._write(key, version, "new release", content=True)
            file = _File(
                filename=filename,
                data=data,
                metadata=metadata,
                sha256=hashlib.sha256(data).hexdigest(),
                metadata_sha256=hashlib.sha256(metadata).hexdigest(),
                requires_python=requires_python,
                upload_time=_to_naive_utc(upload_time),
                available_at=time.monotonic() + file_delay,
                with_metadata=(
                    self.profile.metadata_files if with_metadata is None else with_metadata
                ),
            )
            release.files[filename] = file
            self._files[filename] = file
            self._used_filenames.add(filename)
            serial = self._write(key, version, f"add py3 file {filename}", content=True)
        self._notify(key)
        return serial

    def add_wheels(self, name: str, version: str, tags: Iterable[str]) -> int:
        """List more wheels of a published release, one per wheel tag; return the last serial.

        A tag is ``python-abi-platform`` (``"cp312-cp312-manylinux_2_17_x86_64"``). Real
        pages list a wheel per platform and Python; building each would make a page of
        thousands of files slow to publish. Each added wheel is instead the release's first
        wheel with a zip comment of its own (a valid wheel with its own hash, installable if
        a client picks it) and shares that wheel's metadata file. Writes one
        ``add <python tag> file <filename>`` entry per wheel and purges once.
        """
        key = canonicalize_name(name)
        with self._lock:
            _, _, release = self._release(name, version)
            if not release.files:
                raise KeyError(f"release {name} {version} has no file to copy")
            base = next(iter(release.files.values()))
            prefix = base.filename.rsplit("-", 3)[0]  # "<name>-<version>"
            serial = self.project_serial(name)
            for tag in tags:
                filename = f"{prefix}-{tag}.whl"
                if filename in self._used_filenames:
                    raise ValueError(f"file name {filename} was already used on this index")
                data = _with_zip_comment(base.data, filename.encode("utf-8"))
                file = _File(
                    filename=filename,
                    data=data,
                    metadata=base.metadata,
                    sha256=hashlib.sha256(data).hexdigest(),
                    metadata_sha256=base.metadata_sha256,
                    requires_python=base.requires_python,
                    upload_time=base.upload_time,
                    available_at=base.available_at,
                    with_metadata=base.with_metadata,
                )
                release.files[filename] = file
                self._files[filename] = file
                self._used_filenames.add(filename)
                action = f"add {tag.split('-', 1)[0]} file {filename}"
                serial = self._write(key, version, action, content=True)
        self._notify(key)
        return serial

    def yank(self, name: str, version: str, reason: str = "") -> int:
        """Yank a release (PEP 592); writes ``yank release``."""
        with self._lock:
            key, _, release = self._release(name, version)
            release.yanked, release.yanked_reason = True, reason
            serial = self._write(key, version, "yank release", content=True)
        self._notify(key)
        return serial

    def unyank(self, name: str, version: str) -> int:
        """Undo a yank; writes ``unyank release``."""
        with self._lock:
            key, _, release = self._release(name, version)
            release.yanked, release.yanked_reason = False, ""
            serial = self._write(key, version, "unyank release", content=True)
        self._notify(key)
        return serial

    def remove_file(self, name: str, filename: str) -> int:
        """Delete one file (the release stays); writes ``remove file <filename>``."""
        with self._lock:
            key, project = self._project(name)
            for release in project.releases.values():
                if filename in release.files:
                    del release.files[filename]
                    self._files.pop(filename, None)
                    serial = self._write(
                        key, release.version, f"remove file {filename}", content=True
                    )
                    break
            else:
                raise KeyError(f"no file {filename} in project {name!r}")
        self._notify(key)
        return serial

    def remove_release(self, name: str, version: str) -> int:
        """Delete a release and its files; writes ``remove release``."""
        with self._lock:
            key, project, release = self._release(name, version)
            for filename in release.files:
                self._files.pop(filename, None)
            del project.releases[version]
            serial = self._write(key, version, "remove release", content=True)
        self._notify(key)
        return serial

    def remove_project(self, name: str) -> int:
        """Delete a project; its page answers 404. Writes ``remove project``."""
        with self._lock:
            key, project = self._project(name)
            for release in project.releases.values():
                for filename in release.files:
                    self._files.pop(filename, None)
            serial = self._write(key, None, "remove project", content=True)
            del self._projects[key]
        self._notify(key)
        return serial

    def role_change(self, name: str, user: str = "someone") -> int:
        """Add an owner; writes ``add Owner <user>``.

        Like the real index, this raises the project's ``last_serial`` but changes nothing
        on its page and purges nothing, so cached pages stay one serial behind the journal.
        """
        with self._lock:
            key, _ = self._project(name)
            return self._write(key, None, f"add Owner {user}", content=False)

    # ----------------------------------------------------------------- read access

    @property
    def last_serial(self) -> int:
        """The global serial: the highest journal id."""
        with self._lock:
            return len(self._journal)

    @property
    def journal(self) -> list[JournalEntry]:
        """A copy of the whole journal, in serial order."""
        with self._lock:
            return list(self._journal)

    def project_serial(self, name: str) -> int:
        """The project's ``last_serial``: its highest journal id, of any action kind."""
        with self._lock:
            return self._project_serials[canonicalize_name(name)]

    def content_serial(self, name: str) -> int:
        """The project's highest journal id of a content-changing entry (not roles)."""
        with self._lock:
            return self._content_serials[canonicalize_name(name)]

    def file_bytes(self, filename: str) -> bytes:
        """The bytes of a live file (e.g. to install it directly in a test)."""
        with self._lock:
            return self._files[filename].data

    def file_url(self, filename: str) -> str:
        """The absolute URL of a live file on the file host."""
        with self._lock:
            return self.files_url + self._files[filename].url_path

    # ----------------------------------------------------------------- rendering

    def _emitted_serial(self, real: int) -> int:
        fake = self.fake_serial
        return real if fake is None else fake

    def _json_serial(self, serial: int) -> int | str:
        """``meta._last-serial`` in the form the simulated index writes it."""
        return str(serial) if self.json_serial_form == "str" else serial

    def _files_of(self, project: _Project) -> list[tuple[_Release, _File]]:
        rows = []
        for version in sorted(project.releases, key=_version_key):
            release = project.releases[version]
            for filename in sorted(release.files):
                rows.append((release, release.files[filename]))
        return rows

    def _render_project(self, name: str, media_type: str) -> tuple[bytes, int] | None:
        """The project page body in ``media_type``, and the serial to put in the header."""
        key = canonicalize_name(name)
        sources = self.serial_sources
        with self._lock:
            project = self._projects.get(key)
            if project is None:
                return None
            serial = self._emitted_serial(self._project_serials[key])
            files = self._files_of(project)
            files_url = self.files_url
            versions = sorted(project.releases, key=_version_key)
            display = project.name
        kind = self.profile
        if media_type == JSON_TYPE:
            meta: dict[str, object] = {"api-version": kind.api_version}
            if "json-meta" in sources:
                meta["_last-serial"] = self._json_serial(serial)
            json_files = []
            for number, (release, file) in enumerate(files):
                entry: dict[str, object] = {
                    "filename": file.filename,
                    "url": files_url + file.url_path,
                    "hashes": {"sha256": file.sha256},
                }
                if file.requires_python is not None:
                    entry["requires-python"] = file.requires_python
                entry["yanked"] = (release.yanked_reason or True) if release.yanked else False
                core: dict[str, str] | bool = (
                    {"sha256": file.metadata_sha256} if file.with_metadata else False
                )
                entry["core-metadata"] = core
                entry["data-dist-info-metadata"] = core
                if kind.upload_times == "all" or (kind.upload_times == "some" and number % 2):
                    entry["upload-time"] = _iso(file.upload_time)
                if kind.pep700_fields:
                    entry["size"] = file.size
                if kind.provenance:
                    entry["provenance"] = None  # PyPI writes null for a file without one
                json_files.append(entry)
            body: dict[str, object] = {"meta": meta, "name": display, "files": json_files}
            if kind.pep700_fields:
                body["versions"] = versions
            if kind.project_status:
                body["project-status"] = {"status": "active"}
            return json.dumps(body).encode("utf-8"), serial
        head = [f'    <meta name="pypi:repository-version" content="{kind.api_version}">']
        if kind.project_status:
            head.append('    <meta name="pypi:project-status" content="active">')
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            "  <head>",
            *head,
            f"    <title>Links for {html.escape(display)}</title>",
            "  </head>",
            "  <body>",
            f"    <h1>Links for {html.escape(display)}</h1>",
        ]
        for release, file in files:
            href = html.escape(f"{files_url}{file.url_path}#sha256={file.sha256}")
            attrs = [f'href="{href}"']
            if file.requires_python is not None:
                attrs.append(f'data-requires-python="{html.escape(file.requires_python)}"')
            if release.yanked:
                attrs.append(f'data-yanked="{html.escape(release.yanked_reason)}"')
            if file.with_metadata:
                attrs.append(f'data-dist-info-metadata="sha256={file.metadata_sha256}"')
                attrs.append(f'data-core-metadata="sha256={file.metadata_sha256}"')
            lines.append(f"    <a {' '.join(attrs)}>{html.escape(file.filename)}</a><br />")
        lines += ["  </body>", "</html>"]
        if "html-comment" in sources:
            lines.append(f"<!--SERIAL {serial}-->")
        return ("\n".join(lines) + "\n").encode("utf-8"), serial

    def _render_root(self, media_type: str) -> tuple[bytes, int]:
        sources = self.serial_sources
        with self._lock:
            serial = self._emitted_serial(len(self._journal))
            projects = sorted(
                (key, p.name, self._emitted_serial(self._project_serials[key]))
                for key, p in self._projects.items()
            )
        if media_type == JSON_TYPE:
            meta: dict[str, object] = {"api-version": self.profile.api_version}
            if "json-meta" in sources:
                meta["_last-serial"] = self._json_serial(serial)
            rows = [{"name": name, "_last-serial": self._json_serial(s)} for _, name, s in projects]
            return json.dumps({"meta": meta, "projects": rows}).encode("utf-8"), serial
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            "  <head>",
            f'    <meta name="pypi:repository-version" content="{self.profile.api_version}">',
            "    <title>Simple index</title>",
            "  </head>",
            "  <body>",
        ]
        for key, name, _ in projects:
            lines.append(f'    <a href="/simple/{key}/">{html.escape(name)}</a>')
        lines += ["  </body>", "</html>"]
        if "html-comment" in sources:
            lines.append(f"<!--SERIAL {serial}-->")
        return ("\n".join(lines) + "\n").encode("utf-8"), serial

    def _render_json_api(self, name: str) -> tuple[bytes, int] | None:
        key = canonicalize_name(name)
        with self._lock:
            project = self._projects.get(key)
            if project is None or not project.releases:
                return None
            serial = self._emitted_serial(self._project_serials[key])
            files_url = self.files_url
            releases: dict[str, list[dict[str, object]]] = {}
            for version in sorted(project.releases, key=_version_key):
                release = project.releases[version]
                releases[version] = [
                    {
                        "filename": file.filename,
                        "url": files_url + file.url_path,
                        "digests": {"sha256": file.sha256},
                        "packagetype": "bdist_wheel",
                        "python_version": "py3",
                        "requires_python": file.requires_python,
                        "size": file.size,
                        "upload_time_iso_8601": _iso(file.upload_time),
                        "yanked": release.yanked,
                        "yanked_reason": release.yanked_reason or None,
                    }
                    for _, file in sorted(release.files.items())
                ]
            live = [v for v, r in project.releases.items() if not r.yanked]
            stable = [v for v in live if not Version(v).is_prerelease]
            latest = max(stable or live or list(project.releases), key=_version_key)
            info = {
                "name": project.name,
                "version": latest,
                "requires_python": next(
                    (f.requires_python for f in project.releases[latest].files.values()), None
                ),
                "yanked": project.releases[latest].yanked,
            }
        body: dict[str, object] = {
            "info": info,
            "releases": releases,
            "urls": releases[latest],
            "vulnerabilities": [],
        }
        if "json-meta" in self.serial_sources:
            body["last_serial"] = serial
        return json.dumps(body).encode("utf-8"), serial

    # ----------------------------------------------------------------- XML-RPC

    def _changelog_call(self, method: str, params: tuple[Any, ...]) -> object:
        if method == "changelog_last_serial" and not params:
            return self.last_serial
        if method == "changelog_since_serial" and len(params) == 1:
            since = int(params[0])
            with self._lock:
                rows = [e for e in self._journal if e.serial > since]
                rows = rows[: max(self.changelog_page_size, 0)]
            return [list(row) for row in rows]
        if method == "list_packages_with_serial" and not params:
            with self._lock:
                return {p.name: self._project_serials[k] for k, p in self._projects.items()}
        if method in ("changelog_last_serial", "changelog_since_serial"):
            raise xmlrpc.client.Fault(-32602, f"server error; invalid parameters for {method}")
        if method == "list_packages_with_serial":
            raise xmlrpc.client.Fault(-32602, f"server error; invalid parameters for {method}")
        raise xmlrpc.client.Fault(-32601, f"server error; requested method {method} not found")

    def _count_call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1


class _IndexHandler(_Handler):
    """The index host: /simple/, /pypi/<p>/json and the XML-RPC endpoint POST /pypi."""

    server: _Server[Origin]

    def do_GET(self) -> None:
        origin = self.server.owner
        self.pause(origin.latency)
        path = urlsplit(self.path).path
        if not self._authorized():
            return
        if path == "/simple/":
            media_type = origin.media_type(self.headers.get("Accept"))
            body, serial = origin._render_root(media_type)
            self._send_page(body, serial, media_type)
            return
        if path.startswith("/simple/"):
            segment, slash, rest = path[len("/simple/") :].partition("/")
            name = unquote(segment)
            if not segment or rest:
                self.not_found()
                return
            canonical = canonicalize_name(name)
            if not slash or name != canonical:
                # Real indexes redirect both a missing slash and a non-normalized name.
                self.respond(301, b"", [("Location", f"/simple/{canonical}/")])
                return
            media_type = origin.media_type(self.headers.get("Accept"))
            fault = origin.faults.take(canonical, path)
            page = origin._render_project(canonical, media_type)
            if page is None:
                self.not_found()
                return
            self._send_page(page[0], page[1], media_type, fault)
            return
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "pypi" and parts[3] == "json" and parts[2]:
            api = origin._render_json_api(unquote(parts[2]))
            if api is None:
                self.not_found()
                return
            headers = [("Content-Type", "application/json"), ("Cache-Control", _CACHE_CONTROL)]
            if "header" in origin.serial_sources:
                headers.append(("X-PyPI-Last-Serial", str(api[1])))
            headers.append(("Vary", "Accept-Encoding"))
            fault = origin.faults.take(canonicalize_name(unquote(parts[2])), path)
            if fault is not None and fault[0] in TRANSPORT_FAULTS:
                send_transport_fault(self, fault[0], api[0], headers, self.server.stopping)
                return
            self.respond(200, api[0], headers, compress=True)
            return
        self.not_found()

    do_HEAD = do_GET

    def _send_page(
        self, body: bytes, serial: int, media_type: str, fault: tuple[str, int] | None = None
    ) -> None:
        content_type, serial_text = _CONTENT_TYPES[media_type], str(serial)
        if fault is not None and fault[0] not in TRANSPORT_FAULTS:
            body, new_serial, new_type = corrupt_page(
                fault[0], fault[1], body, serial, media_type == JSON_TYPE
            )
            serial_text, content_type = new_serial or serial_text, new_type or content_type
        headers = [("Content-Type", content_type), ("Cache-Control", _CACHE_CONTROL)]
        if "header" in self.server.owner.serial_sources:
            headers.append(("X-PyPI-Last-Serial", serial_text))
        headers.append(("Vary", "Accept, Accept-Encoding"))
        if fault is not None and fault[0] in TRANSPORT_FAULTS:
            send_transport_fault(self, fault[0], body, headers, self.server.stopping)
            return
        self.respond(200, body, headers, compress=True)

    def _authorized(self) -> bool:
        """Check Basic auth when the origin requires it; answer 401 and False if it fails."""
        origin = self.server.owner
        given = self.headers.get("Authorization")
        with origin._lock:
            origin.authorization_seen.append(("index", urlsplit(self.path).path, given))
        if origin.basic_auth is None:
            return True
        user, password = origin.basic_auth
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if given is not None and hmac.compare_digest(given, expected):
            return True
        headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="index"')]
        self.respond(401, b"Unauthorized\n", headers)
        return False

    def do_POST(self) -> None:
        origin = self.server.owner
        body = self.read_body()
        self.pause(origin.latency)
        if not self._authorized():
            return
        endpoint = urlsplit(self.path).path.rstrip("/")
        if endpoint not in ("/pypi", "/upstream/pypi"):
            self.not_found()
            return
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except Exception:  # any unparseable body is the client's error
            bad = b"Bad Request: not an XML-RPC call\n"
            self.respond(400, bad, [("Content-Type", "text/plain")])
            return
        method = method or ""
        origin._count_call(method)
        fault = origin.changelog_fault
        if fault is None and endpoint == "/pypi" and not origin.profile.changelog:
            fault = "405"  # a mirror has no changelog of its own
        if fault == "401":
            headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="x"')]
            self.respond(401, b"Unauthorized\n", headers)
            return
        if fault == "403":
            self.respond(403, b"Forbidden\n", [("Content-Type", "text/plain")])
            return
        if fault == "405":
            headers = [("Content-Type", "text/plain"), ("Allow", "GET")]
            self.respond(405, b"Method Not Allowed\n", headers)
            return
        if fault == "500":
            self.respond(500, b"Internal Server Error\n", [("Content-Type", "text/plain")])
            return
        if fault == "garbage":
            garbage = b"<?xml version='1.0'?>\n<methodResponse><params><param><value><int>1"
            self.respond(200, garbage, [("Content-Type", "text/xml")])
            return
        if fault == "timeout":
            # Longer than any client timeout; stop() sets the event and ends it at once.
            self.server.stopping.wait(_TIMEOUT_FAULT_SECONDS)
            self.close_connection = True
            return
        try:
            result: Any = origin._changelog_call(method, tuple(params))  # marshallable
            payload = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        except xmlrpc.client.Fault as err:
            payload = xmlrpc.client.dumps(err, methodresponse=True, allow_none=True)
        self.respond(200, payload.encode("utf-8"), [("Content-Type", "text/xml")])


class _FileHandler(_Handler):
    """The file host: /packages/<sha-prefix>/<filename> and its PEP 658 ``.metadata``."""

    server: _Server[Origin]

    def do_GET(self) -> None:
        origin = self.server.owner
        self.pause(origin.latency)
        parts = urlsplit(self.path).path.split("/")
        if len(parts) != 5 or parts[1] != "packages":
            self.not_found()
            return
        name = unquote(parts[4])
        seen = ("files", self.path, self.headers.get("Authorization"))
        with origin._lock:
            origin.authorization_seen.append(seen)
        fault = origin.faults.take(name, self.path)
        want_metadata = name.endswith(".metadata")
        filename = name[: -len(".metadata")] if want_metadata else name
        with origin._lock:
            file = origin._files.get(filename)
        if (
            file is None
            or file.url_path != "/".join(parts[:4]) + "/" + filename
            or time.monotonic() < file.available_at
            or (want_metadata and not file.with_metadata)
        ):
            self.not_found()
            return
        body = file.metadata if want_metadata else file.data
        headers = [("Content-Type", "application/octet-stream")]
        if fault is not None and fault[0] == "404":
            self.not_found()
        elif fault is not None and fault[0] == "wrong-bytes":
            self.respond(200, bytes(255 - b for b in body), headers)
        elif fault is not None and fault[0] in TRANSPORT_FAULTS:
            send_transport_fault(self, fault[0], body, headers, self.server.stopping)
        else:
            self.respond(200, body, headers)

    do_HEAD = do_GET
