"""``safe-pip demo``: watch plain pip read a stale CDN view, and the guard refuse to.

A newcomer's first command (issue 8): no network, a few seconds. The simulator from
:mod:`safe_pip.testing` runs on 127.0.0.1: an origin index publishes a new release while a
CDN with four edges still holds the project's old page. Two edges get the purge at once, one
gets it late and one never (a lost purge, as in warehouse #11512 and #17747). Then:

1. plain pip installs once through each edge, and gets the old release from the edges that
   have not been purged;
2. ``safe-pip install`` through the edge whose purge is late waits for the fresh page (the
   purge is delivered while it waits) and installs the new release;
3. through the edge that never learns of the release, plain pip installs the old release
   and safe-pip refuses with exit 75 and installs nothing.

Every route is pinned, so the account is the same on every run but for ports and timings.
pip and safe-pip run as subprocesses of this interpreter with no pip configuration, no
``PIP_*`` or ``SAFE_PIP_*`` variable of the user, no cache, a temporary state directory and
``--target`` directories in a temporary directory removed afterwards: the demo changes
nothing on the machine. The guard options given before ``demo`` are not used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from safe_pip._errors import ExitCode, UsageError
from safe_pip._setup import GuardOptions

if TYPE_CHECKING:
    from safe_pip.testing import CDN

PROJECT = "frobnicate"
OLD, NEW = "1.0", "2.0"
#: What each edge does with the purge for the new release (index = edge number).
PURGES = ("at once", "late", "at once", "never")
LATE_EDGE, LOST_EDGE = PURGES.index("late"), PURGES.index("never")
#: Seconds after safe-pip first reads the late edge's stale copy until its purge arrives.
LATE_PURGE_AFTER = 1.0
#: --max-wait for the guarded install through the late edge: a generous bound on the demo.
WAIT_MAX_WAIT = 30
#: --max-wait for the never-purged case: short, so the demo stays fast.
REFUSE_MAX_WAIT = 3
CHILD_TIMEOUT = 120.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"safe-pip demo: {message}")


def _parser() -> _Parser:
    return _Parser(
        prog="safe-pip demo",
        description=(
            "Run plain pip and safe-pip side by side against a simulated index whose CDN "
            "serves a stale page (on 127.0.0.1; no network, a few seconds). Exits 0 when the "
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
            account.expect(False, f"{exc.cmd[2:4]} did not finish in {exc.timeout:g} s")
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
    from safe_pip.testing import CDN, Origin
    from safe_pip.testing._clients import fill_cache, page_view, pip_install

    say = account.line
    with Origin() as origin:
        origin.publish(PROJECT, OLD)
        old_serial = origin.project_serial(PROJECT)
        delays = [0.0 if purge == "at once" else None for purge in PURGES]
        with CDN(origin, edges=len(PURGES), purge_delays=delays, routing=0) as cdn:
            fill_cache(cdn, PROJECT)  # earlier readers: every edge holds the 1.0 page
            origin.publish(PROJECT, NEW)
            new_serial = origin.project_serial(PROJECT)
            say("safe-pip demo: a simulated index and CDN on 127.0.0.1 (no network)")
            say()
            say(
                f"The origin publishes {PROJECT} {NEW} (serial {new_serial}; {OLD} was serial "
                f"{old_serial}).\nThe CDN in front has {len(PURGES)} edges that held the old page:"
            )
            for edge, purge in enumerate(PURGES):
                serial, versions = page_view(cdn, PROJECT, edge)
                newest = versions[-1] if versions else "nothing"
                say(
                    f"  edge {edge}: purge {purge + ',':9} serves serial {serial} "
                    f"(newest: {PROJECT} {newest})"
                )
            say()

            def plain(edge: int, name: str) -> str | None:
                cdn.pin(edge)
                run = pip_install(
                    cdn.simple_url,
                    PROJECT,
                    target=tmp / name,
                    env=_child_env(tmp),
                    cwd=tmp,
                    timeout=CHILD_TIMEOUT,
                )
                version = run.version(PROJECT)
                note = _old_or_new(version)
                say(
                    f"  through edge {edge}: installed {_version(run.installed)}"
                    + (f"  ({note})" if note else "")
                )
                account.expect(
                    run.returncode == 0, f"plain pip failed through edge {edge}: {run.stderr}"
                )
                return version

            say(f"1. Plain pip ('pip install {PROJECT}'), once through each edge:")
            got = [plain(edge, f"pip-{edge}") for edge in range(len(PURGES))]
            stale_runs = got.count(OLD)
            say(f"  plain pip installed the old release {stale_runs} times out of {len(got)}.")
            expected = [OLD if purge != "at once" else NEW for purge in PURGES]
            account.expect(got == expected, f"plain pip installed {got}, expected {expected}")
            say()

            say(
                f"2. safe-pip install {PROJECT}, through edge {LATE_EDGE}; the purge reaches "
                f"edge {LATE_EDGE}\n   {LATE_PURGE_AFTER:g} s after safe-pip first reads it:"
            )
            cdn.pin(LATE_EDGE)
            waited = _guarded(cdn, tmp, "safe-1", WAIT_MAX_WAIT, late_purge=True)
            for message in waited.messages:
                say(f"    {message}")
            page = waited.page or {}
            say(
                f"  safe-pip read serial {old_serial} from edge {LATE_EDGE}; the changelog "
                f"requires {page.get('serial_required')};\n  after {page.get('attempts')} "
                f"requests in {page.get('elapsed_ms', 0) / 1000:.1f} s it got serial "
                f"{page.get('serial_seen')} ({page.get('verdict')})"
            )
            say(f"  exit {waited.returncode}, installed {_version(waited.installed)}")
            account.expect(waited.returncode == 0, f"safe-pip exited {waited.returncode}")
            account.expect(
                waited.installed == {PROJECT: NEW},
                f"safe-pip installed {_version(waited.installed)}, expected {PROJECT} {NEW}",
            )
            account.expect(
                page.get("serial_required") == new_serial and page.get("verdict") == "FRESH",
                f"the guard report shows {page or 'no page'}",
            )
            account.expect(int(page.get("attempts") or 0) > 1, "safe-pip did not have to wait")
            say()

            say(f"3. Edge {LOST_EDGE} never learns of {NEW} (a lost purge):")
            plain_version = plain(LOST_EDGE, "pip-lost")
            account.expect(plain_version == OLD, f"plain pip installed {plain_version}")
            cdn.pin(LOST_EDGE)
            refused = _guarded(cdn, tmp, "safe-2", REFUSE_MAX_WAIT, late_purge=False)
            say(
                f"  safe-pip --max-wait {REFUSE_MAX_WAIT}: exit {refused.returncode}, "
                f"installed {_version(refused.installed)}"
            )
            for message in refused.messages:
                say(f"    {message}")
            account.expect(
                refused.returncode == int(ExitCode.REFUSED),
                f"safe-pip exited {refused.returncode}, expected {int(ExitCode.REFUSED)}",
            )
            account.expect(
                refused.installed == {}, f"safe-pip installed {_version(refused.installed)}"
            )
            refusal = f"STALE, serial {old_serial} seen, {new_serial} required"
            account.expect(
                any(refusal in m for m in refused.messages),
                f"no refusal line saying {refusal!r}",
            )


def _child_env(tmp: Path) -> dict[str, str]:
    """The environment of the demo's pip and safe-pip: nothing of the user's pip or guard
    settings, safe-pip's state and every temporary file in the demo's directory (pip leaves
    its temporary directories behind when the guard ends it)."""
    from safe_pip.testing._clients import isolated_env

    scratch = tmp / "tmp"
    scratch.mkdir(exist_ok=True)
    return isolated_env(SAFE_PIP_STATE_DIR=str(tmp / "state"), TMPDIR=str(scratch))


def _guarded(cdn: CDN, tmp: Path, name: str, max_wait: float, *, late_purge: bool) -> _GuardedRun:
    """``safe-pip install`` as a subprocess; with ``late_purge``, the pinned edge's purge is
    delivered :data:`LATE_PURGE_AFTER` seconds after the guard's first read of it."""
    from safe_pip.testing._clients import installed

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
    if late_purge:
        edge, hits = cdn._pinned, cdn.hits

        def deliver() -> None:
            while cdn.hits == hits:  # the guard has not read the edge's copy yet
                if done.wait(0.02):
                    return
            if not done.wait(LATE_PURGE_AFTER):
                cdn.purge_now(PROJECT, edge=edge)

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
