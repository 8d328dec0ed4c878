"""A mirror of a simulated index: pages copied from the index when told, served as its profile
writes them, so a test can leave chosen projects behind, missing or ahead.

A real mirror (bandersnatch, devpi) copies each project when its changelog says so and keeps
the copy until told again; whatever the copy missed stays missed. :class:`Mirror` does the
same on command: :meth:`Mirror.sync` copies projects as the index has them now, and the
pages keep that state (and serial) until synced again. The journal the mirror follows is the
index's (:attr:`~._origin.Origin.upstream_changelog_url`).

``refresh=True`` answers devpi-server's per-project refresh (``POST
/simple/<project>/refresh``, then 302 to the page) by syncing the project;
``refresh_fixes=False`` makes it answer so without syncing (an upstream still stale).
"""

from __future__ import annotations

import threading
from collections import Counter
from types import TracebackType
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from ._http import CONTENT_TYPES, Handler, Server, negotiate
from ._journal import IndexState, Project
from ._pages import PageStyle, project_page
from ._profiles import BANDERSNATCH, Profile, profile_named


class Mirror:
    """Copies of an index's project pages served on 127.0.0.1 (see the module docstring).

    ``pages_served`` counts page requests; ``refreshes`` counts refresh requests per project.
    """

    def __init__(
        self,
        upstream: IndexState,
        *,
        profile: Profile | str = BANDERSNATCH,
        files_url: str = "http://files.example",
        refresh: bool = False,
        refresh_fixes: bool = True,
    ) -> None:
        self.upstream = upstream
        self.profile = profile_named(profile)
        self.files_url = files_url
        self.refresh = refresh
        self.refresh_fixes = refresh_fixes
        self.pages_served = 0
        self.refreshes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._copies: dict[str, tuple[Project, int]] = {}
        self._server: Server[Mirror] | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> Mirror:
        if self._server is not None:
            raise RuntimeError("mirror already started")
        self._server = Server(_MirrorHandler, self)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def simple_url(self) -> str:
        if self._server is None:
            raise RuntimeError("mirror not started")
        return self._server.url + "/simple/"

    # ----------------------------------------------------------------- what it holds

    def sync(self, *names: str, serial: int | None = None) -> None:
        """Copy these projects (every project of the index when none is named) as the index
        has them now; a project the index no longer has is dropped. ``serial`` writes that
        serial on the copies instead of the index's (a mirror fed from elsewhere)."""
        if not names:
            names = tuple(key for key, _, _ in self.upstream._listing()[1])
        for name in names:
            key = canonicalize_name(name)
            found = self.upstream._snapshot(key)
            with self._lock:
                if found is None:
                    self._copies.pop(key, None)
                else:
                    self._copies[key] = (found[0], found[1] if serial is None else serial)

    def drop(self, name: str) -> None:
        """Forget a project (the mirror answers 404 for it)."""
        with self._lock:
            self._copies.pop(canonicalize_name(name), None)

    def _page(self, key: str, media_type: str) -> tuple[bytes, int] | None:
        with self._lock:
            copy = self._copies.get(key)
            self.pages_served += 1
        if copy is None:
            return None
        style = PageStyle(
            self.profile, self.profile.serial_sources, self.profile.json_serial_form,
            self.files_url,
        )
        return project_page(copy[0], copy[1], media_type, style), copy[1]


class _MirrorHandler(Handler):
    server: Server[Mirror]

    def _project(self) -> str | None:
        path = urlsplit(self.path).path
        if not path.startswith("/simple/"):
            return None
        return unquote(path[len("/simple/") :])

    def do_GET(self) -> None:
        mirror = self.server.owner
        rest = self._project()
        name, slash, tail = (rest or "").partition("/")
        if not name or not slash or tail:
            self.not_found()
            return
        media_type = negotiate(self.headers.get("Accept"), json_pages=mirror.profile.json_pages)
        page = mirror._page(canonicalize_name(name), media_type)
        if page is None:
            self.not_found()
            return
        headers = [("Content-Type", CONTENT_TYPES[media_type])]
        if "header" in mirror.profile.serial_sources:
            headers.append(("X-PyPI-Last-Serial", str(page[1])))
        self.respond(200, page[0], headers, compress=True)

    def do_POST(self) -> None:
        mirror = self.server.owner
        self.read_body()
        name, _, tail = (self._project() or "").partition("/")
        if not mirror.refresh or not name or tail != "refresh":
            self.not_found()
            return
        key = canonicalize_name(name)
        with mirror._lock:
            mirror.refreshes[key] += 1
        if mirror.refresh_fixes:
            mirror.sync(key)
        self.respond(302, b"", [("Location", f"/simple/{key}/")])
