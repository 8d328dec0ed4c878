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
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
import shlex
from dataclasses import dataclass

from safe_pip.errors import InputError
from safe_pip.index.names import canonical_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Literal

    # packaging's parsers are imported where used: the runner reads requirements files before
    # pip starts, and a command line without them need not wait for packaging (issue 7).
    from packaging.requirements import Requirement

__all__ = [
    "IndexOptions",
    "ReqKind",
    "ReqLine",
    "index_options",
    "read_requirements",
    "requirement_names",
    "rewrite_for_guard",
]

#: What a logical line is: a PEP 508 requirement by name, a direct reference (URL, local path
#: or ``name @ url``), an editable (``-e``), or a line of options only.
if TYPE_CHECKING:
    ReqKind = Literal["requirement", "direct", "editable", "option"]

#: The message for a requirements file named by URL (pip would fetch it; we cannot prove a
#: fetched file fresh, and it could name any index).
REMOTE_MESSAGE = "remote requirement files are not supported by safe-pip yet"

# --- pip's regular expressions, verbatim ---------------------------------------------------

#: A requirements file or include named by URL (pip fetches these three schemes).
_SCHEME_RE = re.compile(r"^(http|https|file):", re.I)
#: A comment: ``#`` at the start of the line or after whitespace (so ``#egg=`` survives).
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
#: The only variable syntax pip expands.
_ENV_VAR_RE = re.compile(r"(?P<var>\$\{(?P<name>[A-Z0-9_]+)\})")
#: A PEP 263 coding declaration, honoured on the first two lines when they start with ``#``.
_PEP263_RE = re.compile(rb"coding[:=]\s*([-\w.]+)")

#: Byte order marks pip honours, in pip's order (UTF-16 LE is a prefix of UTF-32 LE).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)

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

#: Hash algorithms pip accepts in ``--hash``.
_STRONG_HASHES = ("sha256", "sha384", "sha512")

#: Larger than any real requirements file; stops ``-r /dev/zero`` from eating memory.
_MAX_FILE_BYTES = 64 * 1024 * 1024

# --- the options pip accepts in requirements files -----------------------------------------


@dataclass(frozen=True)
class _Option:
    """One option of pip's requirements-file parser: its canonical long name and spellings."""

    name: str
    short: str | None
    takes_value: bool
    aliases: tuple[str, ...] = ()


#: pip's ``SUPPORTED_OPTIONS`` + ``SUPPORTED_OPTIONS_REQ`` as the union over pip 25.1..26.x:
#: ``--global-option`` went away in 25.3, ``--no-require-hashes`` / ``--all-releases`` /
#: ``--only-final`` came in 26. Abbreviations are matched against this whole set, so one that
#: is unique in some pip version but ambiguous here is refused (never silently misread).
_OPTIONS: tuple[_Option, ...] = (
    _Option("--index-url", "-i", True, ("--pypi-url",)),
    _Option("--extra-index-url", None, True),
    _Option("--no-index", None, False),
    _Option("--constraint", "-c", True),
    _Option("--requirement", "-r", True),
    _Option("--editable", "-e", True),
    _Option("--find-links", "-f", True),
    _Option("--no-binary", None, True),
    _Option("--only-binary", None, True),
    _Option("--prefer-binary", None, False),
    _Option("--require-hashes", None, False),
    _Option("--no-require-hashes", None, False),
    _Option("--pre", None, False),
    _Option("--all-releases", None, True),
    _Option("--only-final", None, True),
    _Option("--trusted-host", None, True),
    _Option("--use-feature", None, True),
    _Option("--hash", None, True),
    _Option("--config-settings", "-C", True),
    _Option("--global-option", None, True),
)
_LONG: dict[str, _Option] = {
    spelling: opt for opt in _OPTIONS for spelling in (opt.name, *opt.aliases)
}
_SHORT: dict[str, _Option] = {opt.short: opt for opt in _OPTIONS if opt.short is not None}
# Every short option takes a value, so "-xVALUE" never has to be read as a cluster of flags.
assert all(opt.takes_value for opt in _SHORT.values())

_INDEX_URL_OPTIONS = frozenset(("--index-url", "--extra-index-url"))
_INDEX_OPTIONS = _INDEX_URL_OPTIONS | {"--no-index", "--find-links"}


# --- public data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReqLine:
    """One logical line of a requirements file, as pip will understand it.

    ``text`` is the line as written (continuations joined, comment stripped, ``${VAR}`` *not*
    expanded, so secrets kept in the environment stay out of messages); everything else is
    read from the expanded line, as pip reads it. ``options`` holds every option on the line
    in order, canonical long name first (``-i`` and ``--pypi-url`` become ``--index-url``),
    value ``None`` for flags; on requirement lines it includes the ``--hash`` options also
    listed in ``hashes``, and options pip ignores there (recorded so nothing is hidden).
    ``spec`` is the requirement part: the PEP 508 string, URL or path, or the ``-e`` target;
    empty on option lines. ``requirement`` is set for PEP 508 strings, including
    ``name @ url`` (kind ``"direct"``), and ``None`` for bare URLs, paths and editables.
    """

    path: str
    line: int
    kind: ReqKind
    text: str
    requirement: Requirement | None
    hashes: tuple[str, ...]
    constraint: bool
    options: tuple[tuple[str, str | None], ...]
    spec: str = ""


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


# --- reading ---------------------------------------------------------------------------------


def read_requirements(
    path: str | os.PathLike[str], *, constraint: bool = False, requirements: bool = True
) -> list[ReqLine]:
    """Read a requirements file and everything it includes, depth-first in file order.

    ``-r`` / ``-c`` lines are returned (kind ``"option"``) and followed by the included
    file's lines. Included files are named as pip names them: the absolute path of the
    include resolved against the including file's directory. ``constraint`` says the file
    was given to pip with ``-c``; inside any file, ``-r`` includes requirements and ``-c``
    constraints, whatever the including file was (as in pip).

    Raises ``InputError`` (with file and line where there is one) for a file that cannot be
    read, is not text, names an unknown option, holds a malformed requirement, includes a
    remote file, or includes itself directly or indirectly.

    ``requirements=False`` leaves requirement lines out, unread: what is left (options,
    includes, editables) is all the index options need, and packaging's parsers are not
    imported (the runner reads the files so before pip starts, and in full after).
    """
    top = os.fspath(path)
    if _SCHEME_RE.search(top):
        raise InputError(top, REMOTE_MESSAGE)
    out: list[ReqLine] = []
    _read_tree(top, constraint, frozenset(), None, out, requirements)
    return out


def _read_tree(
    path: str,
    constraint: bool,
    ancestors: frozenset[str],
    included_at: tuple[str, int] | None,
    out: list[ReqLine],
    requirements: bool = True,
) -> None:
    """Append ``path``'s lines and its includes' to ``out``.

    ``ancestors`` holds the real paths of the files being read above this one: pip compares
    absolute paths, we compare real paths, so a cycle through a symlink is caught too.
    """
    ancestors = ancestors | {os.path.realpath(path)}
    for _logical, req_line in _parse_file(path, constraint, included_at, requirements)[1]:
        if req_line is None:
            continue
        out.append(req_line)
        include = _include_of(req_line)
        if include is None:
            continue
        target = _resolve_include(req_line, include[0])
        if os.path.realpath(target) in ancestors:
            raise InputError(
                req_line.path,
                f"include cycle: {target} includes itself, directly or through other files",
                req_line.line,
            )
        _read_tree(
            target, include[1], ancestors, (req_line.path, req_line.line), out, requirements
        )


@dataclass(frozen=True)
class _Logical:
    """A logical line: physical lines ``first``..``last`` (1-based) and its comment-free text."""

    first: int
    last: int
    text: str


def _parse_file(
    path: str, constraint: bool, included_at: tuple[str, int] | None, requirements: bool = True
) -> tuple[list[str], list[tuple[_Logical, ReqLine | None]]]:
    """One file's physical lines, and every logical line with its parse (``None`` for blank
    and comment-only lines, and for requirement lines unless ``requirements``)."""
    physical = _read_text(path, included_at).splitlines()
    entries = [
        (logical, _parse_line(path, logical, constraint, requirements) if logical.text else None)
        for logical in _logical_lines(physical)
    ]
    return physical, entries


def _read_text(path: str, included_at: tuple[str, int] | None) -> str:
    """Read and decode a requirements file as pip does, or raise ``InputError``.

    ``included_at`` (file, line) is where an include named it, so the error can point there.
    """

    def fail(message: str) -> InputError:
        if included_at is None:
            return InputError(path, message)
        return InputError(included_at[0], f"{path}: {message}", included_at[1])

    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a requirements file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise fail("too large for a requirements file")
    try:
        text = _decode(data)
    except LookupError as exc:
        raise fail(f"unknown encoding in coding declaration: {exc}") from None
    except UnicodeError:  # UnicodeDecodeError, or a codec's own complaint
        raise fail("not a text requirements file") from None
    if "\x00" in text:
        raise fail("not a text requirements file")
    return text


def _decode(data: bytes) -> str:
    """Decode like pip: a BOM first, then a PEP 263 declaration, then UTF-8 (no locale guess).

    pip falls back to the locale's encoding where UTF-8 fails; we refuse instead, so a binary
    file passed by mistake is reported rather than read as mojibake.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding)
    for line in data.split(b"\n")[:2]:
        if line[0:1] == b"#":
            match = _PEP263_RE.search(line)
            if match is not None:
                return data.decode(match.group(1).decode("ascii"))
    return data.decode("utf-8")


def _logical_lines(physical: Sequence[str]) -> list[_Logical]:
    """Join continuations and strip comments exactly as pip's ``join_lines`` and
    ``ignore_comments`` do, keeping each logical line's physical span (for the rewrite)."""
    joined: list[tuple[int, int, str]] = []
    first = 0
    parts: list[str] = []
    for number, line in enumerate(physical, start=1):
        is_comment = _COMMENT_RE.match(line) is not None
        if not line.endswith("\\") or is_comment:
            if is_comment:
                line = " " + line  # so the comment is matched later, as in pip
            if parts:
                parts.append(line)
                joined.append((first, number, "".join(parts)))
                parts = []
            else:
                joined.append((number, number, line))
        else:
            if not parts:
                first = number
            parts.append(line.strip("\\"))
    if parts:
        joined.append((first, len(physical), "".join(parts)))
    return [_Logical(a, b, _COMMENT_RE.sub("", text).strip()) for a, b, text in joined]


def _expand_env(text: str) -> str:
    """pip's ``expand_env_variables``: ``${NAME}`` replaced when set and non-empty."""
    for var, name in _ENV_VAR_RE.findall(text):
        value = os.getenv(name)
        if not value:
            continue
        text = text.replace(var, value)
    return text


def _break_args_options(line: str) -> tuple[str, str]:
    """pip's split of a line into requirement and options: at the first ``-`` token.

    Only the options are shlex-split, because markers in the requirement would not survive it.
    """
    tokens = line.split(" ")
    args: list[str] = []
    options = tokens[:]
    for token in tokens:
        if token.startswith("-"):
            break
        args.append(token)
        options.pop(0)
    return " ".join(args), " ".join(options)


def _parse_line(
    path: str, logical: _Logical, constraint: bool, requirements: bool = True
) -> ReqLine | None:
    """Turn one non-empty logical line into a ``ReqLine``, or raise ``InputError``; None for
    a requirement line when not ``requirements``."""
    line = _expand_env(logical.text)
    args, options_text = _break_args_options(line)
    try:
        tokens = shlex.split(options_text)
    except ValueError as exc:
        raise InputError(
            path, f"could not split options {options_text!r}: {exc}", logical.first
        ) from None
    options = tuple(_parse_options(tokens, path, logical.first))

    def make(
        kind: ReqKind, requirement: Requirement | None, hashes: tuple[str, ...], spec: str
    ) -> ReqLine:
        return ReqLine(
            path=path,
            line=logical.first,
            kind=kind,
            text=logical.text,
            requirement=requirement,
            hashes=hashes,
            constraint=constraint,
            options=options,
            spec=spec,
        )

    args = args.strip()  # pip keeps the spaces before the options; its callers strip them
    if args:
        if not requirements:
            return None
        kind, requirement = _classify(args, path, logical.first)
        hashes = tuple(value for name, value in options if name == "--hash" and value)
        return make(kind, requirement, hashes, args)
    editables = [value for name, value in options if name == "--editable" and value is not None]
    if editables:
        # pip installs the first -e of a line and ignores the rest (and any --hash there).
        return make("editable", None, (), editables[0])
    return make("option", None, (), "")


def _parse_options(tokens: Sequence[str], path: str, line: int) -> list[tuple[str, str | None]]:
    """Parse option tokens the way optparse does for pip's requirements-file parser.

    Words that are not options are skipped (optparse collects them and pip drops them), and
    ``--`` ends the options.
    """
    out: list[tuple[str, str | None]] = []
    rest = list(tokens)
    while rest:
        token = rest.pop(0)
        value: str | None
        if token == "--":
            break
        if token.startswith("--"):
            spelling, equals, explicit = token.partition("=")
            option = _match_long(spelling, path, line)
            if option.takes_value:
                if equals:
                    value = explicit
                elif rest:
                    value = rest.pop(0)
                else:
                    raise InputError(path, f"{option.name} option requires a value", line)
            elif equals:
                raise InputError(path, f"{option.name} option does not take a value", line)
            else:
                value = None
        elif token.startswith("-") and len(token) > 1:
            short = _SHORT.get(token[:2])
            if short is None:
                raise InputError(path, f"unknown option {token[:2]}", line)
            option = short
            if len(token) > 2:
                value = token[2:]
            elif rest:
                value = rest.pop(0)
            else:
                raise InputError(path, f"{token} option requires a value", line)
        else:
            continue
        _check_value(option.name, value, path, line)
        out.append((option.name, value))
    return out


def _match_long(spelling: str, path: str, line: int) -> _Option:
    """optparse's long-option lookup: an exact spelling, else a unique prefix of one."""
    if spelling in _LONG:
        return _LONG[spelling]
    candidates = sorted(name for name in _LONG if name.startswith(spelling))
    if len(candidates) == 1:
        return _LONG[candidates[0]]
    if not candidates:
        raise InputError(path, f"unknown option {spelling}", line)
    raise InputError(path, f"ambiguous option {spelling} (could be {', '.join(candidates)})", line)


def _check_value(name: str, value: str | None, path: str, line: int) -> None:
    """The checks pip's option callbacks make (hash form, KEY=VAL), with pip's wording."""
    if name == "--hash" and value is not None:
        algo, sep, _digest = value.partition(":")
        if not sep:
            raise InputError(
                path,
                "arguments to --hash must be a hash name followed by a value, "
                "like --hash=sha256:abcde...",
                line,
            )
        if algo not in _STRONG_HASHES:
            raise InputError(
                path, f"allowed hash algorithms for --hash are {', '.join(_STRONG_HASHES)}", line
            )
    if name == "--config-settings" and value is not None and "=" not in value:
        raise InputError(path, "arguments to --config-settings must be of the form KEY=VAL", line)


def _is_url(text: str) -> bool:
    """pip's ``is_url``: a scheme it can install from (plain or VCS)."""
    try:
        from urllib.parse import urlsplit

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


def _classify(spec: str, path: str, line: int) -> tuple[ReqKind, Requirement | None]:
    """Decide, as pip's ``parse_req_from_line`` does, whether ``spec`` is a PEP 508
    requirement or a direct reference, and parse it.

    pip cuts the markers off first (at ``"; "`` for URLs, ``";"`` otherwise), then takes a URL,
    an archive file name or a path-looking string as a direct reference. pip also asks the
    file system (an existing directory named like a path); we cannot know pip's working
    directory here, so a path-looking string that is not valid PEP 508 counts as a path.
    """
    from packaging.markers import InvalidMarker, Marker
    from packaging.requirements import InvalidRequirement, Requirement

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


def _one_line(message: str) -> str:
    """packaging's message, with its caret diagram (the text, then ``^`` under the bad
    place) folded into a column number: safe-pip's errors are one line."""
    lines = message.splitlines() or ["not a requirement"]
    if len(lines) >= 3 and lines[-1].strip().startswith("^"):
        text = lines[-2]
        indent = len(text) - len(text.lstrip())
        return f"{lines[0]} (at column {lines[-1].index('^') - indent + 1})"
    return " ".join(part.strip() for part in lines)


def _include_of(line: ReqLine) -> tuple[str, bool] | None:
    """The file a ``-r`` / ``-c`` line includes and whether as constraints, else ``None``.

    As in pip: only option lines include, the first ``-r`` wins over any ``-c``.
    """
    if line.kind != "option":
        return None
    for wanted, constraint in (("--requirement", False), ("--constraint", True)):
        for name, value in line.options:
            if name == wanted and value is not None:
                return value, constraint
    return None


def _resolve_include(line: ReqLine, target: str) -> str:
    """Where pip looks for an included file: relative to the including file's directory."""
    if _SCHEME_RE.search(target):
        raise InputError(line.path, f"{REMOTE_MESSAGE}: {target}", line.line)
    return os.path.abspath(os.path.join(os.path.dirname(line.path), target))


# --- what the lines mean for pip's index settings --------------------------------------------


def _resolve_find_link(value: str, reqfile: str) -> str:
    """pip's rule: relative to the requirements file's directory if that exists, else as is."""
    req_dir = os.path.dirname(os.path.abspath(reqfile))
    relative_to_reqs_file = os.path.join(req_dir, value)
    if os.path.exists(relative_to_reqs_file):
        return relative_to_reqs_file
    return value


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
        if line.kind != "option" or _include_of(line) is not None:
            continue
        values: dict[str, list[str]] = {}
        for name, value in line.options:
            if name in _INDEX_OPTIONS:
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
            find_links.append(_resolve_find_link(values["--find-links"][0], line.path))
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


# --- copies for the guard --------------------------------------------------------------------


def rewrite_for_guard(
    paths: Sequence[str], rewrite_index_url: Callable[[str], str], workdir: str
) -> dict[str, str]:
    """Write copies of the requirements files whose include tree names an index URL.

    ``paths`` are the ``-r`` / ``-c`` files as pip was given them. For each whose tree has
    an effective ``--index-url`` / ``--extra-index-url`` line, the whole tree is copied into
    ``workdir`` (each copy in its own ``reqfile-N/`` directory under its original name), and
    in the copies:

    * every non-empty index URL on such a line is replaced by ``rewrite_index_url(url)``;
    * every ``-r`` / ``-c`` line becomes ``--requirement=COPY`` / ``--constraint=COPY``, the
      absolute path of the included file's copy (pip ignores anything else on an include
      line, so nothing is lost); a file included twice is copied once;
    * relative ``--find-links`` that pip would resolve against the file's directory become
      absolute; others are kept, and a check refuses the rare one that would resolve
      differently next to the copy;
    * every other line is copied character for character, including relative requirement
      paths and ``-e .`` (pip takes those relative to its working directory, not the file).

    Line numbers are kept: a changed logical line is written on its first physical line and
    the rest of its continuation lines become blank lines; unchanged lines keep their
    continuations. Changed lines are written from the expanded values (``${VAR}`` resolved),
    in canonical ``--option=value`` form, and each is checked to parse back to what was meant.
    Copies are UTF-8 with a BOM, which pip honours before any PEP 263 coding comment the
    original carries. pip's own messages will name the copies, not the originals.

    Returns ``{path as given: copy path}`` for the top-level files that needed a copy.
    Raises ``InputError`` as :func:`read_requirements` does.
    """
    workdir = os.path.abspath(workdir)
    copies: dict[str, str] = {}
    kept_find_links: list[tuple[str, str, str, int]] = []
    result: dict[str, str] = {}
    for given in paths:
        # Validates the whole tree first (cycles, options); the runner reads the requirement
        # lines in full once pip has started.
        lines = read_requirements(given, requirements=False)
        if not any(_names_index_url(line) for line in lines):
            continue
        copy = _copy_tree(given, rewrite_index_url, workdir, copies, frozenset(), kept_find_links)
        result[given] = copy
    for copy_dir, value, origin, line_number in kept_find_links:
        if os.path.exists(os.path.join(copy_dir, value)):
            raise InputError(
                origin,
                f"cannot copy this file for the guard: --find-links {value!r} would resolve "
                "next to the copy",
                line_number,
            )
    return result


def _names_index_url(line: ReqLine) -> bool:
    """Whether pip takes an index URL from this line (option lines that are not includes)."""
    if line.kind != "option" or _include_of(line) is not None:
        return False
    return any(name in _INDEX_URL_OPTIONS and value for name, value in line.options)


def _copy_tree(
    path: str,
    rewrite_index_url: Callable[[str], str],
    workdir: str,
    copies: dict[str, str],
    ancestors: frozenset[str],
    kept_find_links: list[tuple[str, str, str, int]],
) -> str:
    """Write the copy of ``path`` and of everything it includes; return the copy's path."""
    real = os.path.realpath(path)
    if real in ancestors:  # read_requirements already refused cycles; the file changed since
        raise InputError(path, "include cycle: the file includes itself")
    key = os.path.abspath(path)
    if key in copies:  # included twice (not a cycle): one copy serves both
        return copies[key]
    ancestors = ancestors | {real}
    physical, parsed = _parse_file(path, False, None, requirements=False)
    number = len(copies)
    while os.path.exists(os.path.join(workdir, f"reqfile-{number}")):
        number += 1
    copy_dir = os.path.join(workdir, f"reqfile-{number}")
    os.makedirs(copy_dir)
    dest = os.path.join(copy_dir, os.path.basename(path) or "requirements.txt")
    copies[key] = dest  # reserved before the includes are copied, so their numbers differ
    out = list(physical)
    for logical, line in parsed:
        if line is None or line.kind != "option":
            continue
        include = _include_of(line)
        new_options: list[tuple[str, str | None]]
        if include is not None:
            target = _resolve_include(line, include[0])
            child = _copy_tree(
                target, rewrite_index_url, workdir, copies, ancestors, kept_find_links
            )
            new_options = [("--constraint" if include[1] else "--requirement", child)]
        else:
            new_options, changed = [], False
            for name, value in line.options:
                if name in _INDEX_URL_OPTIONS and value:
                    value, changed = rewrite_index_url(value), True
                elif name == "--find-links" and value is not None:
                    resolved = _resolve_find_link(value, path)
                    if resolved != value:
                        value, changed = resolved, True
                    else:
                        kept_find_links.append((copy_dir, value, line.path, line.line))
                new_options.append((name, value))
            if not changed:
                continue
        out[logical.first - 1] = _format_options(new_options, line)
        for index in range(logical.first, logical.last):
            out[index] = ""
    with open(dest, "w", encoding="utf-8") as handle:
        handle.write("\ufeff" + "".join(f"{text}\n" for text in out))
    return dest


def _format_options(options: Sequence[tuple[str, str | None]], line: ReqLine) -> str:
    """Write options as one requirements-file line, and prove pip will read them back as is.

    A value pip cannot be given on one line (a newline, whitespace before ``#``, something
    that looks like ``${VAR}``) is refused rather than written in a form pip would misread.
    """
    text = " ".join(
        name if value is None else f"{name}={shlex.quote(value)}" for name, value in options
    )

    def fail(why: str) -> InputError:
        return InputError(line.path, f"cannot copy this line for the guard: {why}", line.line)

    if len(text.splitlines()) != 1 or text.endswith("\\"):
        raise fail("a value would span lines")
    if _ENV_VAR_RE.search(text):
        raise fail("a value looks like ${VAR}, which pip would expand")
    logical = _logical_lines([text])
    if len(logical) != 1 or logical[0].text != text:
        raise fail("a value would be read as a comment")
    parsed = _parse_line(line.path, logical[0], False)
    if parsed is None or parsed.options != tuple(options):
        raise fail("a value would not be read back as written")
    return text
