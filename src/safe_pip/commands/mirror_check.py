"""``safe-pip mirror-check MIRROR_URL``: which projects a mirror got wrong, and how to fix them.

A mirror follows the changelog, fetches a page while the CDN still serves the old copy,
records the change as done and never looks again; nothing tells its operator. This reads the
index's journal (bounded calls), reads the mirror's pages of the projects it names, and says
per project ``missing``, ``behind`` (with the files it lacks or still lists) or ``ahead``.
The logic is in :mod:`safe_pip.mirrors`; this module reads the command line and reports.
"""

from __future__ import annotations

import os
import sys
import time

from safe_pip.authority.changelog_client import ChangelogClient
from safe_pip.commands.parser import CommandParser, add_network_options, pip_args
from safe_pip.errors import AuthorityError, ExitCode, UsageError
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.setup import transport_of
from safe_pip.index.asof import AsOf, parse_as_of
from safe_pip.mirrors.check import MirrorCheck, Progress
from safe_pip.mirrors.pages import DEFAULT_JOBS, MirrorPages
from safe_pip.mirrors.upstream import Reader
from safe_pip.net.http import make_session
from safe_pip.pip.cmdline import default_changelog_url, parse_pip_args, resolve_settings
from safe_pip.report.console import emit_report, say
from safe_pip.report.mirror import MirrorFormat, MirrorResult, summary_line


def _parser() -> CommandParser:
    p = CommandParser(
        prog="safe-pip mirror-check",
        description="Find the projects a mirror (bandersnatch, devpi, a PyPI proxy) has "
        "wrong against the index's changelog: missing, behind, ahead. The changelog is "
        "--changelog (a guard option), else PyPI's. Exit 0 consistent, 1 findings, "
        "2 usage, 75 the changelog could not be read (nothing judged).",
        allow_abbrev=False,
    )
    p.add_argument("mirror", metavar="MIRROR_URL", help="the mirror's simple index URL")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--since",
        metavar="SERIAL|DATETIME",
        help="check the projects changed after this journal serial or UTC moment "
        "(default: the last 50,000 journal entries)",
    )
    which.add_argument(
        "--all", action="store_true", help="check every project the index lists"
    )
    p.add_argument(
        "--format", choices=[f.value for f in MirrorFormat], default=MirrorFormat.TEXT.value
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    p.add_argument(
        "--refresh",
        action="store_true",
        help="devpi: ask the mirror to refetch each project behind or missing, and check again",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=DEFAULT_JOBS,
        metavar="N",
        help=f"pages read at once [{DEFAULT_JOBS}]",
    )
    net = p.add_argument_group("pip's network options (as pip install takes them)")
    add_network_options(net)
    return p


def main(args: list[str], options: GuardOptions) -> int:
    try:
        ns = _parser().parse_args(args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if not ns.mirror.startswith(("http://", "https://")):
        raise UsageError(f"mirror-check: MIRROR_URL must be an http(s) URL, not {ns.mirror!r}")
    if ns.jobs < 1:
        raise UsageError(f"mirror-check: --jobs must be at least 1, not {ns.jobs}")
    since: AsOf | None = parse_as_of(ns.since, "--since") if ns.since else None
    settings = resolve_settings(parse_pip_args("install", pip_args(ns)), os.environ)
    transport = transport_of(settings)
    session = make_session(transport, pool=ns.jobs + 1)
    session.add_index(ns.mirror)
    changelog = options.changelog or default_changelog_url()
    client = ChangelogClient(changelog, session, timeout=transport.timeout)
    pages = MirrorPages(session, ns.mirror, jobs=ns.jobs)
    progress = _ProgressLine() if sys.stderr.isatty() else None
    check = MirrorCheck(
        pages,
        Reader(client, max_wait=options.max_wait),
        on_progress=progress or (lambda p: None),
        complete=options.complete_mirror,
    )
    try:
        result = check.run(since, everything=ns.all, refresh=ns.refresh)
    except AuthorityError as exc:
        if progress:
            progress.clear()
        say(f"cannot read the index's journal ({exc}); nothing was judged (exit 75)")
        return int(ExitCode.REFUSED)
    finally:
        session.close()
    if progress:
        progress.clear()
    emit_report(MirrorFormat(ns.format).render(result), ns.output)
    say(summary_line(result))
    counts = result.counts()
    if result.projects > 1 and counts["missing"] == result.projects:
        # Most likely the wrong URL, not a mirror without a single project.
        say(
            "every project is missing: is MIRROR_URL the mirror's simple index "
            "(bandersnatch: …/simple/, devpi: …/USER/INDEX/+simple/)?"
        )
    return _exit_code(result, strict=options.strict)


def _exit_code(result: MirrorResult, *, strict: bool) -> int:
    wrong = [f for f in result.findings if f.kind.wrong or strict]
    return int(ExitCode.FINDINGS if wrong else ExitCode.OK)


class _ProgressLine:
    """``checked N/M projects, F findings`` rewritten in place on a terminal, at most five
    times a second (a full audit reads tens of thousands of pages)."""

    def __init__(self) -> None:
        self._last = 0.0
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < 0.2 and progress.done < progress.total:
            return
        self._last = now
        self._shown = True
        sys.stderr.write(
            f"\rsafe-pip: checked {progress.done}/{progress.total} projects, "
            f"{progress.findings} findings"
        )
        sys.stderr.flush()

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
