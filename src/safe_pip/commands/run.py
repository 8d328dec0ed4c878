"""``safe-pip run -- COMMAND…``: the guard for any installer (uv, pip-compile, a build script).

The indexes are the ones ``pip install`` would use here (pip's configuration, ``PIP_*``
variables, and ``--index-url``/``--extra-index-url`` given to ``run``). The command runs in
its own process group with every index variable the tested tools read pointed at the loopback
guard; when the guard refuses a view it holds the refused request unanswered and the whole
group is ended before anything is installed, then safe-pip exits 75, as ``install`` does.

Installers' caches cannot hide staleness: every page the guard serves is marked ``no-store``,
under a URL (port and token) new for each run, so neither pip nor uv can answer from a page
read before; uv's cache is kept for what it is for (wheels, built sdists). Indexes a tool takes
from its own configuration files (``[[tool.uv.index]]``, poetry's sources, pdm's config) are
not rerouted.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from safe_pip.authority.state import StateStore
from safe_pip.commands.parser import CommandParser
from safe_pip.errors import ExitCode, UsageError
from safe_pip.guard.guard import Guard, Refusal
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.proxy import Proxy
from safe_pip.guard.setup import GuardSetup, transport_of
from safe_pip.pip.cmdline import parse_pip_args, resolve_settings
from safe_pip.pip.invocation import PIP_TIMEOUT_MARGIN
from safe_pip.pip.launch import PipProcess
from safe_pip.report.console import say, say_denials, write_report

#: Files larger than this are not searched for the guard's URL after the command.
_OUTPUT_LIMIT = 4 * 1024 * 1024


def _parser() -> CommandParser:
    parser = CommandParser(
        prog="safe-pip run",
        label="run",
        description="Run a command (uv pip install, pip-compile, …) with every index it "
        "reads through the guard; a refused view ends the command (exit 75).",
        usage="safe-pip [guard options] run [--index-url URL] [--extra-index-url URL] "
        "-- COMMAND [ARGS…]",
        allow_abbrev=False,
    )
    parser.add_argument("-i", "--index-url", metavar="URL", help="the main index (as pip's)")
    parser.add_argument(
        "--extra-index-url",
        metavar="URL",
        action="append",
        default=[],
        help="an extra index (as pip's; repeatable)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    return parser


def index_environment(main: str, extras: Sequence[str], timeout: float) -> dict[str, str]:
    """The variables that point the tested installers at the guard, and keep them waiting.

    pip (and pip-compile, which reads pip's options): ``PIP_INDEX_URL``,
    ``PIP_EXTRA_INDEX_URL``, ``PIP_TIMEOUT``. uv: ``UV_DEFAULT_INDEX`` and ``UV_INDEX``, and
    the older ``UV_INDEX_URL``/``UV_EXTRA_INDEX_URL`` (uv accepts both at once);
    ``UV_HTTP_TIMEOUT`` (uv gives up on a read after 30 s by default, which would abandon a
    page the guard is still waiting out).
    """
    extra = " ".join(extras)
    seconds = f"{timeout:g}"
    return {
        "PIP_INDEX_URL": main,
        "PIP_EXTRA_INDEX_URL": extra,
        "PIP_TIMEOUT": seconds,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_DEFAULT_INDEX": main,
        "UV_INDEX": extra,
        "UV_INDEX_URL": main,
        "UV_EXTRA_INDEX_URL": extra,
        "UV_HTTP_TIMEOUT": f"{int(timeout) + 1}",
    }


def proxy_environment(guard: str) -> dict[str, str]:
    """The guard as every installer's proxy: a tool given an index of its own (``uv pip
    install --index-url``, pip-compile's ``-i``, a key in its configuration) reaches that
    host only through the guard, which refuses it and ends the command (exit 75)."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    return {
        "PIP_PROXY": guard,
        **{name: guard for name in names},
        **{name.lower(): guard for name in names},
        # Nothing bypasses it, loopback included (an index on localhost is an index too):
        # the guard answers its own URLs when they come to it as a proxy.
        "NO_PROXY": "",
        "no_proxy": "",
    }


def main(args: list[str], options: GuardOptions) -> int:
    ns = _parser().parse_args(args)
    command = list(ns.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("run: no command given (safe-pip run -- COMMAND [ARGS…])")
    pip_args = ["--index-url", ns.index_url] if ns.index_url else []
    for url in ns.extra_index_url:
        pip_args += ["--extra-index-url", url]
    return run_command(options, command, pip_args)


def run_command(
    options: GuardOptions,
    command: Sequence[str],
    pip_args: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    store: StateStore | None = None,
    out: Callable[[str], None] = say,
) -> int:
    """Run ``command`` guarded; its exit code, or 75 when the guard refused the view."""
    env = dict(os.environ if env is None else env)
    settings = resolve_settings(parse_pip_args("install", pip_args, env), env)
    if settings.no_index:
        raise UsageError("run: pip's configuration says no-index: there is no index to guard")
    holder: dict[str, PipProcess] = {}

    def on_refuse(refusal: Refusal) -> None:
        process = holder.get("command")
        if process is not None:
            process.refuse()

    setup = GuardSetup(options, transport_of(settings), store=store, say=out, on_refuse=on_refuse)
    guard = setup.guard
    proxy = Proxy(guard)

    def guarded(url: str, *, main: bool = False) -> str:
        entry = setup.add_index(url, main=main)
        return url if entry is None else guard.index_url(entry)

    main_url = guarded(settings.index_url, main=True)
    extras = [guarded(url) for url in settings.extra_index_urls]
    child_env = dict(env)
    child_env.update(
        index_environment(
            main_url, extras, options.max_wait + settings.timeout + PIP_TIMEOUT_MARGIN
        )
    )
    child_env.update(proxy_environment(f"http://127.0.0.1:{proxy.port}"))
    started = time.time() - 2.0  # file times can be coarser than the clock
    try:
        proxy.start()
        guard.start_authorities()
        try:
            process = PipProcess(command, child_env)
        except OSError as exc:
            raise UsageError(f"run: cannot start {command[0]}: {exc.strerror or exc}") from None
        holder["command"] = process
        code = process.wait()
    finally:
        proxy.stop()
        setup.keep(out)
        if options.report:
            write_report(options.report, guard, "run")

    if guard.refusals or process.refused.is_set():
        if say_denials(guard, out, f"{command[0]} was ended before it could install"):
            return int(ExitCode.ACCESS_DENIED)
        for refusal in guard.refusals:
            out(str(refusal))
        out(
            f"{command[0]} was ended before it could install from a refused view of the index "
            "(exit 75)"
        )
        return int(ExitCode.REFUSED)
    if code == 0:
        unproxy_written_files(guard, proxy.token, command, started)
    return code


def unproxy_written_files(
    guard: Guard, token: str, command: Sequence[str], since: float
) -> list[Path]:
    """Give files the command wrote during the run the index's URLs back.

    Lock and requirements files record the index they were made from (pip-compile writes
    ``--index-url``); the guard's URL dies with the run. Searched: files modified during the run
    in the working directory and in the directories of files named on the command line, which
    contain this run's random token (so nothing else can match).
    """
    dirs = {Path.cwd()}
    for arg in command[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        if value and not value.startswith("-"):
            dirs.add(Path(value).parent if Path(value).parent != Path("") else Path.cwd())
    changed: list[Path] = []
    for folder in dirs:
        try:
            children = list(folder.iterdir())
        except OSError:
            continue
        for path in children:
            try:
                stat = path.stat()
                if not path.is_file() or stat.st_mtime < since or stat.st_size > _OUTPUT_LIMIT:
                    continue
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if token not in text:
                continue
            path.write_text(guard.unproxy(text), encoding="utf-8")
            changed.append(path)
    return changed
