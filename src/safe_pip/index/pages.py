"""Index project pages: a model, pure parsers (HTML, PEP 691 JSON) and renderers.

Parsing is kept apart from transport: callers pass the body, Content-Type, page URL and
headers they received. See DESIGN.md for where serials live.

The parsers are strict where a lenient reading could change what an installer sees (types,
hashes, serials, API major version: a page we cannot read exactly is treated as a stale view,
see ``MalformedPage``) and lenient where the real index or common mirrors differ from the
letter of the specs in ways pip itself tolerates (``null`` for absent optional JSON keys,
relative URLs, anchor text that does not match the file name, non-file anchors on static
mirror listings).
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal, NewType, NoReturn
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from safe_pip.errors import MalformedPage

Serial = NewType("Serial", int)

#: Where a serial was read from.
SerialSource = Literal["header", "json-meta", "html-comment"]

#: PEP 691 content types (the "v1" family; PEP 691 forbids answering with "latest").
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
#: PEP 503 pages, from indexes and static mirrors that predate PEP 691.
LEGACY_HTML_CONTENT_TYPE = "text/html"

#: The response header carrying a project's last serial (DESIGN.md, "Serials").
SERIAL_HEADER = "X-PyPI-Last-Serial"

#: The repository API version our renderers claim: 1.1 is PEP 700 (``versions``, ``size``,
#: ``upload-time``); we do not render the 1.2+ additions (PEP 708 tracks/alternate-locations,
#: PEP 740 provenance), which installers treat as optional.
RENDERED_API_VERSION = "1.1"

#: Human names of the serial sources, for error messages.
SERIAL_SOURCE_LABELS: Mapping[SerialSource, str] = {
    "header": SERIAL_HEADER,
    "json-meta": "meta._last-serial",
    "html-comment": "<!--SERIAL--> comment",
}

#: Hash names pip understands in a URL fragment, most preferred first. PEP 503 names sha256 as
#: the one to use; the others are what pip's ``LinkHash`` accepts.
_FRAGMENT_HASHES = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")

_DIGITS = re.compile(r"[0-9]+")  # not \d: that also matches non-ASCII digits
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_NAME = re.compile(r"[a-z0-9_]+")  # hashlib.new() names, lowercased (PEP 691)
_API_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")
_SERIAL_COMMENT = re.compile(r"\s*SERIAL\s+(.*?)\s*", re.DOTALL)
#: An absolute http(s) URL that ``urljoin`` and ``urldefrag`` give back unchanged: lowercase
#: scheme, a netloc without brackets, and a path of printable ASCII with no parameters, query
#: or fragment. Such URLs (every file URL of the real index's JSON pages) skip ``urljoin``,
#: the costliest step of reading a page of thousands of files.
_PLAIN_URL = re.compile(r"https?://[!$&'()*+,\-.0-9:=@A-Z_a-z~%]+/[!$&'()*+,\-./0-9:=@A-Z_a-z~%]*")


@dataclass(frozen=True, slots=True)  # slots: a big page lists thousands
class DistFile:
    """One file listed on a project page."""

    filename: str
    url: str  # absolute, fragment removed
    hashes: Mapping[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    yanked: bool = False
    yanked_reason: str | None = None
    # PEP 658/714: None (not advertised), True (available, no hashes) or a hash mapping.
    core_metadata: Mapping[str, str] | bool | None = None
    gpg_sig: bool | None = None
    upload_time: str | None = None  # PEP 700, ISO 8601 as the index gave it
    size: int | None = None  # PEP 700


@dataclass(frozen=True)
class ProjectPage:
    """A parsed project page (``/simple/<project>/``)."""

    name: str  # as the page gives it (JSON "name"); else the last URL path segment
    files: tuple[DistFile, ...]
    serials: Mapping[SerialSource, int] = field(default_factory=dict)
    versions: tuple[str, ...] | None = None  # PEP 700 (JSON API 1.1+)
    api_version: str | None = None
    fmt: Literal["json", "html"] = "json"


class InconsistentSerials(MalformedPage):
    """The serial sources of one response disagree (header vs body).

    The real index fills the header and the body from the same database row, so a mismatch
    means the response was stitched together from two moments (e.g. a cache that rewrites
    headers); neither number can be trusted, so the page counts as malformed (a stale view).
    """

    def __init__(self, url: str, serials: Mapping[SerialSource, int]) -> None:
        self.serials: dict[SerialSource, int] = dict(serials)
        described = ", ".join(
            f"{SERIAL_SOURCE_LABELS[source]} {self.serials[source]}"
            for source in SERIAL_SOURCE_LABELS
            if source in self.serials
        )
        super().__init__(url, f"serials disagree: {described}")


#: ``content_fingerprint``: per file (filename, sorted hashes, yanked, yanked_reason,
#: requires_python), sorted.
Fingerprint = tuple[tuple[str, tuple[tuple[str, str], ...], bool, str | None, str | None], ...]


# --------------------------------------------------------------------------- parsing


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
        serials["header"] = _serial_from_text(header, SERIAL_HEADER, url)

    if fmt == "json":
        return _parse_json(text, url, serials)
    return _parse_html(text, url, serials)


def page_serial(page: ProjectPage, url: str) -> int | None:
    """The page's serial, if its sources (header, JSON meta, HTML comment) agree.

    None when the page carries no serial at all (static mirrors); the caller decides what
    that means (DESIGN.md: honest degradation). Raises ``InconsistentSerials`` when two
    sources give different numbers.
    """
    values = set(page.serials.values())
    if not values:
        return None
    if len(values) > 1:
        raise InconsistentSerials(url, page.serials)
    return values.pop()


def content_fingerprint(page: ProjectPage) -> Fingerprint:
    """What an installer acts on, per file, in a canonical order.

    Two pages with equal fingerprints lead pip to the same choices: same files, same hashes,
    same yanks (PEP 592) and the same Requires-Python filters (PEP 503/345). URLs are left
    out on purpose (a mirror or the proxy serves the same file from elsewhere), and so are
    PEP 700 size/upload-time and PEP 658 metadata, which do not change which file is chosen.
    Used to accept a cached page whose serial is behind the origin's only because of
    journal entries that do not change content (role changes; warehouse #12933).
    """
    return tuple(
        sorted(
            (
                f.filename,
                tuple(sorted(f.hashes.items())),
                f.yanked,
                f.yanked_reason if f.yanked else None,
                f.requires_python,
            )
            for f in page.files
        )
    )


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


def _serial_from_text(value: str, where: str, url: str) -> int:
    """A serial given as text (header, HTML comment): ASCII digits only."""
    return _digits(value.strip(" \t"), value, where, url)  # HTTP optional whitespace


def _digits(text: str, given: str, where: str, url: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise MalformedPage(url, f"non-numeric serial {given!r} in {where}")
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts (CPython's int_max_str_digits)
        raise MalformedPage(url, f"non-numeric serial {given!r} in {where}") from None


def _serial_from_json(value: object, where: str, url: str) -> int:
    """A serial given in JSON: a non-negative integer, or a string of ASCII digits.

    PyPI writes an integer; bandersnatch mirrors (and indexes built on them) write the same
    number as a string ("37059094"), so a guard taking integers only would see no serial
    there. The string must be digits and nothing else (no sign, space or non-ASCII digit);
    a bool, float or anything else is refused.
    """
    if isinstance(value, str):
        return _digits(value, value, where, url)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedPage(url, f"non-numeric serial {value!r} in {where}")
    return value


def _check_api_version(value: object, where: str, url: str) -> str:
    """PEP 629 version "Major.Minor"; only major version 1 is understood."""
    match = _API_VERSION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise MalformedPage(url, f"bad api-version {value!r} in {where}")
    if int(match.group(1)) != 1:
        raise MalformedPage(
            url, f"unsupported api-version {value!r} in {where} (safe-pip reads major version 1)"
        )
    return match.group(0)


def _file_url(page_url: str, href: str) -> tuple[str, str]:
    """Absolute URL without fragment, and the fragment (PEP 503: relative URLs are allowed)."""
    href = href.strip()
    if _PLAIN_URL.fullmatch(href):
        return href, ""
    absolute, fragment = urldefrag(urljoin(page_url, href))
    return absolute, fragment


#: Hash names found good, as given -> lowercased: every file of a page names the same one or
#: two, so each is checked once, and every file's dict shares one key string.
_HASH_NAMES: dict[str, str] = {}


def _check_hashes(hashes: Iterable[tuple[object, object]], where: str, url: str) -> dict[str, str]:
    """PEP 691: hash names as for ``hashlib.new`` (lowercase), values hex digests.

    Names and values are lowercased so that pages differing only in hex case compare equal.
    """
    checked: dict[str, str] = {}
    for name, value in hashes:
        key = _HASH_NAMES.get(name) if type(name) is str else None
        if key is None:
            if not isinstance(name, str) or not _HASH_NAME.fullmatch(name.lower()):
                raise MalformedPage(url, f"bad hash name {name!r} in {where}")
            key = name.lower()
            if len(_HASH_NAMES) < 64:
                _HASH_NAMES[name] = key
        if not isinstance(value, str) or not _HEX.fullmatch(value):
            raise MalformedPage(url, f"bad {name} digest {value!r} in {where}")
        digest = value.lower()
        if checked.setdefault(key, digest) != digest:
            raise MalformedPage(url, f"two different {key} digests in {where}")
    return checked


def _fragment_hashes(fragment: str, where: str, url: str) -> dict[str, str]:
    """Hashes from a ``#<hashname>=<hexdigest>`` fragment (PEP 503); other items ignored.

    pip scans the fragment for ``sha256=`` and the other names in ``_FRAGMENT_HASHES``;
    anything else in a fragment (``egg=``, ``subdirectory=``) is not a hash.
    """
    if not fragment:
        return {}
    pairs: list[tuple[object, object]] = []
    for item in fragment.split("&"):
        name, sep, value = item.partition("=")
        if sep and name.lower() in _FRAGMENT_HASHES:
            pairs.append((name, value))
    return _check_hashes(pairs, where, url)


def _check_filename(filename: str, where: str, url: str) -> str:
    """A file name must be one path segment: other modules may use it to name files on disk."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or (
        "\0" in filename
    ):
        raise MalformedPage(url, f"bad filename {filename!r} in {where}")
    return filename


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
    return _check_hashes([(name, digest)], f"{attr} of {filename}", url)


def _bool_from_text(value: str | None, attr: str, filename: str, url: str) -> bool:
    """PEP 503 ``data-gpg-sig``: ``true`` or ``false``."""
    if value not in ("true", "false"):
        raise MalformedPage(
            url, f"bad {attr} value {value!r} for {filename} (want 'true' or 'false')"
        )
    return value == "true"


def _name_from_url(url: str) -> str:
    """The project name as the URL gives it: ``/simple/<name>/`` (PEP 503)."""
    path = urlsplit(url).path.rstrip("/")
    return unquote(path.rsplit("/", 1)[-1])


# ---- JSON (PEP 691, PEP 700, PEP 714)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate object keys: parsers disagree on which one wins (RFC 8259 4)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python extensions, not RFC 8259


def _parse_json(text: str, url: str, serials: dict[SerialSource, int]) -> ProjectPage:
    """A PEP 691 project page (with PEP 700 and PEP 714 keys)."""
    try:
        data = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MalformedPage(url, f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedPage(url, f"JSON page is a {type(data).__name__}, not an object")

    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise MalformedPage(url, "JSON page has no meta object")
    if "api-version" not in meta:
        raise MalformedPage(url, "JSON page has no meta.api-version")
    api_version = _check_api_version(meta["api-version"], "meta.api-version", url)
    if meta.get("_last-serial") is not None:
        serials["json-meta"] = _serial_from_json(meta["_last-serial"], "meta._last-serial", url)

    name = data.get("name")
    if name is None:
        name = _name_from_url(url)
    elif not isinstance(name, str):
        raise MalformedPage(url, f"JSON name is {name!r}, not a string")

    versions = data.get("versions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise MalformedPage(url, "JSON versions is not a list of strings")
        versions = tuple(versions)

    raw_files = data.get("files")
    if not isinstance(raw_files, list):
        raise MalformedPage(url, "JSON files is not a list")
    files = tuple(_json_file(raw, f"files[{i}]", url) for i, raw in enumerate(raw_files))
    return ProjectPage(
        name=name,
        files=files,
        serials=serials,
        versions=versions,
        api_version=api_version,
        fmt="json",
    )


def _json_file(raw: object, where: str, url: str) -> DistFile:
    """One entry of ``files``. ``null`` counts as absent for the optional keys (the real
    index sends ``"requires-python": null``).

    Written for speed (a page can list thousands of files): the optional keys are checked
    inline, in the order the checks have always run, so the same entry fails the same way.
    """
    if not isinstance(raw, dict):
        raise MalformedPage(url, f"{where} is not an object")
    get = raw.get

    filename = get("filename")
    if not isinstance(filename, str) or not filename:
        raise MalformedPage(url, f"{where} has no filename")
    _check_filename(filename, where, url)
    href = get("url")
    if not isinstance(href, str) or not href.strip():
        raise MalformedPage(url, f"{where} ({filename}) has no url")
    file_url, fragment = _file_url(url, href)

    hashes_raw = get("hashes")
    if hashes_raw is not None and not isinstance(hashes_raw, dict):
        _wrong_type(url, where, "hashes", hashes_raw)
    hashes = _check_hashes((hashes_raw or {}).items(), f"{where}.hashes", url)
    if fragment:
        # pip merges hashes from a URL fragment too; a conflict is an inconsistent page.
        for hash_name, digest in _fragment_hashes(fragment, f"{where}.url", url).items():
            if hashes.setdefault(hash_name, digest) != digest:
                raise MalformedPage(
                    url, f"{where}: url fragment and hashes disagree on {hash_name}"
                )

    # PEP 592 / 691: false, true, or a reason string. "" is outside the spec; pip reads it as
    # not yanked, uv as yanked: we take the safe side (yanked, no reason).
    yanked_raw = get("yanked")
    if yanked_raw is not None and not isinstance(yanked_raw, (bool, str)):
        _wrong_type(url, where, "yanked", yanked_raw)
    yanked = yanked_raw is not None and yanked_raw is not False
    reason = yanked_raw if isinstance(yanked_raw, str) and yanked_raw else None

    # PEP 714: core-metadata wins; dist-info-metadata is the PEP 691 name, and the real index
    # still sends data-dist-info-metadata (its pre-PEP 714 bug, warehouse #13705).
    metadata: Mapping[str, str] | bool | None = None
    for key in ("core-metadata", "dist-info-metadata", "data-dist-info-metadata"):
        value = get(key)
        if value is None:
            continue
        if not isinstance(value, (bool, dict)):
            _wrong_type(url, where, key, value)
        if isinstance(value, dict):
            metadata = _check_hashes(value.items(), f"{where}.{key}", url) or True
        else:
            metadata = True if value else None
        break

    size = get("size")
    if size is not None and not isinstance(size, int):
        _wrong_type(url, where, "size", size)
    if isinstance(size, bool) or (size is not None and size < 0):
        raise MalformedPage(url, f"{where}.size is {size!r}, not a non-negative integer")

    requires_python = get("requires-python")
    if requires_python is not None and not isinstance(requires_python, str):
        _wrong_type(url, where, "requires-python", requires_python)
    gpg_sig = get("gpg-sig")
    if gpg_sig is not None and not isinstance(gpg_sig, bool):
        _wrong_type(url, where, "gpg-sig", gpg_sig)
    upload_time = get("upload-time")
    if upload_time is not None and not isinstance(upload_time, str):
        _wrong_type(url, where, "upload-time", upload_time)

    return DistFile(
        filename=filename,
        url=file_url,
        hashes=hashes,
        requires_python=requires_python or None,
        yanked=yanked,
        yanked_reason=reason,
        core_metadata=metadata,
        gpg_sig=gpg_sig,
        upload_time=upload_time,
        size=size,
    )


def _wrong_type(url: str, where: str, key: str, value: object) -> NoReturn:
    raise MalformedPage(url, f"{where}.{key} is {value!r}, of the wrong type")


# ---- HTML (PEP 503, PEP 592, PEP 629, PEP 658, PEP 714)


class _SimplePageParser(HTMLParser):
    """Collects what a PEP 503 page says: anchors, the first ``<base href>``, the PEP 629
    ``pypi:repository-version`` meta tag and ``<!--SERIAL n-->`` comments. Everything else
    is ignored, as pip ignores it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # also unescapes attribute values
        self.anchors: list[dict[str, str | None]] = []
        self.base_href: str | None = None
        self.repository_version: str | None = None
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

    def handle_comment(self, data: str) -> None:
        match = _SERIAL_COMMENT.fullmatch(data)
        if match:
            self.serial_comments.append(match.group(1))


def _parse_html(text: str, url: str, serials: dict[SerialSource, int]) -> ProjectPage:
    """A PEP 503 project page, with PEP 592/629/658/714 attributes and the index's
    ``<!--SERIAL n-->`` comment (which the real index writes after ``</html>``)."""
    parser = _SimplePageParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, AttributeError, ValueError) as exc:  # html.parser's own failures
        raise MalformedPage(url, f"unparsable HTML: {exc}") from None

    api_version = None
    if parser.repository_version is not None:
        api_version = _check_api_version(
            parser.repository_version, "pypi:repository-version meta tag", url
        )

    label = SERIAL_SOURCE_LABELS["html-comment"]
    found = {_serial_from_text(text, label, url) for text in parser.serial_comments}
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
        name=_name_from_url(url),
        files=tuple(files),
        serials=serials,
        versions=None,
        api_version=api_version,
        fmt="html",
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
    file_url, fragment = _file_url(base, href)
    path = urlsplit(file_url).path
    if not path or path.endswith("/"):
        return None
    filename = _check_filename(unquote(path.rsplit("/", 1)[-1]), f"anchor {href!r}", url)
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
        hashes=_fragment_hashes(fragment, where, url),
        requires_python=attrs.get("data-requires-python") or None,
        yanked=yanked_attr,
        yanked_reason=(attrs.get("data-yanked") or None) if yanked_attr else None,
        core_metadata=metadata,
        gpg_sig=gpg_sig,
    )


# --------------------------------------------------------------------------- rendering


def render_json(
    page: ProjectPage, *, rewrite_url: Callable[[str], str], serial: int | None
) -> bytes:
    """A PEP 691 JSON page (API 1.1, PEP 700) listing ``page``'s files.

    Each file URL goes through ``rewrite_url`` (the proxy routes downloads through itself).
    PEP 658 metadata is written as ``core-metadata`` only: PEP 714 says servers should not
    send the old ``dist-info-metadata`` key in JSON, because pip 22.3 to 23.1 crash on it;
    pip versions older than that do not read JSON pages at all, so nothing is lost.
    ``serial`` becomes ``meta._last-serial`` when given.
    """
    meta: dict[str, object] = {"api-version": RENDERED_API_VERSION}
    if serial is not None:
        meta["_last-serial"] = serial
    document: dict[str, object] = {"meta": meta, "name": page.name}
    if page.versions is not None:
        document["versions"] = list(page.versions)
    document["files"] = [_json_entry(f, rewrite_url) for f in page.files]
    # ensure_ascii: the body is plain ASCII whatever the names contain (even lone surrogates).
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _json_entry(dist: DistFile, rewrite_url: Callable[[str], str]) -> dict[str, object]:
    entry: dict[str, object] = {
        "filename": dist.filename,
        "url": rewrite_url(dist.url),
        "hashes": dict(dist.hashes),
    }
    if dist.requires_python is not None:
        entry["requires-python"] = dist.requires_python
    entry["yanked"] = (dist.yanked_reason or True) if dist.yanked else False
    if dist.core_metadata is not None and dist.core_metadata is not False:
        entry["core-metadata"] = (
            True if isinstance(dist.core_metadata, bool) else dict(dist.core_metadata)
        )
    if dist.gpg_sig is not None:
        entry["gpg-sig"] = dist.gpg_sig
    if dist.upload_time is not None:
        entry["upload-time"] = dist.upload_time
    if dist.size is not None:
        entry["size"] = dist.size
    return entry


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
    for name in _FRAGMENT_HASHES:
        if name in hashes:
            return name, hashes[name]
    return None


def _escape(value: str) -> str:
    """Escape for text and double- or single-quoted attributes; CR as a character reference so
    that no HTML parser's newline normalisation changes the value."""
    return html.escape(value, quote=True).replace("\r", "&#13;")
