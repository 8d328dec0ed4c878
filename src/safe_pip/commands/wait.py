"""``safe-pip wait PROJECT==VERSION …``: a release gate for publishers.

After an upload, a pipeline that installs what it uploaded (smoke tests, docs builds,
dependent projects) can meet cached copies of the page that lack the release and fail, or take
the previous release. This waits until every cached copy of each project's page and the file
host show the whole release (:mod:`safe_pip.guard.propagation`), or says what still lags.
"""

from __future__ import annotations

import os

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from safe_pip.authority.changelog_client import ChangelogClient
from safe_pip.commands.parser import CommandParser, add_network_options, pip_args
from safe_pip.errors import ExitCode, UsageError
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.propagation import ReleaseGate, ReleaseWatch
from safe_pip.guard.refusals import AccessDenied
from safe_pip.guard.setup import GuardSetup, transport_of
from safe_pip.guard.timing import Timing
from safe_pip.pip.cmdline import indexes_in_effect, parse_pip_args, resolve_settings
from safe_pip.pip.requirements import index_options
from safe_pip.report.console import say
from safe_pip.report.release_gate import final_line, json_document, progress_line


def _parser() -> CommandParser:
    p = CommandParser(
        prog="safe-pip wait",
        description="Wait until each release is visible in every cached copy of its "
        "project's page (JSON and HTML, gzip and plain) and on the file host. Exit 0 visible "
        "everywhere, 1 no such release (said at once), 2 usage error or the index refused "
        "the credentials, 75 still propagating at --max-wait.",
        allow_abbrev=False,
    )
    p.add_argument("releases", nargs="+", metavar="PROJECT==VERSION")
    p.add_argument("--format", choices=["text", "json"], default="text")
    index = p.add_argument_group("pip's index options (as pip install takes them)")
    index.add_argument("-i", "--index-url", metavar="URL")
    add_network_options(index)
    return p


def _release(text: str) -> tuple[str, str]:
    name, sep, version = text.partition("==")
    try:
        if not sep or not name.strip() or "=" in version:
            raise InvalidVersion(text)
        Version(version.strip())
    except InvalidVersion:
        raise UsageError(f"safe-pip wait: {text!r} is not PROJECT==VERSION") from None
    return canonicalize_name(name.strip()), version.strip()


def main(args: list[str], options: GuardOptions) -> int:
    try:
        ns = _parser().parse_args(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    wanted = list(dict.fromkeys(_release(text) for text in ns.releases))
    settings = resolve_settings(parse_pip_args("install", pip_args(ns)), os.environ)
    main_url, _extras, no_index = indexes_in_effect(settings, index_options([]))
    if no_index or not main_url.startswith(("http://", "https://")):
        raise UsageError(f"safe-pip wait: no index to wait on ({main_url or '--no-index'})")
    setup = GuardSetup(options, transport_of(settings), say=say)
    entry = setup.add_index(main_url, main=True)
    assert entry is not None  # an http(s) URL
    changelog = None
    if entry.changelog_url:
        timeout = setup.transport.timeout
        changelog = ChangelogClient(entry.changelog_url, setup.session, timeout=timeout)
    gate = ReleaseGate(
        setup.session,
        entry,
        Timing(max_wait=options.max_wait),
        changelog=changelog,
        on_progress=lambda watch, left: say(progress_line(watch, entry.display, left)),
    )
    try:
        watches = gate.references(wanted)
        if not any(w.no_release for w in watches):
            gate.wait(watches)
    except AccessDenied as exc:
        projects = ", ".join(project for project, _ in wanted)
        say(f"the index {entry.display} {exc.reason(projects)}; nothing was waited for")
        return int(ExitCode.USAGE)
    code = _exit_code(watches)
    for watch in watches:
        if code != ExitCode.FINDINGS or watch.no_release:
            say(final_line(watch, entry.display, options.max_wait))
    if code == ExitCode.FINDINGS:
        say(f"nothing was waited for: a release is not on the index (exit {code})")
    if ns.format == "json":
        print(json_document(watches, entry.display, code), end="", flush=True)
    return code


def _exit_code(watches: list[ReleaseWatch]) -> int:
    if any(w.no_release for w in watches):
        return int(ExitCode.FINDINGS)
    if all(w.visible_after is not None for w in watches):
        return int(ExitCode.OK)
    return int(ExitCode.REFUSED)
