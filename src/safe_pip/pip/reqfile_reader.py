"""Reading a requirements file and the files it includes into :class:`ReqLine` values.

A file's logical lines are parsed one by one (requirement part, options), and ``-r`` / ``-c``
lines are followed depth-first, relative to the including file, as pip follows them.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from safe_pip.errors import InputError
from safe_pip.pip.reqfile_options import parse_options
from safe_pip.pip.reqfile_specs import classify
from safe_pip.pip.reqfile_text import (
    Logical,
    break_args_options,
    expand_env,
    logical_lines,
    read_text,
)

if TYPE_CHECKING:
    from packaging.requirements import Requirement

#: What a logical line is: a PEP 508 requirement by name, a direct reference (URL, local path
#: or ``name @ url``), an editable (``-e``), or a line of options only.
ReqKind = Literal["requirement", "direct", "editable", "option"]

#: The message for a requirements file named by URL (pip would fetch it; we cannot prove a
#: fetched file fresh, and it could name any index).
REMOTE_MESSAGE = "remote requirement files are not supported by safe-pip yet"

#: A requirements file or include named by URL (pip fetches these three schemes).
_SCHEME_RE = re.compile(r"^(http|https|file):", re.I)


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
    for _logical, req_line in parse_file(path, constraint, included_at, requirements)[1]:
        if req_line is None:
            continue
        out.append(req_line)
        include = include_of(req_line)
        if include is None:
            continue
        target = resolve_include(req_line, include[0])
        if os.path.realpath(target) in ancestors:
            raise InputError(
                req_line.path,
                f"include cycle: {target} includes itself, directly or through other files",
                req_line.line,
            )
        _read_tree(
            target, include[1], ancestors, (req_line.path, req_line.line), out, requirements
        )


def parse_file(
    path: str, constraint: bool, included_at: tuple[str, int] | None, requirements: bool = True
) -> tuple[list[str], list[tuple[Logical, ReqLine | None]]]:
    """One file's physical lines, and every logical line with its parse (``None`` for blank
    and comment-only lines, and for requirement lines unless ``requirements``)."""
    physical = read_text(path, included_at).splitlines()
    entries = [
        (logical, parse_line(path, logical, constraint, requirements) if logical.text else None)
        for logical in logical_lines(physical)
    ]
    return physical, entries


def parse_line(
    path: str, logical: Logical, constraint: bool, requirements: bool = True
) -> ReqLine | None:
    """Turn one non-empty logical line into a ``ReqLine``, or raise ``InputError``; None for
    a requirement line when not ``requirements``."""
    line = expand_env(logical.text)
    args, options_text = break_args_options(line)
    try:
        tokens = shlex.split(options_text)
    except ValueError as exc:
        raise InputError(
            path, f"could not split options {options_text!r}: {exc}", logical.first
        ) from None
    options = tuple(parse_options(tokens, path, logical.first))

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
        kind, requirement = classify(args, path, logical.first)
        hashes = tuple(value for name, value in options if name == "--hash" and value)
        return make(kind, requirement, hashes, args)
    editables = [value for name, value in options if name == "--editable" and value is not None]
    if editables:
        # pip installs the first -e of a line and ignores the rest (and any --hash there).
        return make("editable", None, (), editables[0])
    return make("option", None, (), "")


def include_of(line: ReqLine) -> tuple[str, bool] | None:
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


def resolve_include(line: ReqLine, target: str) -> str:
    """Where pip looks for an included file: relative to the including file's directory."""
    if _SCHEME_RE.search(target):
        raise InputError(line.path, f"{REMOTE_MESSAGE}: {target}", line.line)
    return os.path.abspath(os.path.join(os.path.dirname(line.path), target))


def resolve_find_link(value: str, reqfile: str) -> str:
    """pip's rule: relative to the requirements file's directory if that exists, else as is."""
    req_dir = os.path.dirname(os.path.abspath(reqfile))
    relative_to_reqs_file = os.path.join(req_dir, value)
    if os.path.exists(relative_to_reqs_file):
        return relative_to_reqs_file
    return value
