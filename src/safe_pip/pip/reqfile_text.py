"""A requirements file's text as pip reads it: decoding, logical lines, ``${VAR}``.

Each function mirrors a step of pip's ``req_file.py`` (``get_file_content``, ``join_lines``,
``ignore_comments``, ``expand_env_variables``, ``break_args_options``), so that pip's line
numbers and ours agree and a line is cut where pip cuts it.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from safe_pip.errors import InputError

#: A comment: ``#`` at the start of the line or after whitespace (so ``#egg=`` survives).
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
#: The only variable syntax pip expands.
ENV_VAR_RE = re.compile(r"(?P<var>\$\{(?P<name>[A-Z0-9_]+)\})")
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

#: Larger than any real requirements file; stops ``-r /dev/zero`` from eating memory.
_MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Logical:
    """A logical line: physical lines ``first``..``last`` (1-based) and its comment-free text."""

    first: int
    last: int
    text: str


def read_text(path: str, included_at: tuple[str, int] | None) -> str:
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


def logical_lines(physical: Sequence[str]) -> list[Logical]:
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
    return [Logical(a, b, _COMMENT_RE.sub("", text).strip()) for a, b, text in joined]


def expand_env(text: str) -> str:
    """pip's ``expand_env_variables``: ``${NAME}`` replaced when set and non-empty."""
    for var, name in ENV_VAR_RE.findall(text):
        value = os.getenv(name)
        if not value:
            continue
        text = text.replace(var, value)
    return text


def break_args_options(line: str) -> tuple[str, str]:
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
