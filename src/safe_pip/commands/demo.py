"""``safe-pip demo``: watch plain pip read a stale CDN view, and the guard refuse to.

A newcomer's first command: no network, a few seconds. The simulator from
:mod:`safe_pip.testing` runs on 127.0.0.1: an origin index publishes a new release while a
CDN with three edges still holds the project's old page. One edge gets the purge at once,
one late and one never (a lost purge: stale copies have been seen for seconds to hours,
warehouse #8568, #11512, #12214, #17747). Then:

1. plain pip installs once through each edge, and gets the old release from the two edges
   that have not been purged;
2. ``safe-pip install`` through the edge whose purge is late waits for the fresh page (the
   purge is delivered while it waits) and installs the new release;
3. through the edge that never learns of the release, side by side, plain pip installs the
   old release and safe-pip refuses with exit 75 and installs nothing.

Every route is pinned, so the account is the same on every run but for ports and timings.
pip and safe-pip run as subprocesses of this interpreter with no pip configuration, no
``PIP_*`` or ``SAFE_PIP_*`` variable of the user, no cache, a temporary state directory and
``--target`` directories in a temporary directory removed afterwards: the demo changes
nothing on the machine. The guard options given before ``demo`` are not used.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safe_pip.commands.parser import CommandParser
from safe_pip.errors import ExitCode
from safe_pip.guard.options import GuardOptions
from safe_pip.testing import (
    CDN,
    Origin,
    PipRun,
    fill_cache,
    installed,
    isolated_env,
    page_view,
    pip_install,
)

PROJECT = "frobnicate"
OLD, NEW = "1.0", "2.0"
#: What each edge does with the purge for the new release (index = edge number).
PURGES = ("at once", "late", "never")
LATE_EDGE, LOST_EDGE = PURGES.index("late"), PURGES.index("never")
#: Seconds after safe-pip first reads the late edge's stale copy until its purge arrives.
LATE_PURGE_AFTER = 1.0
#: --max-wait for the guarded install through the late edge: a generous bound on the demo.
WAIT_MAX_WAIT = 30
#: --max-wait for the never-purged case: short, so the demo stays fast.
REFUSE_MAX_WAIT = 3
CHILD_TIMEOUT = 120.0


def _parser() -> CommandParser:
    return CommandParser(
        prog="safe-pip demo",
        description=(
            "Run plain pip and safe-pip side by side against a simulated index whose CDN "
            "serves a stale page (on 127.0.0.1; no network, 10 to 15 s). Exits 0 when the "
            "guard behaved as documented, 1 otherwise."
        ),
        allow_abbrev=False,
    )


@dataclass
class _Account:
    """The printed account and the list of things that did not go as documented."""

    write: Callable[[str], None]
    problems: list[str] = field(default_factory=list)

    def line(self, text: str = "") -> None:
        self.write(text)

    def expect(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
            self.write(f"    !! {problem}")
        return ok


@dataclass(frozen=True)
class _GuardedRun:
    returncode: int
    installed: dict[str, str]
    messages: list[str]  # safe-pip's own stderr lines
    page: dict[str, Any] | None  # the guard report's record of the project's page


def _version(installed: dict[str, str]) -> str:
    found = installed.get(PROJECT)
    return f"{PROJECT} {found}" if found else "nothing"


def _old_or_new(version: str | None) -> str:
    return {OLD: "the old release", NEW: "the new release"}.get(version or "", "")


def main(args: Sequence[str], options: GuardOptions) -> int:
    """Run the demo; print the account on stdout; 0 if the guard behaved as documented."""
    _parser().parse_args(list(args))
    del options  # the demo sets its own guard options for the safe-pip it runs
    account = _Account(lambda text: print(text, flush=True))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="safe-pip-demo-") as tmp:
        try:
            _run(Path(tmp), account)
        except subprocess.TimeoutExpired as exc:
            who = "pip" if "pip" in list(exc.cmd)[2:3] else "safe-pip"
            account.expect(False, f"{who} did not finish within {exc.timeout:g} s")
    elapsed = time.monotonic() - started
    account.line()
    if account.problems:
        account.line(f"FAILED: the guard did not behave as documented ({elapsed:.1f} s):")
        for problem in account.problems:
            account.line(f"  - {problem}")
        return int(ExitCode.FINDINGS)
    account.line(
        f"OK: plain pip installed whatever its edge held; safe-pip installed {PROJECT} {NEW} "
        f"or nothing ({elapsed:.1f} s)."
    )
    return int(ExitCode.OK)


def _run(tmp: Path, account: _Account) -> None:
    with Origin() as origin:
        origin.publish(PROJECT, OLD)
        old_serial = origin.project_serial(PROJECT)
        delays = [0.0 if purge == "at once" else None for purge in PURGES]
        with CDN(origin, edges=len(PURGES), purge_delays=delays, routing=0) as cdn:
            fill_cache(cdn, PROJECT)  # earlier readers: every edge holds the old page
            origin.publish(PROJECT, NEW)
            demo = _Demo(tmp, account, cdn, old_serial, origin.project_serial(PROJECT))
            demo.edges()
            demo.plain_pip()
            demo.guard_waits()
            demo.purge_lost()


@dataclass
class _Demo:
    """The three steps of the demo against one origin and CDN, each printed and checked."""

    tmp: Path
    account: _Account
    cdn: CDN
    old_serial: int
    new_serial: int

    def say(self, text: str = "") -> None:
        self.account.line(text)

    def edges(self) -> None:
        self.say("safe-pip demo: a simulated index and CDN on 127.0.0.1 (no network)")
        self.say()
        self.say(
            f"The origin publishes {PROJECT} {NEW} (serial {self.new_serial}; {OLD} was "
            f"serial {self.old_serial}).\nThe CDN in front has {len(PURGES)} edges that held "
            "the old page:"
        )
        for edge, purge in enumerate(PURGES):
            serial, versions = page_view(self.cdn, PROJECT, edge)
            newest = versions[-1] if versions else "nothing"
            self.say(
                f"  edge {edge}: purge {purge + ',':9} serves serial {serial} "
                f"(newest: {PROJECT} {newest})"
            )
        self.say()

    def _pip(self, name: str) -> PipRun:
        """Plain pip through the edge the CDN is pinned to."""
        return pip_install(
            self.cdn.simple_url,
            PROJECT,
            target=self.tmp / name,
            env=_child_env(self.tmp),
            cwd=self.tmp,
            timeout=CHILD_TIMEOUT,
        )

    def _show_pip(self, edge: int, run: PipRun) -> str | None:
        version = run.version(PROJECT)
        note = _old_or_new(version)
        self.say(
            f"  through edge {edge}: installed {_version(run.installed)}"
            + (f"  ({note})" if note else "")
        )
        self.account.expect(
            run.returncode == 0, f"plain pip failed through edge {edge}: {run.stderr.strip()}"
        )
        return version

    def plain_pip(self) -> None:
        self.say(f"1. Plain pip ('pip install {PROJECT}'), once through each edge:")
        got = []
        for edge in range(len(PURGES)):
            self.cdn.pin(edge)
            got.append(self._show_pip(edge, self._pip(f"pip-{edge}")))
        self.say(f"  plain pip installed the old release {got.count(OLD)} times out of {len(got)}.")
        expected = [OLD if purge != "at once" else NEW for purge in PURGES]
        self.account.expect(got == expected, f"plain pip installed {got}, expected {expected}")
        self.say()

    def guard_waits(self) -> None:
        self.say(
            f"2. safe-pip install {PROJECT}, through edge {LATE_EDGE}; the purge reaches "
            f"edge {LATE_EDGE}\n   {LATE_PURGE_AFTER:g} s after safe-pip first reads it:"
        )
        self.cdn.pin(LATE_EDGE)
        waited = _guarded(self.cdn, self.tmp, "safe-1", WAIT_MAX_WAIT, purge_edge=LATE_EDGE)
        for message in waited.messages:
            self.say(f"    {message}")
        page = waited.page or {}
        self.say(
            f"  safe-pip read serial {self.old_serial} from edge {LATE_EDGE}; the changelog "
            f"requires {page.get('serial_required')};\n  after {page.get('attempts')} "
            f"requests in {page.get('elapsed_ms', 0) / 1000:.1f} s it got serial "
            f"{page.get('serial_seen')} ({page.get('verdict')})"
        )
        self.say(f"  exit {waited.returncode}, installed {_version(waited.installed)}")
        expect = self.account.expect
        expect(waited.returncode == 0, f"safe-pip exited {waited.returncode}")
        expect(
            waited.installed == {PROJECT: NEW},
            f"safe-pip installed {_version(waited.installed)}, expected {PROJECT} {NEW}",
        )
        expect(
            page.get("serial_required") == self.new_serial and page.get("verdict") == "FRESH",
            f"the guard report shows {page or 'no page'}",
        )
        expect(int(page.get("attempts") or 0) > 1, "safe-pip did not have to wait")
        self.say()

    def purge_lost(self) -> None:
        self.say(f"3. Edge {LOST_EDGE} never learns of {NEW} (a lost purge), side by side:")
        self.cdn.pin(LOST_EDGE)
        # Plain pip runs while safe-pip waits out its --max-wait: both through the same edge.
        with ThreadPoolExecutor(max_workers=1) as pool:
            plain = pool.submit(self._pip, "pip-lost")
            refused = _guarded(self.cdn, self.tmp, "safe-2", REFUSE_MAX_WAIT)
            plain_version = self._show_pip(LOST_EDGE, plain.result())
        self.account.expect(plain_version == OLD, f"plain pip installed {plain_version}")
        self.say(
            f"  safe-pip --max-wait {REFUSE_MAX_WAIT}: exit {refused.returncode}, "
            f"installed {_version(refused.installed)}"
        )
        for message in refused.messages:
            self.say(f"    {message}")
        expect = self.account.expect
        expect(
            refused.returncode == int(ExitCode.REFUSED),
            f"safe-pip exited {refused.returncode}, expected {int(ExitCode.REFUSED)}",
        )
        expect(refused.installed == {}, f"safe-pip installed {_version(refused.installed)}")
        refusal = f"STALE, serial {self.old_serial} seen, {self.new_serial} required"
        expect(any(refusal in m for m in refused.messages), f"no refusal line saying {refusal!r}")


def _child_env(tmp: Path) -> dict[str, str]:
    """The environment of the demo's pip and safe-pip: nothing of the user's pip or guard
    settings, safe-pip's state and every temporary file in the demo's directory (pip leaves
    its temporary directories behind when the guard ends it)."""
    scratch = tmp / "tmp"
    scratch.mkdir(exist_ok=True)
    return isolated_env(SAFE_PIP_STATE_DIR=str(tmp / "state"), TMPDIR=str(scratch))


def _guarded(
    cdn: CDN, tmp: Path, name: str, max_wait: float, *, purge_edge: int | None = None
) -> _GuardedRun:
    """``safe-pip install`` as a subprocess; with ``purge_edge`` (the edge the CDN is pinned
    to), that edge's purge is delivered :data:`LATE_PURGE_AFTER` seconds after the guard's
    first read of it."""
    target, report = tmp / name, tmp / f"{name}.json"
    argv = [
        sys.executable, "-m", "safe_pip", "--changelog", cdn.changelog_url,
        "--max-wait", str(max_wait), "--guard-report", str(report),
        "install", "--target", str(target), "--no-cache-dir", "--index-url", cdn.simple_url,
        PROJECT,
    ]  # fmt: skip
    env = _child_env(tmp)
    done = threading.Event()
    purger: threading.Thread | None = None
    if purge_edge is not None:
        hits = cdn.hits

        def deliver() -> None:
            while cdn.hits == hits:  # the guard has not read the edge's copy yet
                if done.wait(0.02):
                    return
            if not done.wait(LATE_PURGE_AFTER):
                cdn.purge_now(PROJECT, edge=purge_edge)

        purger = threading.Thread(target=deliver, daemon=True)
        purger.start()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=tmp,
            timeout=CHILD_TIMEOUT, check=False,
        )  # fmt: skip
    finally:
        done.set()
        if purger is not None:
            purger.join()
    messages = [line for line in proc.stderr.splitlines() if line.startswith("safe-pip:")]
    page = None
    if report.is_file():
        pages = json.loads(report.read_text(encoding="utf-8")).get("pages") or []
        page = next((p for p in pages if p.get("project") == PROJECT), None)
    return _GuardedRun(proc.returncode, installed(target), messages, page)
