"""Copies of requirements files whose index lines point at the guard.

pip takes index options from requirements files too; a copy with those URLs rewritten (and
its includes pointing at their own copies) is what pip is given, so no line of a file can
send pip to an index the guard never sees.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence

from safe_pip.errors import InputError
from safe_pip.pip.reqfile_options import INDEX_URL_OPTIONS
from safe_pip.pip.reqfile_reader import (
    ReqLine,
    include_of,
    parse_file,
    parse_line,
    read_requirements,
    resolve_find_link,
    resolve_include,
)
from safe_pip.pip.reqfile_text import ENV_VAR_RE, logical_lines


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
    if line.kind != "option" or include_of(line) is not None:
        return False
    return any(name in INDEX_URL_OPTIONS and value for name, value in line.options)


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
    physical, parsed = parse_file(path, False, None, requirements=False)
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
        include = include_of(line)
        new_options: list[tuple[str, str | None]]
        if include is not None:
            target = resolve_include(line, include[0])
            child = _copy_tree(
                target, rewrite_index_url, workdir, copies, ancestors, kept_find_links
            )
            new_options = [("--constraint" if include[1] else "--requirement", child)]
        else:
            new_options, changed = [], False
            for name, value in line.options:
                if name in INDEX_URL_OPTIONS and value:
                    value, changed = rewrite_index_url(value), True
                elif name == "--find-links" and value is not None:
                    resolved = resolve_find_link(value, path)
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
    if ENV_VAR_RE.search(text):
        raise fail("a value looks like ${VAR}, which pip would expand")
    logical = logical_lines([text])
    if len(logical) != 1 or logical[0].text != text:
        raise fail("a value would be read as a comment")
    parsed = parse_line(line.path, logical[0], False)
    if parsed is None or parsed.options != tuple(options):
        raise fail("a value would not be read back as written")
    return text
