"""A caching CDN in front of an :class:`~._origin.Origin`: where stale views come from.

One listening port, several *edges*, each with its own cache. Project pages
(``/simple/<p>/``) and the JSON API (``/pypi/<p>/json``) are cached per variant (media type
chosen from ``Accept`` x gzip/identity from ``Accept-Encoding``), so one variant can be fresh
while another is stale, as on the real CDN. Query strings are dropped from cache keys and
client ``Cache-Control`` is ignored, so a client cannot force a fresh copy. Everything else,
notably the ``POST /pypi`` changelog, is passed to the origin uncached: that is what makes
the changelog the authority.

Purges are lazy: a content change at time *t* is recorded with the purge delays in force,
and on lookup a copy filled before *t* is dropped once *t* + delay has passed for its edge
(and variant). A copy filled after the change is fresh, even if the purge has not yet
reached its edge. No timer threads are involved, which keeps timing in tests exact.
"""

from __future__ import annotations

import http.client
import random
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from ._faults import TRANSPORT_FAULTS, Faults, send_transport_fault
from ._http import JSON_TYPE, Handler, Server, accepts_gzip
from ._origin import Origin

Routing = Literal["round-robin", "random"] | int
#: A per-variant override key: ("json" | "html" | "api", "gzip" | "identity"), or one half.
VariantKey = tuple[str, str] | str

# Long enough that a client times out first when the origin hangs (changelog "timeout"
# fault passed through); stop() shuts the upstream socket down, so it never delays a stop.
_UPSTREAM_TIMEOUT = 600.0
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
    }
)
_CACHEABLE_STATUS = frozenset({200, 301, 404})


@dataclass
class _Entry:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    filled_at: float  # monotonic time the request to the origin was sent
    project: str  # normalized name, for purges
    family: str  # "json", "html" or "api": the variant for per-variant purge delays
    encoding: str  # "gzip" or "identity"
    served_stale: bool = False  # a soft-purged copy already served once more


@dataclass(frozen=True)
class _PurgeEvent:
    """A content change, with the purge delays in force when it happened."""

    at: float
    delays: tuple[float | None, ...]
    per_variant: Mapping[VariantKey, float | None]

    def delay(self, edge: int, family: str, encoding: str) -> float | None:
        for key in ((family, encoding), family, encoding):
            if key in self.per_variant:
                return self.per_variant[key]
        return self.delays[edge]


def _classify(path: str) -> tuple[str, str] | None:
    """(normalized project, "simple" | "api") for a cacheable path, else None."""
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "simple" and parts[2] and parts[3] == "":
        return canonicalize_name(unquote(parts[2])), "simple"
    if len(parts) == 4 and parts[1] == "pypi" and parts[2] and parts[3] == "json":
        return canonicalize_name(unquote(parts[2])), "api"
    return None


class CDN:
    """A caching CDN with several edges in front of ``origin`` (see the module docstring).

    ``purge_delays``: one entry per edge, seconds between a content change and that edge
    dropping its copies of the project's pages, or ``None`` for a lost purge (never).
    Default: every edge purges at once. ``per_variant_purge_delays`` overrides the edge delay
    for a variant: keys are ``(family, encoding)`` pairs with family ``"json"`` / ``"html"``
    (simple pages) or ``"api"`` (``/pypi/<p>/json``) and encoding ``"gzip"`` /
    ``"identity"``, or just a family or just an encoding. Delays are fixed per change when
    it happens: changing them later affects later changes only (use :meth:`purge_now` to
    deliver a purge that was lost).

    ``routing``: ``"round-robin"`` (per request), ``"random"`` (seeded by ``seed``) or an
    edge number; :meth:`pin` overrides it at run time. ``ttl`` expires every copy after that
    many seconds; ``negative_ttl`` expires 404 copies sooner. ``latency`` is added to every
    request. ``hits`` and ``misses`` count cache lookups (pass-through requests count in
    neither). ``faults`` injects transport faults (status, reset, truncation, hang; see
    :mod:`._faults`) per project or path, before the cache is consulted. ``tls`` serves
    HTTPS; ``upstream_tls`` is the client context for an HTTPS origin. An origin whose profile
    is a caching mirror's (``Profile.caching(ttl)``) sets the default ``ttl`` to its own and
    the default purges to never.

    ``soft_purge`` (PyPI's CDN purges so; see ``Profile.soft_purge``): a purged copy is
    answered once more after its purge, as a soft purge with stale-while-revalidate does while
    the edge fetches the new one; the request after that gets the new copy.
    """

    def __init__(
        self,
        origin: Origin,
        *,
        edges: int = 1,
        purge_delays: Sequence[float | None] | None = None,
        routing: Routing = "round-robin",
        seed: int = 0,
        latency: float = 0.0,
        ttl: float | None = None,
        negative_ttl: float | None = None,
        per_variant_purge_delays: Mapping[VariantKey, float | None] | None = None,
        tls: ssl.SSLContext | None = None,
        upstream_tls: ssl.SSLContext | None = None,
        soft_purge: bool = False,
    ) -> None:
        self.tls = tls
        self.upstream_tls = upstream_tls
        self.faults = Faults(TRANSPORT_FAULTS)
        if edges < 1:
            raise ValueError("a CDN needs at least one edge")
        self.origin = origin
        # A caching mirror's profile (Profile.caching): pages kept for its TTL, never purged.
        mirror_ttl = origin.profile.cache_ttl
        if mirror_ttl is not None:
            ttl = mirror_ttl if ttl is None else ttl
            purge_delays = [None] * edges if purge_delays is None else purge_delays
        self.soft_purge = soft_purge
        self.edges = edges
        self.latency = latency
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._caches: list[dict[tuple[str, str, str], _Entry]] = [{} for _ in range(edges)]
        self._events: dict[str, list[_PurgeEvent]] = {}
        self._delays: tuple[float | None, ...] = (0.0,) * edges
        self._per_variant: dict[VariantKey, float | None] = {}
        self.set_purge_delays(
            (0.0,) * edges if purge_delays is None else purge_delays, per_variant_purge_delays
        )
        self._check_edge(routing)
        self._routing: Routing = routing
        self._pinned: int | None = None
        self._next_edge = 0
        self._random = random.Random(seed)
        self._server: Server[CDN] | None = None
        origin.add_purge_listener(self._on_change)

    # ----------------------------------------------------------------- configuration

    def _check_edge(self, routing: Routing | None) -> None:
        if isinstance(routing, int) and not 0 <= routing < self.edges:
            raise ValueError(f"no edge {routing} (edges are 0..{self.edges - 1})")
        if isinstance(routing, str) and routing not in ("round-robin", "random"):
            raise ValueError(f"unknown routing {routing!r}")

    def set_purge_delays(
        self,
        purge_delays: Sequence[float | None],
        per_variant_purge_delays: Mapping[VariantKey, float | None] | None = None,
    ) -> None:
        """Replace the purge delays (and per-variant overrides; None clears them).

        They apply to content changes made from now on.
        """
        delays = tuple(purge_delays)
        if len(delays) != self.edges:
            raise ValueError(f"need {self.edges} purge delays, one per edge, got {len(delays)}")
        with self._lock:
            self._delays = delays
            self._per_variant = dict(per_variant_purge_delays or {})

    def pin(self, edge: int | None) -> None:
        """Serve every request from ``edge``; ``None`` returns to the configured routing."""
        self._check_edge(edge)
        with self._lock:
            self._pinned = edge

    def purge_now(self, project: str | None = None, *, edge: int | None = None) -> None:
        """Drop the copies of ``project`` (all projects if None) on ``edge`` (every edge if
        None), now: a late purge reaching one edge while the others keep what they had."""
        self._check_edge(edge)
        key = None if project is None else canonicalize_name(project)
        with self._lock:
            for cache in self._caches if edge is None else [self._caches[edge]]:
                for cache_key in [k for k, e in cache.items() if key in (None, e.project)]:
                    del cache[cache_key]

    def cached(self, edge: int) -> list[tuple[str, str, str]]:
        """The cache keys ``(path, media type or "api", encoding)`` an edge holds.

        Purges are applied on lookup, so this includes copies the next lookup would drop.
        """
        with self._lock:
            return sorted(self._caches[edge])

    def _on_change(self, project: str) -> None:
        with self._lock:
            event = _PurgeEvent(time.monotonic(), self._delays, dict(self._per_variant))
            self._events.setdefault(project, []).append(event)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> CDN:
        if self._server is not None:
            raise RuntimeError("CDN already started")
        self._server = Server(_CDNHandler, self, self.tls)
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and stop listening to the origin's purges."""
        self.origin.remove_purge_listener(self._on_change)
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> CDN:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("CDN not started")
        return self._server.url

    @property
    def simple_url(self) -> str:
        return self.url + "/simple/"

    @property
    def changelog_url(self) -> str:
        """The CDN's ``/pypi``: POSTs pass through uncached, so this is still the authority."""
        return self.url + "/pypi"

    # ----------------------------------------------------------------- caching

    def _choose_edge(self) -> int:
        with self._lock:
            if self._pinned is not None:
                return self._pinned
            if isinstance(self._routing, int):
                return self._routing
            if self._routing == "random":
                return self._random.randrange(self.edges)
            edge = self._next_edge % self.edges
            self._next_edge += 1
            return edge

    def _expired(self, entry: _Entry, now: float) -> bool:
        age = now - entry.filled_at
        if self.ttl is not None and age >= self.ttl:
            return True
        return entry.status == 404 and self.negative_ttl is not None and age >= self.negative_ttl

    def _valid(self, entry: _Entry, edge: int, now: float) -> bool:
        if self._expired(entry, now):
            return False
        for event in self._events.get(entry.project, ()):
            if event.at < entry.filled_at:
                continue  # the copy came from the origin after this change: fresh
            delay = event.delay(edge, entry.family, entry.encoding)
            if delay is not None and now >= event.at + delay:
                return False
        return True

    def _lookup(self, edge: int, key: tuple[str, str, str]) -> _Entry | None:
        with self._lock:
            cache = self._caches[edge]
            entry = cache.get(key)
            now = time.monotonic()
            if entry is not None and not self._valid(entry, edge, now):
                if self.soft_purge and not entry.served_stale and not self._expired(entry, now):
                    entry.served_stale = True  # stale-while-revalidate: once more
                else:
                    del cache[key]
                    entry = None
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
            return entry

    def _store(self, edge: int, key: tuple[str, str, str], entry: _Entry) -> None:
        with self._lock:
            self._caches[edge][key] = entry

    def _fetch(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to the origin (a fresh connection; stop() can interrupt it)."""
        assert self._server is not None
        port = urlsplit(self.origin.url).port
        conn = (
            http.client.HTTPSConnection(
                "127.0.0.1", port, timeout=_UPSTREAM_TIMEOUT, context=self.upstream_tls
            )
            if self.origin.url.startswith("https:")
            else http.client.HTTPConnection("127.0.0.1", port, timeout=_UPSTREAM_TIMEOUT)
        )
        try:
            conn.connect()
            self._server.watch(conn.sock)
            conn.request(method, path, body=body, headers=dict(headers))
            response = conn.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, kept, data
        finally:
            self._server.unwatch(conn.sock)
            conn.close()


class _CDNHandler(Handler):
    """One edge request: cached for project pages and the JSON API, passed through else."""

    server: Server[CDN]

    def do_GET(self) -> None:
        cdn = self.server.owner
        self.pause(cdn.latency)
        edge = cdn._choose_edge()
        path = urlsplit(self.path).path  # query strings never reach the cache key
        target = _classify(path)
        if target is None:
            self._pass_through(edge, None)
            return
        project, kind = target
        fault = cdn.faults.take(project, path)
        if fault is not None:
            headers = [("Content-Type", "text/html"), ("X-Served-By", f"edge-{edge}")]
            send_transport_fault(self, fault[0], b"", headers, self.server.stopping)
            return
        if kind == "simple":
            media_type = cdn.origin.media_type(self.headers.get("Accept"))
            family = "json" if media_type == JSON_TYPE else "html"
        else:
            media_type = family = "api"
        encoding = "gzip" if accepts_gzip(self.headers.get("Accept-Encoding")) else "identity"
        key = (path, media_type, encoding)
        entry = cdn._lookup(edge, key)
        if entry is not None:
            age = int(time.monotonic() - entry.filled_at)
            self._send(entry.status, entry.headers, entry.body, edge, "HIT", age)
            return
        # Ask the origin for exactly this variant, whatever else the client's headers say.
        upstream = {"Accept-Encoding": encoding}
        upstream["Accept"] = media_type if kind == "simple" else "application/json"
        filled_at = time.monotonic()
        try:
            status, headers, body = cdn._fetch("GET", path, upstream, None)
        except (OSError, http.client.HTTPException):
            self._bad_gateway(edge)
            return
        if status in _CACHEABLE_STATUS:
            entry = _Entry(status, headers, body, filled_at, project, family, encoding)
            cdn._store(edge, key, entry)
        self._send(status, headers, body, edge, "MISS", 0)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        cdn = self.server.owner
        body = self.read_body()
        self.pause(cdn.latency)
        self._pass_through(cdn._choose_edge(), body)

    def _pass_through(self, edge: int, body: bytes | None) -> None:
        forwarded = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in _HOP_BY_HOP and k.lower() != "host"
        }
        try:
            status, headers, data = self.server.owner._fetch(
                self.command, self.path, forwarded, body
            )
        except (OSError, http.client.HTTPException):
            self._bad_gateway(edge)
            return
        self._send(status, headers, data, edge, "PASS", 0)

    def _bad_gateway(self, edge: int) -> None:
        if self.server.stopping.is_set():
            self.close_connection = True
            return
        headers = [("Content-Type", "text/plain")]
        self._send(502, headers, b"Bad Gateway: origin unreachable\n", edge, "PASS", 0)

    def _send(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        edge: int,
        cache: str,
        age: int,
    ) -> None:
        extra = [("Age", str(age)), ("X-Cache", cache), ("X-Served-By", f"edge-{edge}")]
        self.respond(status, body, [*headers, *extra])
