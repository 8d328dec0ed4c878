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
from typing import TYPE_CHECKING

from safe_pip.commands.parser import CommandParser
from safe_pip.errors import ExitCode, UsageError
from safe_pip.guard.options import GuardOptions
from safe_pip.pip.cmdline import parse_pip_args, resolve_settings
from safe_pip.pip.invocation import PIP_TIMEOUT_MARGIN
from safe_pip.pip.launch import IndexPlan, Listener, PipProcess, Signalled, signals_raised
from safe_pip.report.console import say, say_denials, write_report

if TYPE_CHECKING:
    from safe_pip.authority.state import StateStore
    from safe_pip.guard.guard import Guard, Refusal
    from safe_pip.guard.prefetch import Prefetcher
    from safe_pip.guard.proxy import Proxy
    from safe_pip.guard.setup import GuardSetup

#: Files larger than this are not searched for the guard's URL after the command.
_OUTPUT_LIMIT = 4 * 1024 * 1024
#: Connections kept per host: uv asks for up to 50 files at once (its default
#: ``UV_CONCURRENT_DOWNLOADS``); with fewer, urllib3 warns and drops the extra connections.
_POOL = 64
#: Words that name a command which installs what it resolves (``uv pip install``, ``uv sync``,
#: ``pip install``, ``pip-sync``): its wheels are fetched as soon as their metadata is read.
_INSTALLING = frozenset({"install", "sync", "pip-sync"})


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
    """Run ``command`` guarded; its exit code, or 75 when the guard refused the view.

    As for ``install``, the command starts first, pointed at the guard's socket and index
    numbers, and the guard is imported and built while it starts (uv's first requests wait in
    the socket's backlog). The prefetcher learns names only from the metadata the command
    reads (its arguments are not parsed), and fetches the wheel of each metadata file an
    installing command read: uv downloads them all only once it has resolved.
    """
    env = dict(os.environ if env is None else env)
    settings = resolve_settings(parse_pip_args("install", pip_args, env), env)
    if settings.no_index:
        raise UsageError("run: pip's configuration says no-index: there is no index to guard")
    listener = Listener()
    plan = IndexPlan(listener.base)
    main_url = plan.guarded(settings.index_url, main=True)
    extras = [plan.guarded(url) for url in settings.extra_index_urls]
    child_env = dict(env)
    child_env.update(
        index_environment(
            main_url, extras, options.max_wait + settings.timeout + PIP_TIMEOUT_MARGIN
        )
    )
    child_env.update(proxy_environment(listener.proxy_url))
    started = time.time() - 2.0  # file times can be coarser than the clock
    process: PipProcess | None = None
    setup: GuardSetup | None = None
    proxy: Proxy | None = None
    prefetcher: Prefetcher | None = None

    def on_refuse(refusal: Refusal) -> None:
        if process is not None:
            process.refuse()

    try:
        try:
            process = PipProcess(command, child_env)
        except OSError as exc:
            raise UsageError(f"run: cannot start {command[0]}: {exc.strerror or exc}") from None
        with signals_raised():
            try:
                # Imported once the command has started: the guard's modules (requests, the
                # changelog client) load while it starts.
                from safe_pip.guard.prefetch import Prefetcher
                from safe_pip.guard.proxy import Proxy
                from safe_pip.guard.setup import GuardSetup, transport_of

                setup = GuardSetup(
                    options,
                    transport_of(settings),
                    store=store,
                    say=out,
                    on_refuse=on_refuse,
                    pool=_POOL,
                )
                proxy = Proxy(setup.guard, listening=listener.sock, token=listener.token)
                setup.add_planned(plan.calls)
                setup.guard.start_authorities()
                proxy.start()
                # Not the newest wheel's metadata of each page read (``metadata_ahead``): the
                # command's target interpreter is unknown, and uv asks for it at once anyway.
                prefetcher = Prefetcher(
                    setup.guard, metadata_ahead=False, files=installs(command)
                )
                prefetcher.start()
                code = process.wait()
            except (KeyboardInterrupt, Signalled) as exc:
                code = process.interrupted(exc)
    finally:
        if process is not None:
            process.end()  # never leave the command running without its guard
        if prefetcher is not None:
            prefetcher.close()
        if proxy is not None:
            proxy.stop()
        listener.close()
        if setup is not None:
            setup.keep(out)
            if options.report:
                write_report(options.report, setup.guard, "run")

    if setup is None or process is None:
        return code  # a signal came before the guard was built
    guard = setup.guard
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
        unproxy_written_files(guard, listener.token, command, started)
    return code


def installs(command: Sequence[str]) -> bool:
    """Whether ``command`` installs what it resolves, so that its wheels are worth fetching
    ahead: an installing word among its first ones, and no ``--dry-run``."""
    words = {Path(command[0]).name, *command[1:4]} if command else set()
    return bool(words & _INSTALLING) and "--dry-run" not in command


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
