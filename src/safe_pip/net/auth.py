"""Credentials for index requests, found where pip finds them and sent only where pip sends them.

pip only talks to the loopback guard, so the guard must authenticate upstream as pip would
(pip's ``network/auth.py``): the URL's user-info, else the user-info of the index the URL
belongs to, else the user's netrc, else (after a 401, as pip asks it only then) the keyring
chosen by pip's ``--keyring-provider``. Credentials are attached per request by requests' auth
hook, so requests' redirect rule (``rebuild_auth``: the ``Authorization`` header is dropped on
a move to another host, port or scheme, and only netrc is asked again, for the new host)
applies to all of them alike. None of them is ever logged or put in a message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal

from requests.auth import AuthBase, HTTPBasicAuth
from requests.models import PreparedRequest, Response
from requests.utils import get_netrc_auth

from safe_pip.net.urls import credentials_of, strip_credentials

_Pair = tuple[str, str]
#: Where a request's Authorization came from: the caller's pair, the URL's (or its index
#: URL's) user-info, netrc, the keyring, or an Authorization header the caller set.
Source = Literal["given", "url", "netrc", "keyring", "header"]
#: The attribute of a prepared request that records its credentials' source.
_SOURCE = "safe_pip_credentials"


def carry_source(
    old: PreparedRequest | None, new: PreparedRequest, source: Source | None = None
) -> None:
    """Record on a redirected request where its credentials come from (``PreparedRequest.copy``
    keeps the header, not the attribute)."""
    setattr(new, _SOURCE, source or credentials_sent(old) or "header")


def credentials_sent(request: PreparedRequest | None) -> Source | None:
    """Where the credentials a request carried came from (None: it carried none, as after
    a redirect to another host)."""
    if request is None or "Authorization" not in request.headers:
        return None
    source: Source = getattr(request, _SOURCE, "header")
    return source


class Keyring:
    """The keyring pip's ``--keyring-provider`` names: the ``keyring`` package (``import``),
    the ``keyring`` command on PATH (``subprocess``), or the first that works (``auto``).

    A keyring that fails is not asked again this run (pip does the same), and its error, which
    might quote a secret, is not shown.
    """

    def __init__(self, provider: str, *, which: Callable[[str], str | None] = shutil.which):
        self.provider = provider
        self._which = which
        self._lock = threading.Lock()
        self._resolved: tuple[str, Any] | None = None

    def _backend(self) -> tuple[str, Any]:
        with self._lock:
            if self._resolved is None:
                self._resolved = self._resolve()
            return self._resolved

    def _resolve(self) -> tuple[str, Any]:
        if self.provider in ("import", "auto"):
            try:
                import keyring

                return ("import", keyring)
            except Exception:  # noqa: BLE001 - pip falls back the same way on any failure
                pass
        if self.provider in ("subprocess", "auto"):
            cli = self._which("keyring")
            if cli:
                return ("subprocess", cli)
        return ("disabled", None)

    def get(self, service: str, username: str | None) -> _Pair | None:
        kind, backend = self._backend()
        try:
            if kind == "import":
                return _from_module(backend, service, username)
            if kind == "subprocess":
                return _from_command(backend, service, username)
        except Exception:  # noqa: BLE001 - any failure: no keyring for the rest of the run
            with self._lock:
                self._resolved = ("disabled", None)
        return None


def _from_module(keyring: Any, service: str, username: str | None) -> _Pair | None:
    if hasattr(keyring, "get_credential"):
        cred = keyring.get_credential(service, username)
        return None if cred is None else (str(cred.username), str(cred.password))
    if username is not None:
        password = keyring.get_password(service, username)
        if password:
            return username, str(password)
    return None


def _from_command(cli: str, service: str, username: str | None) -> _Pair | None:
    """``keyring get`` as pip runs it (``--mode=creds --output=json``, keyring >= 25.2.1)."""
    cmd = [cli, "--mode=creds", "--output=json", "get", service]
    if username is not None:
        cmd.append(username)
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
        timeout=60,
    )
    if proc.returncode:
        return None
    data = json.loads(proc.stdout.decode("utf-8"))
    return str(data["username"]), str(data["password"])


class Credentials:
    """The credential store of one session: what pip's ``MultiDomainBasicAuth`` would use."""

    def __init__(self, keyring: Keyring | None = None) -> None:
        self.keyring = keyring
        self.index_urls: list[str] = []
        self._lock = threading.Lock()
        self._netrc: dict[str, _Pair | None] = {}
        self._found: dict[str, _Pair] = {}  # per netloc, from the keyring after a 401

    def add_index(self, url: str) -> None:
        with self._lock:
            if url not in self.index_urls:
                self.index_urls.append(url)

    def _index_of(self, url: str) -> str | None:
        """The index URL (with its credentials) a URL belongs to: the same netloc, the longest
        common path, as pip's ``_get_index_url`` picks it."""
        parts = urllib.parse.urlsplit(strip_credentials(url))
        best: tuple[int, str] | None = None
        for index in list(self.index_urls):
            candidate = urllib.parse.urlsplit(strip_credentials(index))
            if candidate.netloc.lower() != parts.netloc.lower():
                continue
            common = len(os.path.commonpath([parts.path or "/", candidate.path or "/"]))
            if best is None or common > best[0]:
                best = (common, index)
        return best[1] if best else None

    def for_url(self, url: str) -> tuple[_Pair, Source] | None:
        """Credentials for a first request, and where they come from: the URL's, its
        index's, netrc's, a keyring's."""
        found = credentials_of(url)
        if found is None:
            index = self._index_of(url)
            found = credentials_of(index) if index is not None else None
        if found is not None:
            return found, "url"
        from_netrc = self.from_netrc(url)
        if from_netrc is not None:
            return from_netrc, "netrc"
        from_keyring = self._found.get(urllib.parse.urlsplit(url).netloc.rpartition("@")[2])
        return (from_keyring, "keyring") if from_keyring is not None else None

    def from_netrc(self, url: str) -> _Pair | None:
        """netrc's entry for the URL's host (requests' reading: ``NETRC``, ``~/.netrc``,
        ``~/_netrc``), read once per host and session."""
        netloc = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        if netloc not in self._netrc:
            pair = get_netrc_auth(url)
            self._netrc[netloc] = (pair[0], pair[1]) if pair else None
        return self._netrc[netloc]

    def from_keyring(self, url: str) -> _Pair | None:
        """After a 401: the keyring's credentials for the URL's index, else its netloc."""
        if self.keyring is None:
            return None
        netloc = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        username = (credentials_of(url) or (None, ""))[0]
        index = self._index_of(url)
        pair = None
        if index is not None:
            pair = self.keyring.get(strip_credentials(index).rstrip("/") + "/", username)
        if pair is None:
            pair = self.keyring.get(netloc, username)
        if pair is not None:
            with self._lock:
                self._found[netloc] = pair
        return pair


class RequestAuth(AuthBase):
    """requests' auth hook for one request: given credentials (a caller's pair), else the
    store's; a caller's own ``Authorization`` header is left alone."""

    def __init__(self, store: Credentials, given: _Pair | None = None) -> None:
        self.store = store
        self.given = given

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        url = request.url or ""
        if "Authorization" not in request.headers:
            found = (self.given, "given") if self.given else self.store.for_url(url)
            if found is not None:
                request = HTTPBasicAuth(*found[0])(request)
                setattr(request, _SOURCE, found[1])
        if self.store.keyring is not None:
            request.register_hook("response", self._on_401)
        return request

    def _on_401(self, response: Response, **kwargs: Any) -> Response:
        """Ask the keyring once, then send the request again with what it gave (pip's
        ``handle_401``, without the prompt). Runs for redirected requests too: the keyring
        is asked for the host that answered 401, so nothing moves between hosts."""
        if response.status_code != 401 or response.request is None:
            return response
        pair = self.store.from_keyring(response.url)
        if pair is None:
            return response
        response.content  # noqa: B018 - read, so the connection can be used again
        response.raw.release_conn()
        retry = response.request.copy()
        retry.headers.pop("Authorization", None)
        retry = HTTPBasicAuth(*pair)(retry)
        setattr(retry, _SOURCE, "keyring")
        retry.hooks = {"response": []}  # one try: a wrong password is answered 401 again
        connection = getattr(response, "connection", None)
        if connection is None:
            return response
        again: Response = connection.send(retry, **kwargs)
        again.history.append(response)
        return again
