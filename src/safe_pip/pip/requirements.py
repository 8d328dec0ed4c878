"""Requirements files, read the way pip reads them, and copies of them that point at the guard.

Why this exists: pip takes index options not only from its command line but also from
``--index-url`` / ``--extra-index-url`` / ``--no-index`` / ``--find-links`` lines inside
requirements files (and the files those include). If safe-pip only rewrote the command line, a
requirements file could send pip straight to an index the guard never sees. So safe-pip reads
every requirements file the way pip will, and hands pip rewritten copies.

"The way pip will" is the point: every rule below mirrors pip's ``req_file.py`` (pip 25.1 to
26.x), including its quirks, because a reader that disagrees with pip about which line is an
option, where a comment starts or which file ``-r`` names would let an index URL slip past:

* lines are split with ``str.splitlines`` (so pip's line numbers and ours agree);
* a line ending in ``\\`` is joined to the next unless it is a comment line; the joined parts
  have *all* their leading and trailing backslashes stripped (``str.strip("\\\\")``), and a
  comment line ends a continuation;
* comments (``#`` at the start or after whitespace) are stripped *after* joining;
* ``${VAR}`` (upper case, digits, ``_``) is expanded from the environment when set and
  non-empty, and left as written otherwise;
* the line is cut at the first space-separated token that starts with ``-``: what comes before
  is the requirement, what follows is split with ``shlex`` and parsed like optparse does
  (``--opt value``, ``--opt=value``, ``-oVALUE``, unique abbreviations of long options, ``--``
  ending the options, stray words ignored);
* a line with a requirement ignores every option but ``--hash`` / ``--config-settings`` /
  ``--global-option``; a ``-r`` / ``-c`` line ignores everything but its first ``-r`` (else
  its first ``-c``); only the first ``--find-links`` of a line counts; a later
  ``--index-url`` line drops the extra index URLs given before it; ``--no-index`` drops them
  all for good. :func:`index_options` applies these rules.

Where we are stricter than pip, it is on purpose and fails closed: remote (``http:``,
``https:``, ``file:``) requirements files are refused rather than fetched, files that do not
decode (pip would fall back to the locale's encoding) or hold NUL characters are refused, and an
include cycle through a symlink is reported as a cycle.

This module is the face the rest of safe-pip imports; the reading is done in ``reqfile_text``
(decoding, logical lines), ``reqfile_options`` (the options), ``reqfile_specs`` (requirement
or direct reference) and ``reqfile_reader`` (lines and includes), and the copies for the
guard are written by ``reqfile_copies``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from safe_pip.index.names import canonical_name
from safe_pip.pip.reqfile_copies import rewrite_for_guard
from safe_pip.pip.reqfile_options import INDEX_OPTIONS
from safe_pip.pip.reqfile_reader import (
    REMOTE_MESSAGE,
    ReqKind,
    ReqLine,
    include_of,
    read_requirements,
    resolve_find_link,
)

__all__ = [
    "REMOTE_MESSAGE",
    "IndexOptions",
    "ReqKind",
    "ReqLine",
    "index_options",
    "read_requirements",
    "requirement_names",
    "rewrite_for_guard",
]


@dataclass(frozen=True)
class IndexOptions:
    """What requirements-file lines do to pip's index settings, as pip applies them.

    ``index_url`` set means pip drops every index URL it had before (the command line's and
    earlier files' ``--extra-index-url`` too) and uses it, then ``extra_index_urls``; unset,
    ``extra_index_urls`` are added to what pip already had. ``no_index`` set means pip uses no
    index at all (``index_url`` and ``extra_index_urls`` are then empty, as pip ignores them).
    ``find_links`` are resolved as pip does. ``has_index_options`` is whether any effective
    option line carried ``--index-url``, ``--extra-index-url``, ``--no-index`` or
    ``--find-links``, even one pip then ignored.
    """

    index_url: str | None
    extra_index_urls: tuple[str, ...]
    no_index: bool
    find_links: tuple[str, ...]
    has_index_options: bool


def index_options(lines: Iterable[ReqLine]) -> IndexOptions:
    """Fold the lines' index options in order, exactly as pip's ``handle_option_line`` does.

    Pass the lines of every requirements file pip is given, in the order pip reads them, to
    get the combined effect. Options on requirement, editable and ``-r`` / ``-c`` lines are
    ignored, as pip ignores them. Relative find-links are resolved against the current
    directory when the file path is relative, so call this from pip's working directory.
    """
    index_url: str | None = None
    extras: list[str] = []
    no_index = False
    find_links: list[str] = []
    has_index_options = False
    for line in lines:
        if line.kind != "option" or include_of(line) is not None:
            continue
        values: dict[str, list[str]] = {}
        for name, value in line.options:
            if name in INDEX_OPTIONS:
                has_index_options = True
            if value is not None:
                values.setdefault(name, []).append(value)
        if any(name == "--no-index" for name, _ in line.options):
            no_index = True
            index_url = None
            extras = []
        line_index_url = values.get("--index-url", [None])[-1]  # optparse "store": last wins
        if line_index_url and not no_index:
            index_url = line_index_url
            extras = []
        if not no_index:
            extras.extend(values.get("--extra-index-url", []))
        if "--find-links" in values:
            # pip uses only the first --find-links of a line (its FIXME, not ours).
            find_links.append(resolve_find_link(values["--find-links"][0], line.path))
    return IndexOptions(
        index_url=index_url,
        extra_index_urls=tuple(extras),
        no_index=no_index,
        find_links=tuple(find_links),
        has_index_options=has_index_options,
    )


def requirement_names(lines: Iterable[ReqLine], *, include_constraints: bool = False) -> list[str]:
    """Canonical names of the requirements pip will look up on an index, first seen first.

    Only ``"requirement"`` lines count: direct references (``name @ url``, paths, URLs) and
    editables are not looked up by name. Constraint lines are left out unless asked for,
    because a constraints file often pins far more than is installed. Markers are not
    evaluated (the target environment may not be this one), so the list can be a superset.
    """
    seen: dict[str, None] = {}
    for line in lines:
        if line.kind != "requirement" or line.requirement is None:
            continue
        if line.constraint and not include_constraints:
            continue
        seen.setdefault(canonical_name(line.requirement.name), None)
    return list(seen)
