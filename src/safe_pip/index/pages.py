"""Index project pages: read one as received, in either format, and write one back.

Parsing is kept apart from transport: callers pass the body, Content-Type, page URL and
headers they received.

The parsers are strict where a lenient reading could change what an installer sees (types,
hashes, serials, API major version: a page we cannot read exactly is treated as a stale view,
see ``MalformedPage``) and lenient where the real index or common mirrors differ from the
letter of the specs in ways pip itself tolerates (``null`` for absent optional JSON keys,
relative URLs, anchor text that does not match the file name, non-file anchors on static
mirror listings).

The model is in :mod:`~safe_pip.index.model`, the formats in :mod:`~safe_pip.index.json_pages`
(PEP 691) and :mod:`~safe_pip.index.html_pages` (PEP 503); their public names are here too.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import Literal

from safe_pip.errors import MalformedPage
from safe_pip.index.fields import serial_from_text
from safe_pip.index.html_pages import parse_html, render_html
from safe_pip.index.json_pages import parse_json, render_json
from safe_pip.index.model import (
    HTML_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    LEGACY_HTML_CONTENT_TYPE,
    RENDERED_API_VERSION,
    SERIAL_HEADER,
    SERIAL_SOURCE_LABELS,
    DistFile,
    Fingerprint,
    InconsistentSerials,
    ProjectPage,
    SerialSource,
    content_fingerprint,
    page_serial,
)

__all__ = [
    "HTML_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "LEGACY_HTML_CONTENT_TYPE",
    "RENDERED_API_VERSION",
    "SERIAL_HEADER",
    "SERIAL_SOURCE_LABELS",
    "DistFile",
    "Fingerprint",
    "InconsistentSerials",
    "ProjectPage",
    "SerialSource",
    "content_fingerprint",
    "page_serial",
    "parse_page",
    "render_html",
    "render_json",
]


def parse_page(
    body: bytes,
    *,
    content_type: str,
    url: str,
    headers: Mapping[str, str] | None = None,
) -> ProjectPage:
    """Parse a project page as received: PEP 691 JSON, or PEP 503 HTML.

    ``url`` is the URL the body was actually served from (after redirects): relative file
    URLs are resolved against it, as PEP 503/691 require and as pip does. ``headers`` are
    the response headers, looked up case-insensitively (HTTP field names are, RFC 9110), so a
    plain ``dict`` works as well as requests' case-insensitive headers.

    Raises ``MalformedPage`` for anything that cannot be read exactly: an unexpected
    Content-Type, undecodable bytes, bad JSON, wrong types, a bad serial, an API major
    version other than 1 (PEP 629: clients must fail on a greater major version).
    """
    media_type, charset = _split_content_type(content_type)
    if media_type == JSON_CONTENT_TYPE:
        fmt: Literal["json", "html"] = "json"
    elif media_type in (HTML_CONTENT_TYPE, LEGACY_HTML_CONTENT_TYPE):
        fmt = "html"
    else:
        raise MalformedPage(url, f"unexpected Content-Type {content_type!r}")
    text = _decode(body, charset, url)

    serials: dict[SerialSource, int] = {}
    header = _header(headers or {}, SERIAL_HEADER, url)
    if header is not None:
        serials["header"] = serial_from_text(header, SERIAL_HEADER, url)

    if fmt == "json":
        return parse_json(text, url, serials)
    return parse_html(text, url, serials)


def _split_content_type(content_type: str) -> tuple[str, str | None]:
    """Media type (lowercased) and charset parameter of a Content-Type (RFC 9110 8.3)."""
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        key, sep, value = param.partition("=")
        if sep and key.strip().lower() == "charset":
            charset = value.strip().strip('"').strip()
    return media_type.strip().lower(), charset or None


def _decode(body: bytes, charset: str | None, url: str) -> str:
    """Decode the body by its charset; UTF-8 by default (RFC 8259 for JSON; pip does too)."""
    encoding = charset or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise MalformedPage(url, f"unknown charset {encoding!r} in Content-Type") from None
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise MalformedPage(url, f"body is not valid {encoding}: {exc.reason}") from None
    return text.removeprefix("\ufeff")


def _header(headers: Mapping[str, str], name: str, url: str) -> str | None:
    """Case-insensitive header lookup over any Mapping (RFC 9110 5.1)."""
    wanted = name.lower()
    values = {value for key, value in headers.items() if key.lower() == wanted}
    if len(values) > 1:
        shown = ", ".join(repr(v) for v in sorted(values))
        raise MalformedPage(url, f"conflicting {name} headers: {shown}")
    return values.pop() if values else None
