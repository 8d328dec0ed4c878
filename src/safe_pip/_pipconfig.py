"""pip's merged configuration (its files and ``PIP_*`` variables), as pip will see it.

pip's configuration is read before pip starts, because it says which indexes to guard. On
Linux safe-pip reads the files itself, in pip's documented order (pip's "Configuration"
page): the global files (``$XDG_CONFIG_DIRS/pip/pip.conf``, default ``/etc/xdg``, then
``/etc/pip.conf``), the user's (``~/.pip/pip.conf``, then ``$XDG_CONFIG_HOME/pip/pip.conf``,
default ``~/.config``; skipped when ``PIP_CONFIG_FILE`` names an existing file), the
environment's (``sys.prefix/pip.conf``), then ``PIP_CONFIG_FILE``; ``PIP_CONFIG_FILE=os.devnull``
loads no file at all. Later files win, and ``PIP_*`` variables win over every file.
Reading them takes about a millisecond, where importing pip's own reader took 60 to 130 ms
before pip could start (issue 7); the test suite checks the result against pip's.

Elsewhere (macOS and Windows place the files differently), and when pip will run under
another interpreter (``--python``), pip itself is asked: ``pip config list``.
"""

from __future__ import annotations

import os
import posixpath
import sys

from safe_pip._errors import UsageError

TYPE_CHECKING = False  # read before pip starts: no typing, collections or subprocess (issue 7)
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

CONFIG_BASENAME = "pip.conf"
#: ``PIP_VERSION`` and ``PIP_HELP`` are not configuration (pip's ``ENV_NAMES_IGNORED``).
_ENV_NAMES_IGNORED = ("version", "help")


def pip_config(python: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """pip's configuration as ``section.name -> value`` (``:env:`` for ``PIP_*`` variables).

    Names are normalised as pip does (lower case, ``_`` as ``-``, no leading ``--``); a key
    set in several places has the value pip uses.
    """
    if python is None and sys.platform.startswith("linux"):
        return read_pip_config(env)
    if python is None and dict(env) == dict(os.environ):
        loaded = _pip_config_in_process()
        if loaded is not None:
            return loaded
    return _pip_config_list(python, env)


def config_files(env: Mapping[str, str]) -> list[str] | None:
    """The files pip reads, lowest precedence first (None: PIP_CONFIG_FILE is os.devnull).

    The locations follow pip 26 on Linux (its ``get_configuration_files`` with platformdirs'
    XDG rules: an ``XDG_*`` value counts only when it is an absolute path).
    """
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return None
    dirs = [d.strip() for d in env.get("XDG_CONFIG_DIRS", "").split(os.pathsep)]
    dirs = [d for d in dirs if posixpath.isabs(d)] or ["/etc/xdg"]
    files = [os.path.join(d, "pip", CONFIG_BASENAME) for d in dirs]
    files.append(os.path.join("/etc", CONFIG_BASENAME))
    if not (env_file and os.path.exists(env_file)):
        # The legacy file first: the XDG one overrides it.
        files.append(os.path.join(_home(env, empty_is_unset=False), ".pip", CONFIG_BASENAME))
        user_dir = env.get("XDG_CONFIG_HOME", "").strip()
        if not posixpath.isabs(user_dir):
            user_dir = os.path.join(_home(env, empty_is_unset=True), ".config")
        files.append(os.path.join(user_dir, "pip", CONFIG_BASENAME))
    files.append(os.path.join(sys.prefix, CONFIG_BASENAME))
    if env_file is not None:
        files.append(env_file)
    return files


def _home(env: Mapping[str, str], *, empty_is_unset: bool) -> str:
    """``~`` as ``os.path.expanduser`` gives it (platformdirs treats an empty HOME as unset)."""
    home = env.get("HOME")
    if home is None or (empty_is_unset and not home):
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            home = home or ""
    return home.rstrip("/") or "/"


def read_pip_config(env: Mapping[str, str]) -> dict[str, str]:
    """The Linux reader (see the module docstring)."""
    config: dict[str, str] = {}
    for path in config_files(env) or []:
        config.update(_read_file(path))
    for key, value in env.items():
        if key.startswith("PIP_") and key[4:].lower() not in _ENV_NAMES_IGNORED:
            config[f":env:.{_normalize_name(key[4:])}"] = value
    return config


def _normalize_name(name: str) -> str:
    """A name as pip keys it, from a file or a variable (pip's ``_normalize_name``)."""
    name = name.lower().replace("_", "-")
    return name.removeprefix("--")


def _read_file(path: str) -> Iterator[tuple[str, str]]:
    if not os.path.exists(path):
        return
    import configparser  # most machines have no pip.conf at all

    class _Parser(configparser.RawConfigParser):
        def optionxform(self, optionstr: str) -> str:
            return _normalize_name(optionstr)

    encoding = "utf-8" if sys.flags.utf8_mode else _locale_encoding()
    parser = _Parser()
    try:
        parser.read(path, encoding=encoding)
    except UnicodeDecodeError:
        raise UsageError(
            f"cannot read pip's configuration: {path}: contains invalid {encoding} characters"
        ) from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot read pip's configuration: {path}: {first}") from None
    for section in parser.sections():
        for name, value in parser.items(section):
            yield f"{section}.{name}", value


def _locale_encoding() -> str:
    import locale

    if sys.version_info >= (3, 11):
        return locale.getencoding()
    return locale.getpreferredencoding(False)  # pragma: no cover - Python 3.10


def _pip_config_in_process() -> dict[str, str] | None:
    """pip's own reader, imported (about 0.13 s; None: this pip's internals moved).

    Used where the file locations are not known here (macOS, Windows): cheaper than a
    ``pip config list`` subprocess.
    """
    try:
        from pip._internal.configuration import Configuration
        from pip._internal.exceptions import ConfigurationError
    except ImportError:
        return None
    try:
        configuration = Configuration(isolated=False)
        configuration.load()
    except ConfigurationError as exc:
        raise UsageError(f"cannot read pip's configuration: {exc}") from exc
    config: dict[str, str] = {}
    # In pip's override order (pip >= 24 gives a dict per file; older pips flat pairs).
    for key, value in configuration.items():
        pairs = value.items() if isinstance(value, dict) else [(key, value)]
        for name, item in pairs:
            config[str(name)] = str(item)
    return config


def _pip_config_list(python: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """pip's own answer, from ``pip config list`` (about 0.35 s)."""
    cmd = [sys.executable, "-m", "pip"]
    if python:
        cmd += ["--python", python]
    cmd += ["config", "list"]
    try:
        import subprocess

        proc = subprocess.run(
            cmd, env=dict(env), capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"cannot read pip's configuration ({' '.join(cmd)}): {exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"cannot read pip's configuration: pip config list: {last}")
    import ast

    config: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        config[key.strip()] = str(value)
    return config
