"""Reading a pip command line and pip's configuration the way pip itself would.

pip's merged configuration comes from :mod:`safe_pip._pipconfig`; this module applies pip's
precedence to it: command line, then ``PIP_*`` variables, then the command's own section, then
``[global]`` (pip's ``ConfigOptionParser``).
"""

from __future__ import annotations

import os
import sys

from safe_pip._errors import UsageError
from safe_pip._pipconfig import pip_config
from safe_pip._record import field, record

TYPE_CHECKING = False  # read before pip starts: no typing, no dataclasses (issue 7)
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from safe_pip._reqfile import IndexOptions

#: The pip commands safe-pip guards.
GUARDED_COMMANDS = ("install", "download", "wheel", "lock")


def default_index_url() -> str:
    """pip's default index URL, read from pip at run time (the one internal safe-pip reads)."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError as exc:  # pragma: no cover - depends on pip's layout
        raise UsageError(
            "cannot read pip's default index URL (pip._internal.models.index.PyPI moved); "
            "pass --index-url explicitly"
        ) from exc
    return str(PyPI.simple_url)


def default_changelog_url() -> str:
    """The default index's XML-RPC endpoint, read from pip's constant."""
    from pip._internal.models.index import PyPI

    return str(PyPI.pypi_url)


# pip options that take a value (long name -> short name), which safe-pip reads or rewrites.
_VALUE_OPTIONS = {
    "--index-url": "-i",
    "--extra-index-url": None,
    "--requirement": "-r",
    "--constraint": "-c",
    "--timeout": None,
    "--default-timeout": None,
    "--proxy": None,
    "--cert": None,
    "--client-cert": None,
    "--trusted-host": None,
    "--python": None,
    "--find-links": "-f",
    "--report": None,
    "--output": "-o",
}
_FLAG_OPTIONS = {"--no-index", "--isolated", "--help", "--version", "--require-hashes"}
_SHORT = {short: long for long, short in _VALUE_OPTIONS.items() if short}
_SHORT_FLAGS = {"-h": "--help", "-V": "--version"}


@record
class Token:
    """One option or argument of the pip command line, as written and as understood."""

    option: str | None  # canonical long name, or None for a positional argument
    value: str | None
    raw: list[str]  # the argv tokens it came from


@record
class PipCommand:
    """A parsed ``safe-pip <command> …`` pip command line."""

    command: str
    tokens: list[Token]
    options: dict[str, list[str]] = field(default_factory=dict)

    def last(self, name: str) -> str | None:
        values = self.options.get(name)
        return values[-1] if values else None

    def has(self, name: str) -> bool:
        return name in self.options

    @property
    def positionals(self) -> list[str]:
        return [t.value for t in self.tokens if t.option is None and t.value is not None]


def parse_pip_args(command: str, args: Sequence[str]) -> PipCommand:
    """Split pip's arguments into tokens, understanding only the options safe-pip needs.

    Options safe-pip does not know are kept verbatim; their values (if any) are kept with
    them because pip's parser is left to judge them.
    """
    tokens: list[Token] = []
    options: dict[str, list[str]] = {}
    i = 0
    after_dashdash = False
    while i < len(args):
        arg = args[i]
        i += 1
        if after_dashdash or not arg.startswith("-") or arg == "-":
            tokens.append(Token(None, arg, [arg]))
            continue
        if arg == "--":
            after_dashdash = True
            tokens.append(Token("--", None, [arg]))
            continue
        name, value, raw = arg, None, [arg]
        if arg.startswith("--"):
            if "=" in arg:
                name, value = arg.split("=", 1)
        elif arg[:2] in _SHORT or arg[:2] in _SHORT_FLAGS:
            short = arg[:2]
            if short in _SHORT_FLAGS and len(arg) == 2:
                name = _SHORT_FLAGS[short]
            elif short in _SHORT:
                name = _SHORT[short]
                if len(arg) > 2:
                    value = arg[2:].removeprefix("=")
        if name in _VALUE_OPTIONS:
            if value is None:
                if i >= len(args):
                    raise UsageError(f"pip option {arg} needs a value")
                value = args[i]
                raw.append(value)
                i += 1
            if name == "--default-timeout":
                name = "--timeout"
            options.setdefault(name, []).append(value)
            tokens.append(Token(name, value, raw))
        elif name in _FLAG_OPTIONS:
            options.setdefault(name, []).append("1")
            tokens.append(Token(name, None, raw))
        else:
            tokens.append(Token(arg, None, raw))
    return PipCommand(command, tokens, options)


_ALIASES = {"timeout": ("timeout", "default-timeout"), "index-url": ("index-url", "i")}


def config_value(config: Mapping[str, str], command: str, key: str) -> str | None:
    """One option's value by pip's precedence: ``PIP_*`` > ``[command]`` > ``[global]``."""
    names = _ALIASES.get(key, (key,))
    for section in (":env:", command, "global"):
        for name in names:
            value = config.get(f"{section}.{name}")
            if value is not None:
                return value
    return None


def config_list(config: Mapping[str, str], command: str, key: str) -> list[str]:
    """A multi-valued option (whitespace separated in pip's config)."""
    value = config_value(config, command, key)
    return value.split() if value else []


def config_flag(config: Mapping[str, str], command: str, key: str) -> bool:
    value = config_value(config, command, key)
    if value is None:
        return False
    return value.strip().lower() in {"1", "true", "yes", "on", "y"}


def target_python(cmd: PipCommand, env: Mapping[str, str]) -> str | None:
    """Where ``pip install`` from the user's shell would install.

    pip's own ``--python`` wins; else an active virtual environment other than the one
    safe-pip runs in (safe-pip installed with pipx); else the interpreter safe-pip runs under.
    """
    explicit = cmd.last("--python")
    if explicit:
        return explicit
    venv = env.get("VIRTUAL_ENV")
    if venv and os.path.realpath(venv) != os.path.realpath(sys.prefix):
        exe = "Scripts/python.exe" if os.name == "nt" else "bin/python"
        return os.path.join(venv, exe)
    return None


@record(frozen=True)
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


def resolve_settings(cmd: PipCommand, env: Mapping[str, str]) -> PipSettings:
    """Apply pip's precedence to the command line and pip's configuration."""
    command = cmd.command
    isolated = cmd.has("--isolated")
    python = target_python(cmd, env)
    config = {} if isolated else pip_config(python, env)

    def value(key: str) -> str | None:
        return config_value(config, command, key)

    timeout_text = cmd.last("--timeout") or value("timeout") or "15"
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise UsageError(f"pip option --timeout: not a number: {timeout_text!r}") from None
    return PipSettings(
        command=command,
        index_url=cmd.last("--index-url") or value("index-url") or default_index_url(),
        # pip appends command-line extra indexes to the configured ones (optparse "append").
        extra_index_urls=tuple(
            config_list(config, command, "extra-index-url")
            + cmd.options.get("--extra-index-url", [])
        ),
        no_index=cmd.has("--no-index") or config_flag(config, command, "no-index"),
        isolated=isolated,
        python=python,
        timeout=timeout,
        cert=cmd.last("--cert") or value("cert") or env.get("REQUESTS_CA_BUNDLE"),
        client_cert=cmd.last("--client-cert") or value("client-cert"),
        proxy=_usable_proxy(cmd.last("--proxy") or value("proxy")),
        trusted_hosts=tuple(
            config_list(config, command, "trusted-host") + cmd.options.get("--trusted-host", [])
        ),
    )


def _usable_proxy(proxy: str | None) -> str | None:
    """pip's ``--proxy`` (or ``proxy`` in pip.conf), checked before pip starts: the guard
    reaches the index through it, over HTTP(S) only (no SOCKS)."""
    if not proxy:
        return None
    from safe_pip._urls import proxy_url, redact, split_url

    url = proxy_url(proxy)
    shown = redact(url)
    try:
        parts = split_url(url)
    except ValueError:
        raise UsageError(f"pip option --proxy: {shown}: does not parse as a URL") from None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https"):
        raise UsageError(
            f"pip option --proxy: {shown}: safe-pip reaches indexes through http:// or "
            f"https:// proxies only, not {scheme}://"
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
