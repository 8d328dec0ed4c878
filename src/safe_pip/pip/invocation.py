"""pip's command line and environment for a guarded run: every index pip will use pointed at
the guard, the guard as pip's proxy, and pip's output files given the index's URLs back.

Nothing here knows the guard itself: it is handed the URL each index is served under
(:meth:`IndexPlan.guarded <safe_pip.pip.launch.IndexPlan.guarded>`) and the guard's proxy URL.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from safe_pip.errors import InputError
from safe_pip.index.names import is_pylock
from safe_pip.pip.cmdline import (
    PipCommand,
    PipSettings,
    check_find_links,
    env_names,
    indexes_in_effect,
    pip_variable_name,
)
from safe_pip.pip.requirements import ReqLine, index_options, read_requirements, rewrite_for_guard

#: Seconds pip may wait on the guard beyond --max-wait: the guard waits out stale views inside
#: pip's request, so pip's own --timeout (15 s by default) must not cut that short (pip would
#: read an abandoned page as an empty one).
PIP_TIMEOUT_MARGIN = 60.0


def pip_invocation(
    cmd: PipCommand,
    guarded: Callable[..., str],
    settings: PipSettings,
    max_wait: float,
    env: Mapping[str, str],
    workdir: str,
    guard_proxy: str,
) -> tuple[list[str], dict[str, str]]:
    """pip's full argv and environment for this run, pointed at the guard."""
    argv, placed = pip_command(cmd, guarded, settings, workdir, guard_proxy)
    # The changelog may be retried for --max-wait, then a page waited out for --max-wait.
    pip_timeout = 2 * max_wait + settings.timeout + PIP_TIMEOUT_MARGIN
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


def pip_command(
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
    req_files = requirement_files(cmd)
    for path in [*(cmd.value("requirements") or []), *(cmd.value("constraints") or [])]:
        if os.path.isfile(path) and not _read_bytes(path).strip():
            # pip installs nothing and says nothing; a truncated file is the likelier story.
            raise InputError(path, "empty requirements file: nothing to install from it")
    in_files = None
    if req_files:
        # Requirement lines are read once pip has started (read_requirement_lines): the index
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


def requirement_files(cmd: PipCommand) -> list[tuple[str, bool]]:
    """The requirements files pip reads (and whether as constraints), pylock files aside."""
    return [
        (path, dest == "constraints")
        for dest in ("requirements", "constraints")
        for path in cmd.value(dest) or []
        if not is_pylock(path, extras=True)  # pip reads those itself (PEP 751)
    ]


def lock_outputs(cmd: PipCommand) -> list[str]:
    """The files ``pip lock`` writes (``-`` is stdout)."""
    output = cmd.value("output_file")
    return [output] if output and output != "-" else ([] if output else ["pylock.toml"])


def direct_hosts(positionals: Sequence[str], lines: Sequence[ReqLine]) -> set[tuple[str, int]]:
    """The hosts of the direct references the user named (``name @ URL``, a bare URL, in
    pip's arguments or requirements files): pip may reach these through the guard."""
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


def read_requirement_lines(cmd: PipCommand) -> list[ReqLine]:
    """Every line of pip's requirements files, read in full, or raise ``InputError``; the
    prefetcher starts on their requirements.

    Called once pip has started (packaging's parsers are imported for it) and before the
    guard answers pip: a malformed line ends pip with nothing installed and safe-pip's own
    one-line error (exit 2), as when it was read before pip.
    """
    files = requirement_files(cmd)
    if not files:
        return []
    return [
        line
        for path, constraint in files
        for line in read_requirements(path, constraint=constraint)
    ]


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def unproxy_outputs(cmd: PipCommand, unproxy: Callable[[str], str]) -> None:
    """Files pip wrote that name the guard's URLs get the index's own URLs back."""
    report = cmd.value("json_report_file")
    targets = [report] if report and report != "-" else []
    if cmd.command == "lock":
        targets += lock_outputs(cmd)
    for target in targets:
        if os.path.isfile(target):
            with open(target, encoding="utf-8", newline="") as handle:
                text = handle.read()
            new = unproxy(text)
            if new != text:
                with open(target, "w", encoding="utf-8", newline="") as handle:
                    handle.write(new)
