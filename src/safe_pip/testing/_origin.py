"""The origin of the simulated index: the authority that the CDN (and the guard) ask.

An :class:`Origin` is an :class:`~._journal.IndexState` served over real HTTP on 127.0.0.1:
PEP 503 HTML and PEP 691 JSON project pages (:mod:`._pages`), the JSON API, the XML-RPC
changelog (:mod:`._changelog`) at ``/pypi`` and, for the journal a mirror follows,
``/upstream/pypi``; and, on a separate port, a file host. Pages are rendered from the current
state on every request, so the origin itself is never stale; staleness comes only from the
:class:`~._cdn.CDN` in front.
"""

from __future__ import annotations

import base64
import hmac
import ssl
import time
from collections import Counter
from collections.abc import Collection
from types import TracebackType
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from ._changelog import ChangelogFault, read_call, send_fault, send_result
from ._faults import TRANSPORT_FAULTS, Faults, corrupt_page, send_transport_fault
from ._http import CONTENT_TYPES, JSON_TYPE, Handler, Server, negotiate
from ._journal import IndexState
from ._pages import PageStyle, json_api, project_page, root_page
from ._profiles import PYPI, Profile, SerialForm

_CACHE_CONTROL = "max-age=600, public"


class Origin(IndexState):
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
        super().__init__(profile)
        self.tls = tls
        self.basic_auth = basic_auth
        self.faults = Faults()
        self.authorization_seen: list[tuple[str, str, str | None]] = []
        self.changelog_page_size = changelog_page_size
        self.serial_sources: Collection[str] = frozenset(
            self.profile.serial_sources if serial_sources is None else serial_sources
        )
        self.fake_serial = fake_serial
        self.json_serial_form: SerialForm = json_serial_form or self.profile.json_serial_form
        self.changelog_fault: ChangelogFault | None = changelog_fault
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self._index_server: Server[Origin] | None = None
        self._file_server: Server[Origin] | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Origin:
        """Start the index and the file host, each on its own random port."""
        if self._index_server is not None:
            raise RuntimeError("origin already started")
        self._index_server = Server(_IndexHandler, self, self.tls)
        self._file_server = Server(_FileHandler, self, self.tls)
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

    def _server(self, server: Server[Origin] | None) -> Server[Origin]:
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

    def file_url(self, filename: str) -> str:
        """The absolute URL of a live file on the file host."""
        with self._lock:
            return self.files_url + self._files[filename].url_path

    # ----------------------------------------------------------------- pages

    def _emitted(self, real: int) -> int:
        fake = self.fake_serial
        return real if fake is None else fake

    def _style(self) -> PageStyle:
        return PageStyle(self.profile, self.serial_sources, self.json_serial_form, self.files_url)

    def _render_project(self, name: str, media_type: str) -> tuple[bytes, int] | None:
        """The project page body in ``media_type``, and the serial to put in the header."""
        found = self._snapshot(name)
        if found is None:
            return None
        project, serial = found[0], self._emitted(found[1])
        return project_page(project, serial, media_type, self._style()), serial

    def _render_root(self, media_type: str) -> tuple[bytes, int]:
        real, rows = self._listing()
        serial = self._emitted(real)
        projects = [(key, name, self._emitted(s)) for key, name, s in rows]
        return root_page(projects, serial, media_type, self._style()), serial

    def _render_json_api(self, name: str) -> tuple[bytes, int] | None:
        found = self._snapshot(name)
        if found is None or not found[0].releases:
            return None
        project, serial = found[0], self._emitted(found[1])
        return json_api(project, serial, self._style()), serial

    def _count_call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1


class _IndexHandler(Handler):
    """The index host: /simple/, /pypi/<p>/json and the XML-RPC endpoint POST /pypi."""

    server: Server[Origin]

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
        content_type, serial_text = CONTENT_TYPES[media_type], str(serial)
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
        call = read_call(self, body)
        if call is None:
            return
        method, params = call
        origin._count_call(method)
        fault = origin.changelog_fault
        if fault is None and endpoint == "/pypi" and not origin.profile.changelog:
            fault = "405"  # a mirror has no changelog of its own
        if fault is not None:
            send_fault(self, fault)
            return
        page_size = origin.changelog_page_size
        send_result(self, lambda: origin._changelog_call(method, params, page_size))


class _FileHandler(Handler):
    """The file host: /packages/<sha-prefix>/<filename> and its PEP 658 ``.metadata``."""

    server: Server[Origin]

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
        file = origin._live_file(filename)
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
