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

import _thread
import os
import sys
from dataclasses import replace

from safe_pip._record import record

# Only light modules here: pip is started before the guard's own modules (http.client, xmlrpc,
# packaging, the guard) are imported, so that their ~0.2 s overlaps pip's start; and nothing
# heavy from the standard library either (typing, dataclasses, pathlib, tempfile, logging, and
# not even re, enum, subprocess or threading: issue 7). The requirements-file reader (re,
# shlex) is imported before pip only when pip is given requirements files.
from safe_pip.errors import ExitCode, InputError, UsageError
from safe_pip.guard.options import GuardOptions
from safe_pip.index.names import is_pylock
from safe_pip.pip.cmdline import (
    PipCommand,
    PipSettings,
    check_find_links,
    env_names,
    indexes_in_effect,
    parse_pip_args,
    pip_variable_name,
    resolve_settings,
)
from safe_pip.pip.launch import (
    IndexPlan,
    Listener,
    PipProcess,
    Signalled,
    make_workdir,
    signals_raised,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from safe_pip.authority.state import StateStore
    from safe_pip.guard.guard import Guard, Refusal
    from safe_pip.guard.prefetch import Prefetcher
    from safe_pip.guard.proxy import Proxy
    from safe_pip.guard.setup import GuardSetup
    from safe_pip.locks.lockstate import LockState
    from safe_pip.pip.requirements import ReqLine

#: Seconds pip may wait on the guard beyond --max-wait: the guard waits out stale views inside
#: pip's request, so pip's own --timeout (15 s by default) must not cut that short (pip would
#: read an abandoned page as an empty one).
PIP_TIMEOUT_MARGIN = 60.0


_SAY_LOCK = _thread.allocate_lock()


def say(line: str) -> None:
    """One line on stderr, whole: guard threads speak at once (print writes the text and the
    newline separately, so two threads' lines could run together)."""
    with _SAY_LOCK:
        sys.stderr.write(f"safe-pip: {line}\n")
        sys.stderr.flush()


@record
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
    started: Callable[[], None] | None = None,
) -> int:
    """Run one guarded pip command; its exit code. ``started`` is called once pip has been
    started (the command line sets up logging then, as it would slow pip's start)."""
    env = dict(os.environ if env is None else env)
    cmd = parse_pip_args(command, pip_args, env)
    pip = [sys.executable, "-m", "pip"]
    if cmd.asked:  # --help or --version: pip answers, no index is read
        import subprocess

        return subprocess.call([*pip, command, *pip_args], env=env)

    settings = resolve_settings(cmd, env)
    running = _Running()

    def on_refuse(refusal: Refusal) -> None:
        if running.pip is not None:
            running.pip.refuse(refusal)

    # pylock.toml files remember the index state they were made from ([tool.safe-pip]): their
    # serials must not be rolled back, and their --as-of point is this run's unless given.
    locks = _lock_inputs(cmd.value("requirements") or [])
    if options.as_of is None and locks:
        from safe_pip.locks.lockstate import as_of_of_locks

        options = replace(options, as_of=as_of_of_locks(locks))

    listener = Listener()
    plan = IndexPlan(listener.base)
    workdir = make_workdir()
    code = 0
    try:
        pip_argv, child_env = _pip_invocation(
            cmd, plan.guarded, settings, options, env, workdir, listener.proxy_url
        )
        with signals_raised():
            try:
                if not locks:
                    # pip starts now and spends about half a second importing itself; the
                    # guard is built meanwhile, and pip's first requests wait in the socket.
                    running.pip = PipProcess(pip_argv, child_env)
                if started is not None:
                    started()
                requirement_lines = _check_requirements(cmd)
                from safe_pip.authority.state import StateStore
                from safe_pip.guard.prefetch import start_prefetch
                from safe_pip.guard.proxy import Proxy
                from safe_pip.guard.setup import GuardSetup, transport_of

                if store is None:
                    store = StateStore()
                # An unusable no-rollback memory stops the run before pip reads a page: pip's
                # first requests are still waiting in the guard's socket.
                store.check_usable()
                setup = running.setup = GuardSetup(
                    options, transport_of(settings), store=store, say=out, on_refuse=on_refuse
                )
                running.proxy = Proxy(setup.guard, listening=listener.sock, token=listener.token)
                running.proxy.vouch(
                    direct_hosts([*cmd.positionals, *_locked_urls(cmd)], requirement_lines)
                )
                plan.apply(setup)
                setup.guard.start_authorities()
                running.proxy.start()
                running.prefetcher = start_prefetch(
                    setup.guard, cmd, settings.python, requirement_lines
                )
                if running.pip is None and _enforce_locks(setup.guard, locks):
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
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        if running.setup is not None:
            running.setup.keep(out)
            if options.report:
                _write_report(options.report, running.setup.guard, command)
    return _finish(running, code, cmd, out)


def say_denials(guard: Guard, out: Callable[[str], None], outcome: str) -> bool:
    """Say the indexes that refused the guard's credentials (401, 403), one line each, and
    any other refusal; False when there were none, so the view's refusal is said instead.

    Not a stale view: the credentials are what to fix, and pip's own exit code for an index
    that refuses it is what scripts around pip expect."""
    from safe_pip.guard.guard import ACCESS_DENIED, denials

    denied = denials(guard.refusals)
    if not denied:
        return False
    for refusal in guard.refusals:
        if refusal.verdict != ACCESS_DENIED:
            out(str(refusal))
    for refusal in denied:
        out(f"{refusal}; {outcome} (exit {ExitCode.ACCESS_DENIED})")
    return True


def _lock_inputs(values: Sequence[str]) -> list[tuple[str, LockState]]:
    """The ``[tool.safe-pip]`` locks among the ``-r`` values (TOML is read only if any)."""
    if not any(is_pylock(value, extras=True) for value in values):
        return []
    from safe_pip.locks.lockstate import lock_inputs

    return lock_inputs(values)


def _enforce_locks(guard: Guard, locks: list[tuple[str, LockState]]) -> bool:
    from safe_pip.locks.lockstate import enforce_locks

    return enforce_locks(guard, locks)


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
        _unproxy_outputs(cmd, guard)
        if cmd.command == "lock":
            from safe_pip.locks.lockstate import record_lock

            for target in _lock_outputs(cmd):
                if target != "-" and os.path.isfile(target):
                    record_lock(target, guard, setup.options.as_of)
    return code


def _pip_invocation(
    cmd: PipCommand,
    guarded: Callable[..., str],
    settings: PipSettings,
    options: GuardOptions,
    env: Mapping[str, str],
    workdir: str,
    guard_proxy: str,
) -> tuple[list[str], dict[str, str]]:
    """pip's full argv and environment for this run, pointed at the guard."""
    argv, placed = _pip_command(cmd, guarded, settings, workdir, guard_proxy)
    # The changelog may be retried for --max-wait, then a page waited out for --max-wait.
    pip_timeout = 2 * options.max_wait + settings.timeout + PIP_TIMEOUT_MARGIN
    argv += ["--timeout", f"{pip_timeout:g}"]
    # pip's self version check reads the "pip" page after installing; a stale copy of it
    # is no reason to refuse an install that already happened.
    argv.append("--disable-pip-version-check")
    child_env = dict(env)
    # Every PIP_* spelling of an option safe-pip places (PIP_PYPI_URL sets --index-url too)
    # goes; the guard's values come in under pip's own names.
    for key in list(child_env):
        name = pip_variable_name(key)
        if name is not None and any(name in env_names(o) for o in _placed_options(cmd)):
            del child_env[key]
    child_env.update(placed)
    # pip's own temporary directories go under the run's work dir, so a pip ended after a
    # refusal leaves no pip-install-*/pip-build-tracker-* behind in the user's TMPDIR.
    pip_tmp = os.path.join(workdir, "tmp")
    os.mkdir(pip_tmp)
    child_env["TMPDIR"] = pip_tmp
    # pip takes --python only before its command name, wherever the user wrote it.
    general = ["--python", settings.python] if settings.python else []
    return [sys.executable, "-m", "pip", *general, cmd.command, *argv], child_env


#: pip's options that safe-pip takes out of pip's command line and sets itself: the indexes
#: (pointed at the guard), pip's proxy (the guard, so that no request of pip's leaves any
#: other way), the requirements files (copies with their index lines rewritten), the timeout
#: (long enough to wait out a stale page) and --python (moved before the command).
_PLACED = (
    "index_url", "extra_index_urls", "proxy", "requirements", "constraints", "timeout", "python"
)


def _placed_options(cmd: PipCommand) -> list[Any]:
    return [option for dest in _PLACED if (option := cmd.option_of(dest)) is not None]


def _pip_command(
    cmd: PipCommand,
    guarded: Callable[..., str],
    settings: PipSettings,
    workdir: str,
    guard_proxy: str,
) -> tuple[list[str], dict[str, str]]:
    """pip's argv and the ``PIP_*`` variables safe-pip sets, with every index pointed at the
    guard and the guard as pip's proxy.

    Only the indexes pip will really use are guarded (and have their changelog asked): an
    ``--index-url`` line in a requirements file replaces pip's whole index list, and
    ``--no-index`` anywhere drops it (pip's ``handle_option_line``).
    """
    env: dict[str, str] = {}
    check_find_links(settings.find_links, "pip option --find-links")
    req_files = _requirement_files(cmd)
    for path in [*(cmd.value("requirements") or []), *(cmd.value("constraints") or [])]:
        if os.path.isfile(path) and not _read_bytes(path).strip():
            # pip installs nothing and says nothing; a truncated file is the likelier story.
            raise InputError(path, "empty requirements file: nothing to install from it")
    in_files = None
    if req_files:
        from safe_pip.pip.requirements import index_options, read_requirements

        # Requirement lines are read once pip has started (_check_requirements): the index
        # options and includes are all that decides pip's command line.
        lines = [
            line for path, constraint in req_files
            for line in read_requirements(path, constraint=constraint, requirements=False)
        ]
        in_files = index_options(lines)
        check_find_links(in_files.find_links, "--find-links in a requirements file")
    main_url, _extras, no_index = indexes_in_effect(settings, in_files)
    # pip is handed the configured extras; the files' own index lines reach it rewritten.
    configured = [] if in_files and in_files.index_url else list(settings.extra_index_urls)
    proxied_main, proxied_extras = main_url, configured
    if not no_index:
        proxied_main = guarded(main_url, main=True)
        proxied_extras = [guarded(u) for u in configured]

    def rewrite(url: str) -> str:
        return guarded(url, main=url == main_url) if not no_index else url

    copies: dict[str, str] = {}
    if req_files:
        from safe_pip.pip.requirements import rewrite_for_guard

        copies = rewrite_for_guard([path for path, _ in req_files], rewrite, workdir)
    placed = {option.get_opt_string() for option in _placed_options(cmd)}
    argv = [arg for token in cmd.tokens if token.option not in placed for arg in token.raw]
    # Requirements files from pip's configuration too: all are given on the command line
    # (rewritten where they name indexes), and the configured ones are cleared below.
    for option, dest in (("--requirement", "requirements"), ("--constraint", "constraints")):
        for path in cmd.value(dest) or []:
            argv += [option, copies.get(path, path)]
    if settings.isolated:
        # pip ignores PIP_* variables here; an argument would show the path token to every
        # local user (ps), so the indexes go in a file only this user can read.
        if not settings.no_index:
            indexes = os.path.join(workdir, "safe-pip-indexes.txt")
            lines_out = [f"--index-url {proxied_main}"]
            lines_out += [f"--extra-index-url {url}" for url in proxied_extras]
            with open(indexes, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines_out) + "\n")
            argv += ["--requirement", indexes]
        argv += ["--proxy", guard_proxy]
        return argv, env
    if not settings.no_index:
        # Environment variables override pip's configuration files key by key, and, unlike
        # command-line values, replace the configured extra indexes instead of adding to them.
        env["PIP_INDEX_URL"] = proxied_main
        env["PIP_EXTRA_INDEX_URL"] = " ".join(proxied_extras)
    env["PIP_REQUIREMENT"] = env["PIP_CONSTRAINT"] = ""
    # Every request of pip's goes to the guard: its own URLs are answered, any other host
    # (named by an option or key safe-pip did not place) is refused with the whole view.
    env["PIP_PROXY"] = guard_proxy
    return argv, env


def _requirement_files(cmd: PipCommand) -> list[tuple[str, bool]]:
    """The requirements files pip reads (and whether as constraints), pylock files aside."""
    return [
        (path, dest == "constraints")
        for dest in ("requirements", "constraints")
        for path in cmd.value(dest) or []
        if not is_pylock(path, extras=True)  # pip reads those itself (PEP 751)
    ]


def _lock_outputs(cmd: PipCommand) -> list[str]:
    """The files ``pip lock`` writes (``-`` is stdout)."""
    output = cmd.value("output_file")
    return [output] if output and output != "-" else ([] if output else ["pylock.toml"])


def _locked_urls(cmd: PipCommand) -> list[str]:
    """The file URLs of the pylock files pip is given: pip downloads them itself, each
    pinned by its hash in the lock."""
    paths = [
        value.split("[", 1)[0] if value.endswith("]") else value
        for value in cmd.value("requirements") or []
        if "://" not in value and is_pylock(value, extras=True)
    ]
    if not paths:
        return []
    from safe_pip.locks.pylock import read_pylock

    return [f.url for path in paths for pin in read_pylock(path) for f in pin.files if f.url]


def direct_hosts(positionals: Sequence[str], lines: Sequence[ReqLine]) -> set[tuple[str, int]]:
    """The hosts of the direct references the user named (``name @ URL``, a bare URL, in
    pip's arguments or requirements files): pip may reach these through the guard."""
    import urllib.parse

    specs = [*positionals, *(line.spec for line in lines if line.kind in ("direct", "editable"))]
    hosts: set[tuple[str, int]] = set()
    for spec in specs:
        url = spec.partition(" @ ")[2].strip() or spec.strip()
        url = url.split(";", 1)[0].strip()
        if url.startswith(("git+", "hg+", "svn+", "bzr+")):
            continue  # VCS tools reach their hosts themselves, not through pip's proxy
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue
            hosts.add((parts.hostname.lower(), port))
    return hosts


def _check_requirements(cmd: PipCommand) -> list[ReqLine]:
    """Every line of pip's requirements files, read in full, or raise ``InputError``; the
    prefetcher starts on their requirements.

    Called once pip has started (packaging's parsers are imported for it) and before the
    guard answers pip: a malformed line ends pip with nothing installed and safe-pip's own
    one-line error (exit 2), as when it was read before pip.
    """
    files = _requirement_files(cmd)
    if not files:
        return []
    from safe_pip.pip.requirements import read_requirements

    return [
        line
        for path, constraint in files
        for line in read_requirements(path, constraint=constraint)
    ]


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_report(path: str, guard: Guard, command: str) -> None:
    import json

    from safe_pip import __version__
    from safe_pip.net.urls import strip_credentials

    document = {"version": 1, "tool": f"safe-pip {__version__}", "command": command}
    document["indexes"] = [
        {
            "url": e.display,
            "changelog": e.changelog_url and strip_credentials(e.changelog_url),
            "origin": e.origin and strip_credentials(e.origin),
            "changelog_error": e.summary_error,
        }
        for e in guard.indexes
    ]
    document.update(guard.report())
    # The --as-of view's module is loaded only when one was made (not imported here for it).
    as_of_module = sys.modules.get("safe_pip.guard.asofview")
    if as_of_module is not None and isinstance(guard.page_filter, as_of_module.AsOfView):
        document["as_of"] = guard.page_filter.report()
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write the guard report {path}: {exc.strerror}") from exc


def _unproxy_outputs(cmd: PipCommand, guard: Guard) -> None:
    """Files pip wrote that name the guard's URLs get the index's own URLs back."""
    report = cmd.value("json_report_file")
    targets = [report] if report and report != "-" else []
    if cmd.command == "lock":
        targets += _lock_outputs(cmd)
    for target in targets:
        if os.path.isfile(target):
            with open(target, encoding="utf-8", newline="") as handle:
                text = handle.read()
            new = guard.unproxy(text)
            if new != text:
                with open(target, "w", encoding="utf-8", newline="") as handle:
                    handle.write(new)
