"""The options pip accepts in requirements files, and their parse as optparse does it.

pip parses the options part of a line with optparse: ``--opt value``, ``--opt=value``,
``-oVALUE``, unique abbreviations of long options, ``--`` ending the options, and words that
are not options collected and dropped. :func:`parse_options` does the same over the same
option table, so an abbreviation pip would take as ``--index-url`` is read as one here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from safe_pip.errors import InputError


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

#: The options that name an index URL, and with them every option that sets pip's indexes.
INDEX_URL_OPTIONS = frozenset(("--index-url", "--extra-index-url"))
INDEX_OPTIONS = INDEX_URL_OPTIONS | {"--no-index", "--find-links"}

#: Hash algorithms pip accepts in ``--hash``.
_STRONG_HASHES = ("sha256", "sha384", "sha512")


def parse_options(tokens: Sequence[str], path: str, line: int) -> list[tuple[str, str | None]]:
    """Parse option tokens the way optparse does for pip's requirements-file parser.

    Each option comes out as (canonical long name, value), the value ``None`` for flags.
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
