"""Strict readers of what both page formats carry: serials, hashes, API versions, file URLs
and file names. Each raises :class:`~safe_pip.errors.MalformedPage` naming the field, because
a page that cannot be read exactly is treated as a stale view."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from safe_pip.errors import MalformedPage
from safe_pip.index.model import OneHash, compact_hashes

#: Hash names pip understands in a URL fragment, most preferred first. PEP 503 names sha256 as
#: the one to use; the others are what pip's ``LinkHash`` accepts.
FRAGMENT_HASHES = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")

_DIGITS = re.compile(r"[0-9]+")  # not \d: that also matches non-ASCII digits
_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_NAME = re.compile(r"[a-z0-9_]+")  # hashlib.new() names, lowercased (PEP 691)
_API_VERSION = re.compile(r"([0-9]+)\.([0-9]+)")
#: An absolute http(s) URL that ``urljoin`` and ``urldefrag`` give back unchanged: lowercase
#: scheme, a netloc without brackets, and a path of printable ASCII with no parameters, query
#: or fragment. Such URLs (every file URL of the real index's JSON pages) skip ``urljoin``,
#: the costliest step of reading a page of thousands of files.
_PLAIN_URL = re.compile(r"https?://[!$&'()*+,\-.0-9:=@A-Z_a-z~%]+/[!$&'()*+,\-./0-9:=@A-Z_a-z~%]*")


def serial_from_text(value: str, where: str, url: str) -> int:
    """A serial given as text (header, HTML comment): ASCII digits only."""
    return _digits(value.strip(" \t"), value, where, url)  # HTTP optional whitespace


def _digits(text: str, given: str, where: str, url: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise MalformedPage(url, f"non-numeric serial {given!r} in {where}")
    try:
        return int(text)
    except ValueError:  # more digits than int() accepts (CPython's int_max_str_digits)
        raise MalformedPage(url, f"non-numeric serial {given!r} in {where}") from None


def serial_from_json(value: object, where: str, url: str) -> int:
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


def check_api_version(value: object, where: str, url: str) -> str:
    """PEP 629 version "Major.Minor"; only major version 1 is understood."""
    match = _API_VERSION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise MalformedPage(url, f"bad api-version {value!r} in {where}")
    if int(match.group(1)) != 1:
        raise MalformedPage(
            url, f"unsupported api-version {value!r} in {where} (safe-pip reads major version 1)"
        )
    return match.group(0)


def split_file_url(page_url: str, href: str) -> tuple[str, str]:
    """Absolute URL without fragment, and the fragment (PEP 503: relative URLs are allowed)."""
    href = href.strip()
    if _PLAIN_URL.fullmatch(href):
        return href, ""
    absolute, fragment = urldefrag(urljoin(page_url, href))
    return absolute, fragment


#: Hash names found good, as given -> lowercased: every file of a page names the same one or
#: two, so each is checked once, and every file's dict shares one key string.
_HASH_NAMES: dict[str, str] = {}
_LOWER_HEX = re.compile(r"[0-9a-f]+")


def check_hashes(hashes: Iterable[tuple[object, object]], where: str, url: str) -> dict[str, str]:
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
        # The digest as given when already lowercase (nearly always): no copy of it per file.
        digest = value if _LOWER_HEX.fullmatch(value) else value.lower()
        if checked.setdefault(key, digest) != digest:
            raise MalformedPage(url, f"two different {key} digests in {where}")
    return checked


def page_hashes(hashes: dict[object, object], where: str, url: str) -> Mapping[str, str]:
    """:func:`check_hashes` of a decoded JSON object, as a page keeps them
    (:func:`~safe_pip.index.model.compact_hashes`). One hash already in canonical form (a
    lowercase name and even-length lowercase hex, as the real index writes every file's) is
    checked by its bytes form alone, which the page keeps: no regex, dict or copy per file."""
    if len(hashes) == 1:
        ((name, value),) = hashes.items()
        if type(name) is str and _HASH_NAMES.get(name) == name and type(value) is str:
            try:
                digest = bytes.fromhex(value)
            except ValueError:
                digest = None
            # (fromhex also takes upper case and spaces: only the canonical form round-trips)
            if digest is not None and digest.hex() == value:
                return OneHash(name, digest)
    return compact_hashes(check_hashes(hashes.items(), where, url))


def fragment_hashes(fragment: str, where: str, url: str) -> dict[str, str]:
    """Hashes from a ``#<hashname>=<hexdigest>`` fragment (PEP 503); other items ignored.

    pip scans the fragment for ``sha256=`` and the other names in ``FRAGMENT_HASHES``;
    anything else in a fragment (``egg=``, ``subdirectory=``) is not a hash.
    """
    if not fragment:
        return {}
    pairs: list[tuple[object, object]] = []
    for item in fragment.split("&"):
        name, sep, value = item.partition("=")
        if sep and name.lower() in FRAGMENT_HASHES:
            pairs.append((name, value))
    return check_hashes(pairs, where, url)


def check_filename(filename: str, where: str, url: str) -> str:
    """A file name must be one path segment: other modules may use it to name files on disk."""
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or (
        "\0" in filename
    ):
        raise MalformedPage(url, f"bad filename {filename!r} in {where}")
    return filename


def name_from_url(url: str) -> str:
    """The project name as the URL gives it: ``/simple/<name>/`` (PEP 503)."""
    path = urlsplit(url).path.rstrip("/")
    return unquote(path.rsplit("/", 1)[-1])
