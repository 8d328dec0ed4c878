"""The project page model: the files a page lists, the serials it carries and where each came
from, and what an installer acts on (the fingerprint). Pure data; the parsers and renderers
are in :mod:`safe_pip.index.pages`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from safe_pip.errors import MalformedPage

#: Where a serial was read from.
SerialSource = Literal["header", "json-meta", "html-comment"]

#: PEP 691 content types (the "v1" family; PEP 691 forbids answering with "latest").
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
#: PEP 503 pages, from indexes and static mirrors that predate PEP 691.
LEGACY_HTML_CONTENT_TYPE = "text/html"

#: The response header carrying a project's last serial (PyPI sends it on every simple page;
#: the same number is in the JSON ``meta._last-serial`` and the HTML ``<!--SERIAL n-->``).
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


class OneHash(Mapping[str, str]):
    """``{name: hex digest}`` for a file with one hash (nearly every file), read-only, the
    digest kept as bytes: a page is kept for the whole run and lists up to thousands of files,
    each with a hash and a metadata hash; a dict and its 64-character string take about 300
    bytes, this about 110."""

    __slots__ = ("_name", "_digest")

    def __init__(self, name: str, digest: bytes) -> None:
        self._name = name
        self._digest = digest

    def __getitem__(self, key: str) -> str:
        if key != self._name:
            raise KeyError(key)
        return self._digest.hex()

    def __contains__(self, key: object) -> bool:
        return key == self._name

    def __iter__(self) -> Iterator[str]:
        yield self._name

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return repr(self.as_dict())

    def as_dict(self) -> dict[str, str]:
        """``dict(self)``, without the Mapping protocol's calls (rendering a page makes one
        per file)."""
        return {self._name: self._digest.hex()}


def hash_dict(hashes: Mapping[str, str]) -> dict[str, str]:
    """A new dict of a file's hashes as the page keeps them."""
    return hashes.as_dict() if type(hashes) is OneHash else dict(hashes)


def compact_hashes(hashes: dict[str, str]) -> Mapping[str, str]:
    """Checked hashes (lowercase hex) as a page keeps them: one hash as a :class:`OneHash`,
    else the dict itself."""
    if len(hashes) == 1:
        ((name, digest),) = hashes.items()
        if len(digest) % 2 == 0:  # (an odd-length digest has no bytes form; never on PyPI)
            return OneHash(name, bytes.fromhex(digest))
    return hashes


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
    #: PEP 792 project status as the page gives it ("active", "archived", "quarantined",
    #: "deprecated"; None when the page says nothing, which PEP 792 reads as active).
    status: str | None = None
    status_reason: str | None = None


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


def page_serial(page: ProjectPage, url: str) -> int | None:
    """The page's serial, if its sources (header, JSON meta, HTML comment) agree.

    None when the page carries no serial at all (static mirrors); the caller decides what
    that means. Raises ``InconsistentSerials`` when two sources give different numbers.
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
