"""PEP 503 HTML project pages (with PEP 592, 629, 658 and 714 attributes and the index's
``<!--SERIAL n-->`` comment): parsed as pip reads them, rendered with every value escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from safe_pip.errors import MalformedPage
from safe_pip.index.fields import (
    FRAGMENT_HASHES,
    check_api_version,
    check_filename,
    check_hashes,
    fragment_hashes,
    name_from_url,
    serial_from_text,
    split_file_url,
)
from safe_pip.index.model import (
    RENDERED_API_VERSION,
    SERIAL_SOURCE_LABELS,
    DistFile,
    ProjectPage,
    SerialSource,
    compact_hashes,
)

__all__ = ["parse_html", "render_html"]

_SERIAL_COMMENT = re.compile(r"\s*SERIAL\s+(.*?)\s*", re.DOTALL)


class _SimplePageParser(HTMLParser):
    """Collects what a PEP 503 page says: anchors, the first ``<base href>``, the PEP 629
    ``pypi:repository-version`` meta tag, the PEP 792 ``pypi:project-status`` and
    ``pypi:project-status-reason`` meta tags and ``<!--SERIAL n-->`` comments. Everything else
    is ignored, as pip ignores it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # also unescapes attribute values
        self.anchors: list[dict[str, str | None]] = []
        self.base_href: str | None = None
        self.repository_version: str | None = None
        self.status: str | None = None  # PEP 792
        self.status_reason: str | None = None
        self.serial_comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Repeated attributes: the last wins, as with pip's dict(attrs).
        attributes = dict(attrs)
        if tag == "a":
            self.anchors.append(attributes)
        elif tag == "base" and self.base_href is None and attributes.get("href"):
            self.base_href = attributes["href"]
        elif tag == "meta" and attributes.get("name") == "pypi:repository-version":
            self.repository_version = attributes.get("content") or ""
        elif tag == "meta" and attributes.get("name") == "pypi:project-status":
            self.status = self.status or attributes.get("content") or None
        elif tag == "meta" and attributes.get("name") == "pypi:project-status-reason":
            self.status_reason = self.status_reason or attributes.get("content") or None

    def handle_comment(self, data: str) -> None:
        match = _SERIAL_COMMENT.fullmatch(data)
        if match:
            self.serial_comments.append(match.group(1))


def parse_html(text: str, url: str, serials: dict[SerialSource, int]) -> ProjectPage:
    """A PEP 503 project page, with PEP 592/629/658/714 attributes and the index's
    ``<!--SERIAL n-->`` comment (which the real index writes after ``</html>``).

    ``serials`` holds what the response headers gave; the comment's serial is added to it.
    """
    parser = _SimplePageParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, AttributeError, ValueError) as exc:  # html.parser's own failures
        raise MalformedPage(url, f"unparsable HTML: {exc}") from None

    api_version = None
    if parser.repository_version is not None:
        api_version = check_api_version(
            parser.repository_version, "pypi:repository-version meta tag", url
        )

    label = SERIAL_SOURCE_LABELS["html-comment"]
    found = {serial_from_text(text, label, url) for text in parser.serial_comments}
    if len(found) > 1:
        raise MalformedPage(url, f"several different SERIAL comments: {sorted(found)}")
    if found:
        serials["html-comment"] = found.pop()

    base = urljoin(url, parser.base_href) if parser.base_href else url
    files = []
    for attrs in parser.anchors:
        dist = _html_file(attrs, base, url)
        if dist is not None:
            files.append(dist)
    return ProjectPage(
        name=name_from_url(url),
        files=tuple(files),
        serials=serials,
        versions=None,
        api_version=api_version,
        fmt="html",
        status=parser.status,
        status_reason=parser.status_reason,
    )


def _html_file(attrs: Mapping[str, str | None], base: str, url: str) -> DistFile | None:
    """One anchor; None for anchors that link to no file (no href, or a directory such as
    the ``../`` entry of a web server's directory listing used as a static mirror).

    The file name is taken from the URL's last path segment, as pip does: anchor text is
    often shortened on static mirror listings.
    """
    href = attrs.get("href")
    if not href or not href.strip():
        return None
    file_url, fragment = split_file_url(base, href)
    path = urlsplit(file_url).path
    if not path or path.endswith("/"):
        return None
    filename = check_filename(unquote(path.rsplit("/", 1)[-1]), f"anchor {href!r}", url)
    where = f"anchor for {filename}"

    yanked_attr = "data-yanked" in attrs
    metadata: Mapping[str, str] | bool | None = None
    for attr in ("data-core-metadata", "data-dist-info-metadata"):  # PEP 714 order
        if attr in attrs:
            metadata = _metadata_from_text(attrs[attr], attr, filename, url)
            break
    gpg_sig = None
    if "data-gpg-sig" in attrs:
        gpg_sig = _bool_from_text(attrs["data-gpg-sig"], "data-gpg-sig", filename, url)

    return DistFile(
        filename=filename,
        url=file_url,
        hashes=compact_hashes(fragment_hashes(fragment, where, url)),
        requires_python=attrs.get("data-requires-python") or None,
        yanked=yanked_attr,
        yanked_reason=(attrs.get("data-yanked") or None) if yanked_attr else None,
        core_metadata=metadata,
        gpg_sig=gpg_sig,
    )


def _metadata_from_text(
    value: str | None, attr: str, filename: str, url: str
) -> Mapping[str, str] | bool:
    """PEP 658/714 attribute value: ``true`` or ``<hashname>=<hexdigest>``."""
    if value == "true":
        return True
    name, sep, digest = (value or "").partition("=")
    if not sep:
        raise MalformedPage(
            url, f"bad {attr} value {value!r} for {filename} (want 'true' or 'sha256=<hex>')"
        )
    return compact_hashes(check_hashes([(name, digest)], f"{attr} of {filename}", url))


def _bool_from_text(value: str | None, attr: str, filename: str, url: str) -> bool:
    """PEP 503 ``data-gpg-sig``: ``true`` or ``false``."""
    if value not in ("true", "false"):
        raise MalformedPage(
            url, f"bad {attr} value {value!r} for {filename} (want 'true' or 'false')"
        )
    return value == "true"


def render_html(
    page: ProjectPage, *, rewrite_url: Callable[[str], str], serial: int | None
) -> bytes:
    """A PEP 503 HTML page (PEP 629 repository version 1.1) listing ``page``'s files.

    Each anchor's href is ``rewrite_url(url)`` plus one ``#<hash>=<hex>`` fragment (sha256
    if known, else the strongest hash pip understands). Attributes: ``data-requires-python``
    (PEP 503), ``data-yanked`` (PEP 592), ``data-core-metadata`` and, as PEP 714 allows in
    HTML, the same value in ``data-dist-info-metadata`` for pip versions before 23.2,
    ``data-gpg-sig``. Every value is HTML-escaped. PEP 700 size and upload-time have no HTML
    form. ``serial`` is written as ``<!--SERIAL n-->`` after ``</html>``, like the real index.
    """
    title = _escape(page.name)
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{RENDERED_API_VERSION}">',
        f"    <title>Links for {title}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>Links for {title}</h1>",
    ]
    lines.extend(f"    {_html_anchor(f, rewrite_url)}<br />" for f in page.files)
    lines += ["  </body>", "</html>"]
    if serial is not None:
        lines.append(f"<!--SERIAL {int(serial)}-->")
    return ("\n".join(lines) + "\n").encode("utf-8", "xmlcharrefreplace")


def _html_anchor(dist: DistFile, rewrite_url: Callable[[str], str]) -> str:
    href = rewrite_url(dist.url)
    if "#" in href:
        raise ValueError(f"rewrite_url returned a URL with a fragment: {href!r}")
    hash_pair = _preferred_hash(dist.hashes)
    if hash_pair is not None:
        href += f"#{hash_pair[0]}={hash_pair[1]}"
    attrs = [f'href="{_escape(href)}"']
    if dist.requires_python is not None:
        attrs.append(f'data-requires-python="{_escape(dist.requires_python)}"')
    if dist.yanked:
        attrs.append(f'data-yanked="{_escape(dist.yanked_reason or "")}"')
    if dist.core_metadata is not None and dist.core_metadata is not False:
        value = "true"
        if not isinstance(dist.core_metadata, bool):
            metadata_hash = _preferred_hash(dist.core_metadata)
            if metadata_hash is not None:
                value = f"{metadata_hash[0]}={metadata_hash[1]}"
        attrs.append(f'data-core-metadata="{_escape(value)}"')
        attrs.append(f'data-dist-info-metadata="{_escape(value)}"')
    if dist.gpg_sig is not None:
        attrs.append(f'data-gpg-sig="{"true" if dist.gpg_sig else "false"}"')
    return f"<a {' '.join(attrs)}>{_escape(dist.filename)}</a>"


def _preferred_hash(hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """The one hash an HTML fragment can carry: sha256 first (PEP 503), then what pip reads."""
    for name in FRAGMENT_HASHES:
        if name in hashes:
            return name, hashes[name]
    return None


def _escape(value: str) -> str:
    """Escape for text and double- or single-quoted attributes; CR as a character reference so
    that no HTML parser's newline normalisation changes the value."""
    return html.escape(value, quote=True).replace("\r", "&#13;")
