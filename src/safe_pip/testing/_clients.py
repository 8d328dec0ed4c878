"""What clients of the simulated index do: fill a CDN's caches, and run plain pip against it.

A CDN edge only holds the copies someone asked it for, so a stale view has to be made the way
it happens for real: readers fill every edge's copies of a page (:func:`fill_cache`), the
origin changes, and the edges that miss the purge keep serving what they had.

Plain pip is run as a subprocess the way a test needs it: from the current interpreter, with
no configuration file (``PIP_CONFIG_FILE=os.devnull`` makes pip read none), no ``PIP_*`` or
``SAFE_PIP_*`` variable of the caller, no cache (pip >= 26.2 caches index pages for ten
minutes, which would hide the very staleness a test wants to see) and into a ``--target``
directory, so that nothing outside the test changes and nothing reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import gzip
import json
import os
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.utils import canonicalize_name

from ._cdn import CDN

#: Every copy of a project page a client can make an edge hold: each simple-API media type
#: (the PEP 691 JSON one, the PEP 691 HTML one, plain HTML), gzip and plain.
PAGE_VARIANTS: tuple[tuple[str, str], ...] = tuple(
    (accept, encoding)
    for accept in (
        "application/vnd.pypi.simple.v1+json",
        "application/vnd.pypi.simple.v1+html",
        "text/html",
    )
    for encoding in ("gzip", "identity")
)

# Variables that would make a child pip (or safe-pip) use something other than what the test
# set up: another interpreter's environment, a CA bundle, a proxy in front of 127.0.0.1.
_DROPPED = frozenset({"VIRTUAL_ENV", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"})
_LOOPBACK = "127.0.0.1,localhost"


def _open(url: str, headers: Mapping[str, str], tls: ssl.SSLContext | None) -> bytes:
    """GET ``url`` directly (never through the environment's proxies: the simulator is on
    127.0.0.1); ``tls`` is the client context for an HTTPS simulator."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if tls is not None:
        handlers.append(urllib.request.HTTPSHandler(context=tls))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(urllib.request.Request(url, headers=dict(headers)), timeout=30) as resp:
        body: bytes = resp.read()
        if resp.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return body


def isolated_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment for a pip (or safe-pip) subprocess that the caller's setup cannot reach.

    Starts from ``base`` (default ``os.environ``), drops every ``PIP_*`` and ``SAFE_PIP_*``
    variable, ``VIRTUAL_ENV`` and the CA bundle variables (``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE``: give pip ``--cert`` for an HTTPS simulator), sets
    ``PIP_CONFIG_FILE=os.devnull`` (pip then reads no configuration file at all), turns off
    pip's version check and prompts, adds 127.0.0.1 to ``NO_PROXY``, then applies ``extra``
    (e.g. ``SAFE_PIP_STATE_DIR=...``).
    """
    source = os.environ if base is None else base
    env = {
        k: v
        for k, v in source.items()
        if not k.startswith(("PIP_", "SAFE_PIP_")) and k not in _DROPPED
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(p for p in (env.get(name, ""), _LOOPBACK) if p)
    env.update(extra)
    return env


def installed(target: Path) -> dict[str, str]:
    """What pip installed into a ``--target`` directory: canonical name -> version."""
    found: dict[str, str] = {}
    if not target.is_dir():
        return found
    for child in target.iterdir():
        if child.name.endswith(".dist-info"):
            name, _, version = child.name[: -len(".dist-info")].rpartition("-")
            found[canonicalize_name(name)] = version
    return found


@dataclass(frozen=True)
class PipRun:
    """One finished plain pip run (see :func:`pip_install`)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    target: Path
    installed: dict[str, str] = field(default_factory=dict)

    def version(self, project: str) -> str | None:
        """The version of ``project`` this run installed, or None."""
        return self.installed.get(canonicalize_name(project))


def pip_install(
    index_url: str,
    *requirements: str,
    target: Path,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180.0,
) -> PipRun:
    """Run ``python -m pip install --target TARGET --no-cache-dir --index-url INDEX_URL``.

    ``requirements`` and ``args`` (more pip options) are appended; ``env`` defaults to
    :func:`isolated_env`. pip runs under the current interpreter, in ``cwd`` (default:
    ``target``'s parent, so no stray configuration or requirements file is picked up).
    """
    argv = [
        sys.executable, "-m", "pip", "install", "--target", str(target),
        "--no-cache-dir", "--index-url", index_url, *args, *requirements,
    ]  # fmt: skip
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=dict(isolated_env() if env is None else env),
        cwd=cwd or target.parent,
        timeout=timeout,
        check=False,
    )
    return PipRun(argv, proc.returncode, proc.stdout, proc.stderr, target, installed(target))


class _Index(Protocol):
    @property
    def simple_url(self) -> str: ...


class PlainPip:
    """Plain pip installs, each into a fresh ``--target`` directory under ``base``.

    ``plain_pip(index, *requirements, args=(), env=None)`` runs :func:`pip_install`; ``index``
    is a URL or anything with a ``simple_url`` (an :class:`~._origin.Origin`, a
    :class:`~._cdn.CDN`). The ``plain_pip`` pytest fixture is one of these.
    """

    def __init__(self, base: Path, *, timeout: float = 180.0) -> None:
        self.base = base
        self.timeout = timeout
        self.runs: list[PipRun] = []

    def __call__(
        self,
        index: str | _Index,
        *requirements: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> PipRun:
        url = index if isinstance(index, str) else index.simple_url
        self.base.mkdir(parents=True, exist_ok=True)
        target = self.base / f"pip-{len(self.runs) + 1}"
        run = pip_install(
            url, *requirements, target=target, args=args, env=env, timeout=self.timeout
        )
        self.runs.append(run)
        return run


def fill_cache(
    cdn: CDN,
    project: str,
    *,
    edges: Iterable[int] | None = None,
    api: bool = True,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Make ``edges`` (default: all) of ``cdn`` hold every copy of ``project``'s page now.

    That is what earlier readers do on a real CDN; after the origin changes, the edges whose
    purge is late or lost keep serving these copies. Every variant in :data:`PAGE_VARIANTS` is
    asked for, and with ``api`` the JSON API page too. The CDN is pinned to each edge in turn
    and then returned to the pin (or routing) it had. ``tls``: the client context for a CDN
    serving HTTPS (e.g. ``TestCA.client_context()``).
    """
    chosen = range(cdn.edges) if edges is None else list(edges)
    previous = cdn._pinned  # restored below, so a caller's pin survives
    base = cdn.url
    paths = [(f"/simple/{project}/", accept, enc) for accept, enc in PAGE_VARIANTS]
    if api:
        paths.append((f"/pypi/{project}/json", "application/json", "identity"))
    try:
        for edge in chosen:
            cdn.pin(edge)
            for path, accept, encoding in paths:
                _open(base + path, {"Accept": accept, "Accept-Encoding": encoding}, tls)
    finally:
        cdn.pin(previous)


def page_view(
    cdn: CDN, project: str, edge: int, *, tls: ssl.SSLContext | None = None
) -> tuple[int | None, list[str]]:
    """What ``edge`` serves pip for ``project`` now: (serial, versions listed), read from its
    PEP 691 JSON copy (gzip, as pip asks; an edge holding none fills it from the origin)."""
    previous = cdn._pinned
    headers = {"Accept": PAGE_VARIANTS[0][0], "Accept-Encoding": "gzip"}
    try:
        cdn.pin(edge)
        body = _open(f"{cdn.url}/simple/{project}/", headers, tls)
    finally:
        cdn.pin(previous)
    doc = json.loads(body)
    serial = doc.get("meta", {}).get("_last-serial")
    return (serial if isinstance(serial, int) else None), [str(v) for v in doc["versions"]]
