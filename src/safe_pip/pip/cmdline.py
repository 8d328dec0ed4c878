"""pip's command line, ``PIP_*`` variables and configuration files, read by pip itself.

safe-pip always runs its own pip (``python -m pip`` of its own environment), so the parser of
that pip reads the command line here: pip's ``create_command(name).parse_args(args)``, as
pip's ``main`` calls it. Every spelling pip accepts is therefore read as pip reads it: unique
abbreviations of long options (``--index`` for ``--index-url``), aliases (``--pypi-url``),
``--opt=value``, ``-iURL``, short clusters, repeated options, ``PIP_*`` variables, the
configuration files and ``--isolated``. A reader of our own could miss a spelling (``--index``
for ``--index-url``) and let pip reach an index unguarded; with pip's parser there is no
second reader to drift.

The parse is watched, not copied: each raw argument is attributed to the option that
consumed it (optparse's own ``_process_long_opt`` / ``_process_short_opts``), so the runner
can take out exactly the arguments of the options it places itself.
"""

from __future__ import annotations

import contextlib
import optparse
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from safe_pip.errors import UsageError
from safe_pip.net.urls import proxy_url, redact, split_url

if TYPE_CHECKING:
    from safe_pip.pip.requirements import IndexOptions

#: The pip commands safe-pip guards.
GUARDED_COMMANDS = ("install", "download", "wheel", "lock")

#: The pip releases whose option parser safe-pip reads (pyproject pins the same range, and
#: tox tests both ends).
SUPPORTED_PIP = ">=26.1,<27"


def default_index_url() -> str:
    """pip's default index URL, read from pip at run time."""
    # pip's internals are imported where used here: every safe-pip command imports this
    # module, and only those that read pip's settings need pip loaded.
    from pip._internal.models.index import PyPI

    return str(PyPI.simple_url)


def default_changelog_url() -> str:
    """The default index's XML-RPC endpoint, read from pip's constant."""
    from pip._internal.models.index import PyPI  # where used: see default_index_url

    return str(PyPI.pypi_url)


@dataclass
class Token:
    """One option or argument of the pip command line, as written and as pip understood it."""

    option: str | None  # pip's canonical name for the option (``--index-url``); None: argument
    value: str | None
    raw: list[str]  # the argv items it came from (rebuilt for one option of a short cluster)


@dataclass
class PipCommand:
    """A pip command line as pip's own parser read it."""

    command: str
    tokens: list[Token]
    values: optparse.Values  # pip's options: command line over PIP_* over configuration files
    positionals: list[str]
    parser: optparse.OptionParser = field(repr=False)
    asked: set[str] = field(default_factory=set)  # --help / --version, left to pip to answer

    def value(self, dest: str) -> Any:
        return getattr(self.values, dest, None)

    def option_of(self, dest: str) -> optparse.Option | None:
        """pip's option for a destination (None: this command has no such option)."""
        for option in _all_options(self.parser):
            if option.dest == dest:
                return option
        return None


def _all_options(parser: optparse.OptionParser) -> list[optparse.Option]:
    return list(parser._get_all_options())


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """pip reads its variables and finds its files through ``os.environ``: the parse sees
    ``env`` (the runner's own environment unless a caller gives another)."""
    if env is os.environ or dict(env) == dict(os.environ):
        yield
        return
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def parse_pip_args(
    command: str, args: Sequence[str], env: Mapping[str, str] | None = None
) -> PipCommand:
    """``pip <command> <args>`` as pip reads it, with pip's configuration and ``PIP_*``
    variables from ``env`` (default: this process's environment).

    pip's usage errors (an unknown option, a missing value, a bad value in pip.conf) become
    :class:`UsageError` with pip's own message.
    """
    try:
        # Where used (see default_index_url), and so that a pip of another layout is a
        # usage error here rather than a failure of every safe-pip command.
        from pip._internal.commands import create_command
    except ImportError as exc:  # pragma: no cover - depends on pip's layout
        raise UsageError(
            f"cannot read pip's options with this pip (safe-pip supports pip{SUPPORTED_PIP}): "
            f"{exc}"
        ) from exc
    args = list(args)
    # pip's main decides isolation by this literal test before parsing (pip's cli/main.py).
    pip_command = create_command(command, isolated="--isolated" in args)
    parser = pip_command.parser
    spans: list[tuple[int, int, list[tuple[optparse.Option, str, Any]]]] = []
    asked: set[str] = set()
    _watch(parser, command, args, spans, asked)
    env = os.environ if env is None else env
    with _environment(env):
        values, positionals = parser.parse_args(args)
    return PipCommand(
        command=command,
        tokens=_tokens(args, spans),
        values=values,
        positionals=list(positionals),
        parser=parser,
        asked=asked,
    )


def _watch(
    parser: optparse.OptionParser,
    command: str,
    args: list[str],
    spans: list[tuple[int, int, list[tuple[optparse.Option, str, Any]]]],
    asked: set[str],
) -> None:
    """Record which argv items each option consumed, on this parser instance only.

    optparse consumes a suffix of a copy of ``args`` (``rargs``), so an item's index is
    ``len(args) - len(rargs)`` before and after each option (or short cluster) is processed.
    """
    processed: list[tuple[optparse.Option, str, Any]] = []

    def watched(process_opts: Any) -> Any:
        def process(rargs: list[str], values: optparse.Values) -> None:
            start = len(args) - len(rargs)
            processed.clear()
            process_opts(rargs, values)
            spans.append((start, len(args) - len(rargs), list(processed)))

        return process

    parser._process_long_opt = watched(parser._process_long_opt)  # type: ignore[method-assign]
    parser._process_short_opts = watched(  # type: ignore[method-assign]
        parser._process_short_opts
    )
    for option in _all_options(parser):
        _record_processing(option, processed, asked)

    def error(msg: str) -> NoReturn:
        raise UsageError(f"pip {command}: {msg}")

    def exit_(status: int = 0, msg: str | None = None) -> NoReturn:
        # pip's parser exits only for configuration it cannot load.
        raise UsageError(f"cannot read pip's configuration: {(msg or '').strip()}")

    parser.error = error  # type: ignore[method-assign]
    parser.exit = exit_  # type: ignore[method-assign]


def _record_processing(
    option: optparse.Option,
    processed: list[tuple[optparse.Option, str, Any]],
    asked: set[str],
) -> None:
    original = option.process

    def process(opt: str, value: Any, values: Any, parser: Any) -> Any:
        processed.append((option, opt, value))
        if option.dest in ("help", "version"):
            asked.add(option.dest)  # pip itself answers these; nothing to parse further
            return None
        return original(opt, value, values, parser)

    option.process = process  # type: ignore[method-assign]


def _tokens(
    args: list[str], spans: list[tuple[int, int, list[tuple[optparse.Option, str, Any]]]]
) -> list[Token]:
    by_start = {start: (end, processed) for start, end, processed in spans}
    tokens: list[Token] = []
    i = 0
    while i < len(args):
        if i not in by_start:
            tokens.append(Token(None if args[i] != "--" else "--", args[i], [args[i]]))
            i += 1
            continue
        end, processed = by_start[i]
        raw = args[i:end]
        for option, opt, value in processed:
            shown = None if value is None else str(value)
            if len(processed) > 1:  # one of a short cluster (-qr FILE): written out alone
                raw = [opt] if value is None else [opt, str(value)]
            tokens.append(Token(option.get_opt_string(), shown, raw))
        i = end
    return tokens


def target_python(cmd: PipCommand, env: Mapping[str, str]) -> str | None:
    """Where ``pip install`` from the user's shell would install.

    pip's own ``--python`` wins; else an active virtual environment other than the one
    safe-pip runs in (safe-pip installed with pipx); else the interpreter safe-pip runs under.
    """
    explicit = cmd.value("python")
    if explicit:
        return str(explicit)
    venv = env.get("VIRTUAL_ENV")
    if venv and os.path.realpath(venv) != os.path.realpath(sys.prefix):
        exe = "Scripts/python.exe" if os.name == "nt" else "bin/python"
        return os.path.join(venv, exe)
    return None


@dataclass(frozen=True)
class PipSettings:
    """What pip would use for one command: its indexes and how it reaches the network."""

    command: str
    index_url: str
    extra_index_urls: tuple[str, ...]
    no_index: bool
    isolated: bool
    python: str | None
    timeout: float
    cert: str | None
    client_cert: str | None
    proxy: str | None
    trusted_hosts: tuple[str, ...]
    find_links: tuple[str, ...] = ()
    keyring_provider: str = "disabled"  # the keyring pip would ask (pip's use_keyring)


def resolve_settings(cmd: PipCommand, env: Mapping[str, str]) -> PipSettings:
    """The settings pip's parser arrived at (command line, ``PIP_*``, configuration)."""
    return PipSettings(
        command=cmd.command,
        index_url=cmd.value("index_url") or default_index_url(),
        extra_index_urls=tuple(cmd.value("extra_index_urls") or ()),
        no_index=bool(cmd.value("no_index")),
        isolated=bool(cmd.value("isolated_mode")),
        python=target_python(cmd, env),
        timeout=float(cmd.value("timeout") or 15),
        cert=cmd.value("cert") or env.get("REQUESTS_CA_BUNDLE"),
        client_cert=cmd.value("client_cert"),
        proxy=_usable_proxy(cmd.value("proxy")),
        trusted_hosts=tuple(cmd.value("trusted_hosts") or ()),
        find_links=tuple(cmd.value("find_links") or ()),
        keyring_provider=_keyring_in_use(cmd),
    )


def _keyring_in_use(cmd: PipCommand) -> str:
    """pip's ``--keyring-provider`` as pip applies it: ``auto`` asks a keyring only when pip
    may prompt (``use_keyring`` in pip's ``network/auth.py``)."""
    provider = str(cmd.value("keyring_provider") or "auto")
    if provider == "auto" and cmd.value("no_input"):
        return "disabled"
    return provider


def check_find_links(locations: Sequence[str], where: str) -> None:
    """A remote find-links page is an index the guard cannot vouch for (it has no serial and
    no authority): pip would read it directly, so it is a usage error, never passed on."""
    for location in locations:
        if location.lower().startswith(("http://", "https://")):
            raise UsageError(
                f"{where}: {redact(location)}: a remote find-links location cannot be "
                "guarded; give it as an index (--extra-index-url) or a local directory"
            )


#: Proxy schemes pip's requests can use (SOCKS through PySocks, which requests[socks] brings).
_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def _usable_proxy(proxy: str | None) -> str | None:
    """pip's ``--proxy`` (or ``proxy`` in pip.conf), checked before pip starts: the guard
    reaches the index through it, so one it could not use must stop the run here."""
    if not proxy:
        return None
    url = proxy_url(proxy)
    shown = redact(url)
    try:
        parts = split_url(url)
    except ValueError:
        raise UsageError(f"pip option --proxy: {shown}: does not parse as a URL") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _PROXY_SCHEMES:
        raise UsageError(
            f"pip option --proxy: {shown}: not a proxy scheme pip can use ({scheme}://)"
        )
    if not host:
        raise UsageError(f"pip option --proxy: {shown}: no host")
    return proxy


def indexes_in_effect(
    settings: PipSettings, in_files: IndexOptions | None
) -> tuple[str, tuple[str, ...], bool]:
    """pip's main index, extra indexes and ``--no-index`` once requirements files are read
    (``in_files`` None: pip is given no requirements files).

    An ``--index-url`` line replaces pip's whole index list (its extras included); extra
    index lines are added to it; ``--no-index`` anywhere drops them all (pip's
    ``handle_option_line``).
    """
    if in_files is None:
        return settings.index_url, tuple(settings.extra_index_urls), settings.no_index
    no_index = settings.no_index or in_files.no_index
    if in_files.index_url:
        return in_files.index_url, in_files.extra_index_urls, no_index
    return (
        settings.index_url,
        (*settings.extra_index_urls, *in_files.extra_index_urls),
        no_index,
    )


def env_names(option: optparse.Option) -> set[str]:
    """The normalised names under which a ``PIP_*`` variable sets this option (pip's
    ``_normalize_name`` of every long spelling)."""
    return {name[2:] for name in option._long_opts}


def pip_variable_name(key: str) -> str | None:
    """A ``PIP_*`` variable's option name as pip normalises it (None: not one of pip's)."""
    if not key.startswith("PIP_"):
        return None
    return key[4:].lower().replace("_", "-")
