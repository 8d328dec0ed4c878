"""``safe-pip serve``: a long-running guard for a team or a CI runner host.

One guarded index is served to many clients at ``http://HOST:PORT/simple/<project>/`` (with
``/TOKEN`` in front when a token is set). Each page is checked as ``install`` checks it, and the
verdict is reused for ``--recheck`` seconds (5 by default): long enough that a burst of CI jobs
costs one check per project, short enough that a release or a purge is seen within seconds. The
journal is read again at most once per ``--recheck`` seconds, and only when a page is checked,
so an idle server asks nothing (PyPI allows 3,600 changelog calls an hour per address).

serve cannot stop its clients, so a refused page is answered 503 with a line naming the project
and why; a page the index would not give the guard (401 or 403: its credentials refused, or
none) is answered 502 at once with the line saying so. pip's index collector reads any failed
page as an empty one and resolves from whatever else it is given, so only ``install`` and
``run`` give the nothing-installed guarantee with pip.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from safe_pip.authority.changelog import ChangelogAuthority, ChangelogClient
from safe_pip.commands.parser import CommandParser
from safe_pip.errors import UsageError
from safe_pip.guard.guard import ACCESS_DENIED, IndexEntry
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.proxy import Answered, Proxy, closing_sleep
from safe_pip.guard.setup import GuardSetup, transport_of
from safe_pip.pip.cmdline import parse_pip_args, resolve_settings
from safe_pip.report.console import say, write_report

#: Seconds a verdict is reused by default (see the module docstring).
DEFAULT_RECHECK = 5.0
#: Seconds answers in flight may take to finish after SIGTERM.
SHUTDOWN_GRACE = 5.0
#: How often the serials served are written to the state dir (and at shutdown).
REMEMBER_EVERY = 60.0
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,256}")


def _parser() -> CommandParser:
    parser = CommandParser(
        prog="safe-pip serve",
        label="serve",
        description="Serve one index to many clients with every page proven fresh; refused "
        "pages answer 503. Only install and run stop pip before it installs from a partial "
        "view.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:3141",
        help="where to listen (default 127.0.0.1:3141; port 0 picks one); a non-loopback "
        "address requires --token-file",
    )
    parser.add_argument(
        "--index",
        metavar="URL",
        help="the simple index to guard (default: pip's index-url, as pip install would use)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="a file holding a secret (16+ URL-safe characters) that clients put first in "
        "the URL path: http://HOST:PORT/TOKEN/simple/",
    )
    parser.add_argument(
        "--recheck",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_RECHECK,
        help=f"how long a verdict is reused before the page is checked again "
        f"(default {DEFAULT_RECHECK:g})",
    )
    return parser


@dataclass(frozen=True)
class Listen:
    """Where serve listens, and the token clients must give (empty for none)."""

    host: str
    port: int
    token: str

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def url(self, port: int | None = None, *, masked: bool = False) -> str:
        """The index URL clients use; ``masked``: with the token as ``***`` (for logs, which
        CI hosts ship to places many people read; the operator has the token file)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        token = "***" if masked and self.token else self.token
        prefix = f"/{token}" if token else ""
        return f"http://{host}:{self.port if port is None else port}{prefix}/simple/"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def plan_listen(listen: str, token_file: str | None) -> Listen:
    """Parse ``--listen`` and read the token; off loopback a token is required.

    Anyone who can reach the port can otherwise read what a team installs and make the guard
    fetch pages for them.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--listen: expected HOST:PORT (e.g. 127.0.0.1:3141), not {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    token = ""
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"--token-file {token_file}: cannot read it: {why}") from None
        if not _TOKEN.fullmatch(token):
            raise UsageError(
                f"--token-file {token_file}: the token must be 16 to 256 characters of "
                "A-Z a-z 0-9 . _ ~ -"
            )
    if not token and not is_loopback(host):
        raise UsageError(
            f"--listen {listen}: not a loopback address, so a token is required "
            "(--token-file FILE); clients then use http://HOST:PORT/TOKEN/simple/"
        )
    return Listen(host, int(port_text), token)


class AccessLog:
    """One line per answer: project, verdict, serial seen/required, milliseconds."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._last: dict[str, int] = {}

    def __call__(self, answer: Answered) -> None:
        self._write(self.line(answer))

    def line(self, answer: Answered) -> str:
        ms = f"{answer.ms:.1f} ms"
        if answer.refusal is not None and answer.refusal.verdict == ACCESS_DENIED:
            return f"{answer.name}: {answer.status} {ACCESS_DENIED}, {ms}: {answer.refusal}"
        if answer.refusal is not None:
            r = answer.refusal
            return (
                f"{answer.name}: 503 REFUSED ({r.verdict}), serial {_n(r.seen)} seen, "
                f"{_n(r.required)} required, {ms}: {r.reason}"
            )
        if answer.kind == "file":
            return f"file {answer.name}: {answer.status}, {ms}"
        record = answer.record
        if record is None:
            verdict = "NOT-FOUND" if answer.status == 404 else str(answer.status)
            return f"{answer.name}: {answer.status} {verdict}, {ms}"
        again = self._last.get(answer.name) == id(record)
        self._last[answer.name] = id(record)
        how = " (verdict reused)" if again else f" (checked in {record.elapsed_ms} ms)"
        return (
            f"{answer.name}: {answer.status} {record.verdict}, serial "
            f"{_n(record.serial_seen)} seen, {_n(record.serial_required)} required, {ms}{how}"
        )


def _n(value: int | None) -> str:
    return "none" if value is None else str(value)


def _stderr_line(line: str) -> None:
    say(line, prefix="safe-pip serve")


def main(args: list[str], options: GuardOptions) -> int:
    ns = _parser().parse_args(args)
    if not ns.recheck >= 0 or ns.recheck == float("inf"):
        raise UsageError(f"--recheck: must be a finite number of seconds >= 0, not {ns.recheck}")
    listen = plan_listen(ns.listen, ns.token_file)
    pip_args = ["--index-url", ns.index] if ns.index else []
    settings = resolve_settings(parse_pip_args("install", pip_args), os.environ)
    setup = GuardSetup(options, transport_of(settings), say=say)
    guard = setup.guard
    guard.page_ttl = ns.recheck
    guard.sleep = closing_sleep(guard)  # a wait ends with a 503 on SIGTERM, not after it
    entry = setup.add_index(settings.index_url, main=True)
    if entry is None:
        raise UsageError(f"serve: {settings.index_url} is not an http(s) index")
    _renewable(entry, setup)
    try:
        proxy = Proxy(
            guard,
            on_refused="503",
            address=(listen.host, listen.port),
            token=listen.token,
            on_answer=AccessLog(_stderr_line),
        )
    except OSError as exc:
        hint = " (is another safe-pip serve running?)" if exc.errno == errno.EADDRINUSE else ""
        raise UsageError(f"cannot listen on {ns.listen}: {exc.strerror or exc}{hint}") from None

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    proxy.start()
    guard.start_authorities()
    _stderr_line(
        f"guarding {entry.display} at {listen.url(proxy.port, masked=True)} (verdicts reused for "
        f"{ns.recheck:g} s; clients need a timeout above --max-wait {options.max_wait:g} s)"
    )
    last_remembered = time.monotonic()
    while not stop.wait(0.5):
        if time.monotonic() - last_remembered >= REMEMBER_EVERY:
            setup.keep(say)
            last_remembered = time.monotonic()
    _stderr_line("shutting down")
    proxy.stop(grace=SHUTDOWN_GRACE)
    setup.keep(say)
    if options.report:
        write_report(options.report, guard, "serve")
    _stderr_line("stopped")
    return 0


def _renewable(entry: IndexEntry, setup: GuardSetup) -> None:
    """Let the guard read the journal again (a ChangelogAuthority answers once)."""
    url = entry.changelog_url
    if entry.changelog is None or not url:
        return
    session, transport, store = setup.session, setup.transport, setup.store
    max_wait = setup.options.max_wait
    keep_files = entry.changelog.keep_files

    def renew() -> ChangelogAuthority:
        client = ChangelogClient(url, session, timeout=transport.timeout)
        return ChangelogAuthority(
            client, store, entry.upstream, max_wait=max_wait, keep_files=keep_files
        )

    entry.renew_changelog = renew
