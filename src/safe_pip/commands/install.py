"""The runner: the one place that starts and stops pip.

pip runs as a subprocess in its own process group, pointed at the loopback guard. When the
guard refuses a view it holds pip's request unanswered and the runner ends pip's whole group
(build-isolation pips included) before anything is installed: an error answer would not stop
pip, which reads a failed page as an empty one (pip's index collector logs the error at
debug level and goes on with the other sources).

pip is started first: the runner reads the command, pip's configuration and the requirements
files, binds the guard's loopback socket and numbers the indexes, starts pip pointed at them,
and only then imports and builds the guard (its HTTP client, the changelog client, the
prefetcher) while pip spends half a second importing itself; pip's first requests wait in the
socket's backlog. Locks with ``[tool.safe-pip]`` serials keep the old order: they are checked
before pip may read anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from safe_pip.errors import ExitCode
from safe_pip.guard.options import GuardOptions
from safe_pip.index.names import is_pylock
from safe_pip.locks.lockstate import as_of_of_locks, lock_inputs
from safe_pip.locks.pylock import read_pylock
from safe_pip.pip.cmdline import PipCommand, parse_pip_args, resolve_settings
from safe_pip.pip.invocation import (
    direct_hosts,
    lock_outputs,
    pip_invocation,
    read_requirement_lines,
    unproxy_outputs,
)
from safe_pip.pip.launch import IndexPlan, Listener, PipProcess, Signalled, signals_raised
from safe_pip.report.console import say, say_denials, write_report

if TYPE_CHECKING:
    from safe_pip.authority.state import StateStore
    from safe_pip.guard.guard import Refusal
    from safe_pip.guard.prefetch import Prefetcher
    from safe_pip.guard.proxy import Proxy
    from safe_pip.guard.setup import GuardSetup


@dataclass
class _Running:
    """pip and the guard's parts, once started (any may be missing if set-up was cut short)."""

    pip: PipProcess | None = None
    setup: GuardSetup | None = None
    proxy: Proxy | None = None
    prefetcher: Prefetcher | None = None


def run(
    options: GuardOptions,
    command: str,
    pip_args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    store: StateStore | None = None,
    out: Callable[[str], None] = say,
) -> int:
    """Run one guarded pip command; its exit code."""
    env = dict(os.environ if env is None else env)
    cmd = parse_pip_args(command, pip_args, env)
    if cmd.asked:  # --help or --version: pip answers, no index is read
        return subprocess.call([sys.executable, "-m", "pip", command, *pip_args], env=env)

    settings = resolve_settings(cmd, env)
    running = _Running()

    def on_refuse(refusal: Refusal) -> None:
        if running.pip is not None:
            running.pip.refuse()

    # pylock.toml files remember the index state they were made from ([tool.safe-pip]): their
    # serials must not be rolled back, and their --as-of point is this run's unless given.
    locks = lock_inputs(cmd.value("requirements") or [])
    if options.as_of is None and locks:
        options = replace(options, as_of=as_of_of_locks(locks))

    listener = Listener()
    plan = IndexPlan(listener.base)
    workdir = tempfile.mkdtemp(prefix="safe-pip-")
    code = 0
    try:
        pip_argv, child_env = pip_invocation(
            cmd, plan.guarded, settings, options.max_wait, env, workdir, listener.proxy_url
        )
        with signals_raised():
            try:
                if not locks:
                    # pip starts now and spends about half a second importing itself; the
                    # guard is built meanwhile, and pip's first requests wait in the socket.
                    running.pip = PipProcess(pip_argv, child_env)
                requirement_lines = read_requirement_lines(cmd)
                # Imported once pip has started: the guard's modules (requests, the changelog
                # client, the prefetcher) load while pip imports itself.
                from safe_pip.authority.state import StateStore
                from safe_pip.guard.prefetch import start_prefetch
                from safe_pip.guard.proxy import Proxy
                from safe_pip.guard.setup import GuardSetup, transport_of
                from safe_pip.locks.enforce import enforce_locks

                if store is None:
                    store = StateStore()
                # An unusable no-rollback memory stops the run before pip reads a page: pip's
                # first requests are still waiting in the guard's socket.
                store.check_usable()
                setup = running.setup = GuardSetup(
                    options, transport_of(settings), store=store, say=out, on_refuse=on_refuse
                )
                setup.guard.status_warnings = True
                running.proxy = Proxy(setup.guard, listening=listener.sock, token=listener.token)
                running.proxy.vouch(
                    direct_hosts([*cmd.positionals, *_locked_urls(cmd)], requirement_lines)
                )
                setup.add_planned(plan.calls)
                setup.guard.start_authorities()
                running.proxy.start()
                running.prefetcher = start_prefetch(
                    setup.guard, cmd, settings.python, requirement_lines
                )
                if running.pip is None and enforce_locks(setup.guard, locks):
                    # Locked serials were checked before pip could read anything.
                    running.pip = PipProcess(pip_argv, child_env)
                code = running.pip.wait() if running.pip is not None else int(ExitCode.REFUSED)
            except (KeyboardInterrupt, Signalled) as exc:
                if running.pip is not None:
                    code = running.pip.interrupted(exc)
                elif isinstance(exc, Signalled):
                    code = 128 + exc.signum
                else:
                    raise
    finally:
        if running.pip is not None:
            running.pip.end()  # never leave pip running without its guard
        if running.prefetcher is not None:
            running.prefetcher.close()
        if running.proxy is not None:
            running.proxy.stop()
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
        if running.setup is not None:
            running.setup.keep(out)
            if options.report:
                write_report(options.report, running.setup.guard, command)
    return _finish(running, code, cmd, out)


def _finish(
    running: _Running,
    code: int,
    cmd: PipCommand,
    out: Callable[[str], None],
) -> int:
    """The run's exit code, once pip and the guard are stopped: refusals are said here, and a
    successful pip's output files get the index's own URLs back."""
    setup = running.setup
    if setup is None:
        return code
    guard = setup.guard
    if guard.refusals or (running.pip is not None and running.pip.refused.is_set()):
        if say_denials(guard, out, "nothing was installed"):
            return int(ExitCode.ACCESS_DENIED)
        for refusal in guard.refusals:
            out(str(refusal))
        out("nothing was installed: the view of the index was refused (exit 75)")
        return int(ExitCode.REFUSED)
    if code == 0:
        unproxy_outputs(cmd, guard.unproxy)
        if cmd.command == "lock":
            # The guard's modules are loaded by now (see run).
            from safe_pip.locks.enforce import record_lock

            for target in lock_outputs(cmd):
                if target != "-" and os.path.isfile(target):
                    record_lock(target, guard, setup.options.as_of)
    return code


def _locked_urls(cmd: PipCommand) -> list[str]:
    """The file URLs of the pylock files pip is given: pip downloads them itself, each
    pinned by its hash in the lock."""
    paths = [
        value.split("[", 1)[0] if value.endswith("]") else value
        for value in cmd.value("requirements") or []
        if "://" not in value and is_pylock(value, extras=True)
    ]
    return [f.url for path in paths for pin in read_pylock(path) for f in pin.files if f.url]
