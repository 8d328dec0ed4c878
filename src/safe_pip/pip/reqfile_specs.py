"""The requirement part of a line: a PEP 508 requirement by name, or a direct reference.

pip's ``parse_req_from_line`` decides whether ``spec`` is looked up on an index by name or
taken from a URL or path; :func:`classify` decides the same way, with packaging's parsers.
"""

from __future__ import annotations

import os
import posixpath
from typing import Literal
from urllib.parse import urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement

from safe_pip.errors import InputError

#: URL schemes that make a requirement a direct URL in pip (``is_url``: plain + VCS schemes).
_URL_SCHEMES = frozenset(
    ("http", "https", "file", "ftp")
    + tuple(
        f"{vcs}+{proto}"
        for vcs, protos in (
            ("bzr", ("http", "https", "ssh", "sftp", "ftp", "lp", "file")),
            ("git", ("http", "https", "ssh", "git", "file")),
            ("hg", ("file", "http", "https", "ssh", "static-http")),
            ("svn", ("ssh", "http", "https", "svn", "file")),
        )
        for proto in protos
    )
)

#: File name endings pip takes as an archive (a requirement ending so is a path or URL).
_ARCHIVE_EXTENSIONS = frozenset(
    (".zip", ".whl", ".tar.bz2", ".tbz", ".tar.gz", ".tgz", ".tar")
    + (".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma")
)


def classify(
    spec: str, path: str, line: int
) -> tuple[Literal["requirement", "direct"], Requirement | None]:
    """Decide, as pip's ``parse_req_from_line`` does, whether ``spec`` is a PEP 508
    requirement or a direct reference, and parse it.

    pip cuts the markers off first (at ``"; "`` for URLs, ``";"`` otherwise), then takes a URL,
    an archive file name or a path-looking string as a direct reference. pip also asks the
    file system (an existing directory named like a path); we cannot know pip's working
    directory here, so a path-looking string that is not valid PEP 508 counts as a path.
    """
    marker_sep = "; " if _is_url(spec) else ";"
    name, sep, marker_text = spec.partition(marker_sep)
    marker_text = marker_text.strip()
    marker: Marker | None = None
    if sep and marker_text:
        try:
            marker = Marker(marker_text)
        except InvalidMarker as exc:
            raise InputError(path, f"invalid marker {marker_text!r}: {exc}", line) from None
    name = name.strip()
    if _is_url(name):
        return "direct", None
    if _is_archive(name):
        before, at, _after = name.partition("@")
        if not at or _looks_like_path(before):
            return "direct", None
    try:
        requirement = Requirement(name)
    except InvalidRequirement as exc:
        if _looks_like_path(name):
            return "direct", None
        raise InputError(
            path, f"invalid requirement {name!r}: {_one_line(str(exc))}", line
        ) from None
    if marker is not None:
        requirement.marker = marker
    return ("direct" if requirement.url else "requirement"), requirement


def _is_url(text: str) -> bool:
    """pip's ``is_url``: a scheme it can install from (plain or VCS)."""
    try:
        scheme = urlsplit(text).scheme
    except ValueError:  # e.g. an unclosed "[" in the host: not a URL pip could use either
        return False
    return scheme in _URL_SCHEMES


def _looks_like_path(name: str) -> bool:
    """pip's ``_looks_like_path``: a path separator, or a leading dot."""
    if os.path.sep in name or (os.path.altsep is not None and os.path.altsep in name):
        return True
    return name.startswith(".")


def _is_archive(name: str) -> bool:
    """pip's ``is_archive_file`` (``.tar.gz`` and friends count as one extension)."""
    base, ext = posixpath.splitext(name)
    if base.lower().endswith(".tar"):
        ext = base[-4:] + ext
    return ext.lower() in _ARCHIVE_EXTENSIONS


def _one_line(message: str) -> str:
    """packaging's message, with its caret diagram (the text, then ``^`` under the bad
    place) folded into a column number: safe-pip's errors are one line."""
    lines = message.splitlines() or ["not a requirement"]
    if len(lines) >= 3 and lines[-1].strip().startswith("^"):
        text = lines[-2]
        indent = len(text) - len(text.lstrip())
        return f"{lines[0]} (at column {lines[-1].index('^') - indent + 1})"
    return " ".join(part.strip() for part in lines)
