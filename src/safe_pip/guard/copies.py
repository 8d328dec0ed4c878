"""The cached copies of an index page, and fetching one of them.

HTML and JSON, gzip and plain are separate copies at the CDN; asking for another is the one
cache bypass that works (warehouse #8568).
"""

from __future__ import annotations

from typing import Literal

from safe_pip.guard.refusals import AccessDenied, NotFound, Transient
from safe_pip.index.pages import HTML_CONTENT_TYPE, JSON_CONTENT_TYPE, ProjectPage, parse_page
from safe_pip.net.http import Session, TransportError
from safe_pip.net.urls import redact

Format = Literal["json", "html"]
Encoding = Literal["gzip", "identity"]

#: Every cached copy of a page the guard may ask for, in the order asked.
VARIANTS: tuple[tuple[Format, Encoding], ...] = (
    ("json", "gzip"),
    ("html", "gzip"),
    ("json", "identity"),
    ("html", "identity"),
)
_ACCEPT = {
    "json": JSON_CONTENT_TYPE,
    "html": f"{HTML_CONTENT_TYPE}, text/html;q=0.9",
}


def fetch_page(
    session: Session,
    url: str,
    fmt: Format,
    enc: Encoding,
    *,
    timeout: float | None,
    authority: bool = False,
) -> ProjectPage:
    """One copy of a page (``authority``: the origin's own, past any cache).

    Raises ``NotFound`` (404, 410), ``AccessDenied`` (401, 403), ``Transient`` (any other
    failure) or ``MalformedPage``.
    """
    headers = {"Accept": _ACCEPT[fmt], "Accept-Encoding": enc}
    if authority:
        headers["Cache-Control"] = "no-cache"
    try:
        resp = session.get(url, headers=headers, timeout=timeout)
        body = resp.content
    except TransportError as exc:  # its message names the URL, without credentials
        raise Transient(str(exc)) from exc
    if resp.status_code == 404 or resp.status_code == 410:
        raise NotFound(url)
    if resp.status_code in (401, 403):
        raise AccessDenied(url, resp.url, resp.status_code, resp.credentials)
    if resp.status_code != 200:
        raise Transient(f"{redact(url)} answered HTTP {resp.status_code}")
    return parse_page(
        body,
        content_type=resp.headers.get("Content-Type", ""),
        url=resp.url,
        headers=resp.headers,
    )
