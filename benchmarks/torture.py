"""Consistency torture: installs race publishes, yanks and removals behind a lossy CDN.

``python -m benchmarks.torture [--installs 500] [--seed 0]`` runs a seeded random schedule
against the simulator: an origin, and a CDN of several edges whose purges arrive after random
delays or are lost on one edge or, when the purge job fails, on all (healed only by the
copies' TTL). While a mutator publishes, yanks, unyanks and removes releases and whole
projects (mostly after other clients' traffic has filled every copy of the page), installs
run one project at a time, half with plain pip and half through safe-pip (30% of those with a
``--max-wait`` shorter than most purge delays, so that refusals happen), each
``pip install --dry-run --report`` (nothing is installed; the report says what pip chose)
with ``--no-cache-dir``.

Every install is judged against the origin's own history (a model kept by the mutator, one
snapshot per journal serial): the versions a fresh view could have given are those of every
state from the one in force when the install started to the one when it ended. A plain pip or
safe-pip answer outside that set used a stale view. A safe-pip refusal is right only if the
view it refused was really stale: the serial it required is a content change of that project
newer than the serial it saw (or, for a file, the file really is gone).

Printed: installs run, plain pip installs that used a stale view (the baseline), safe-pip
installs that did (target 0), refusals that were wrong (target 0). ``run_torture`` is the same
run as a function (the test suite runs a short seeded one).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import requests
from packaging.version import Version

from safe_pip.index.journal import is_content_change
from safe_pip.testing import CDN, Origin

Tool = Literal["pip", "safe-pip"]
Snapshot = dict[str, str | None]  # project -> the version a fresh `pip install p` picks


@dataclass
class Outcome:
    """One install and what it was judged to be."""

    number: int
    tool: Tool
    project: str
    start_serial: int
    end_serial: int
    code: int
    resolved: str | None
    fresh_answers: list[str | None]
    stale: bool = False
    refused: bool = False
    wrong_refusal: bool = False
    detail: str = ""
    seconds: float = 0.0


class _World:
    """The origin, the CDN, and the model of the origin's history the judge reads."""

    def __init__(
        self, rng: random.Random, projects: int, edges: int, ttl: float | None
    ) -> None:
        self.rng = rng
        self.origin = Origin().start()
        self.cdn = CDN(
            self.origin, edges=edges, routing="random", seed=rng.randrange(2**31), ttl=ttl
        )
        self.cdn.start()
        self.lock = threading.Lock()
        self.names = [f"torture-{i:02d}" for i in range(projects)]
        self.next_version = dict.fromkeys(self.names, 1)
        self.model: dict[str, dict[str, bool] | None] = dict.fromkeys(self.names)
        self.history: list[tuple[int, Snapshot]] = []
        for name in self.names:
            for _ in range(2):
                self._publish(name)
        self._record()

    def close(self) -> None:
        self.cdn.stop()
        self.origin.stop()

    # -- the model ---------------------------------------------------------------------------

    def _best(self, name: str) -> str | None:
        releases = self.model[name]
        live = [Version(v) for v, yanked in (releases or {}).items() if not yanked]
        return str(max(live)) if live else None

    def _record(self) -> None:
        self.history.append(
            (self.origin.last_serial, {name: self._best(name) for name in self.names})
        )

    def fresh_answers(self, start: int, end: int) -> list[Snapshot]:
        """The states a fresh view could show, from ``start`` (the one in force) to ``end``."""
        with self.lock:
            history = list(self.history)
        in_force = [snap for serial, snap in history if serial <= start][-1:]
        later = [snap for serial, snap in history if start < serial <= end]
        return in_force + later

    # -- mutations ---------------------------------------------------------------------------

    def _publish(self, name: str) -> None:
        version = f"{self.next_version[name]}.0"
        self.next_version[name] += 1
        self.origin.publish(name, version)
        releases = self.model[name] or {}
        releases[version] = False
        self.model[name] = releases

    def warm(self, name: str, rounds: int = 8) -> None:
        """Other clients' traffic: every copy (JSON, HTML v1 and text/html, gzip and plain) asked
        for ``rounds`` times, so that most edges hold every variant before a change."""
        accepts = (
            "application/vnd.pypi.simple.v1+json",
            "application/vnd.pypi.simple.v1+html",
            "text/html",
        )
        for _ in range(rounds):
            for accept in accepts:
                for encoding in ("gzip", "identity"):
                    requests.get(
                        f"{self.cdn.simple_url}{name}/",
                        headers={"Accept": accept, "Accept-Encoding": encoding},
                        timeout=30,
                    )

    def mutate(self, purge_delays: list[float | None]) -> str:
        """One random change at the origin, with these purge delays for its purge."""
        rng = self.rng
        name = rng.choice(self.names)
        if rng.random() < 0.8:
            self.warm(name)
        releases = self.model[name]
        live = [v for v, yanked in (releases or {}).items() if not yanked]
        yanked = [v for v, y in (releases or {}).items() if y]
        roll = rng.random()
        with self.lock:
            self.cdn.set_purge_delays(purge_delays)
            if releases is None or roll < 0.45:
                self._publish(name)
                what = "publish"
            elif roll < 0.65 and len(live) >= 2:
                version = rng.choice(live)
                self.origin.yank(name, version, "torture")
                releases[version] = True
                what = "yank"
            elif roll < 0.72 and yanked:
                version = rng.choice(yanked)
                self.origin.unyank(name, version)
                releases[version] = False
                what = "unyank"
            elif roll < 0.9 and len(releases) >= 2:
                version = rng.choice(sorted(releases))
                self.origin.remove_release(name, version)
                del releases[version]
                what = "remove release"
            elif roll < 0.96:
                self.origin.remove_project(name)
                self.model[name] = None
                what = "remove project"
            else:
                self.origin.role_change(name)  # raises the serial, changes no page
                what = "role change"
            self._record()
        return f"{what} {name}"

    # -- judging refusals --------------------------------------------------------------------

    def content_changes(self, name: str) -> list[tuple[int, str]]:
        """(serial, action) of every content-changing journal entry of ``name``."""
        return [
            (e.serial, e.action)
            for e in self.origin.journal
            if e.name.lower().replace("_", "-") == name and is_content_change(e.action)
        ]


def _clean_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SAFE_PIP_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        SAFE_PIP_STATE_DIR=str(state_dir),
    )
    return env


def _resolved(report: Path, project: str) -> str | None:
    try:
        doc = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    for item in doc.get("install", []):
        if item.get("metadata", {}).get("name", "").lower() == project:
            return str(item["metadata"]["version"])
    return None


def _install(
    world: _World, number: int, tool: Tool, project: str, work: Path, max_wait: float
) -> Outcome:
    env = _clean_env(work / "state")
    report, guard_report = work / f"r{number}.json", work / f"g{number}.json"
    pip_args = [
        "install", "--dry-run", "--report", str(report), "--no-cache-dir", "--no-deps",
        "--ignore-installed", "--quiet", "--index-url", world.cdn.simple_url, project,
    ]  # fmt: skip
    if tool == "pip":
        argv = [sys.executable, "-m", "pip", *pip_args]
    else:
        argv = [
            sys.executable, "-m", "safe_pip", "--changelog", world.cdn.changelog_url,
            "--max-wait", f"{max_wait:g}", "--guard-report", str(guard_report), *pip_args,
        ]  # fmt: skip
    with world.lock:
        start = world.origin.last_serial
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.monotonic() - t0
    end = world.origin.last_serial
    resolved = _resolved(report, project) if proc.returncode == 0 else None
    snaps = world.fresh_answers(start, end)
    answers = [snap.get(project) for snap in snaps]
    out = Outcome(number, tool, project, start, end, proc.returncode, resolved, answers)
    out.seconds = round(seconds, 2)
    if tool == "safe-pip" and proc.returncode == 75:
        out.refused = True
        out.wrong_refusal, out.detail = _judge_refusal(world, guard_report, proc.stderr)
    elif resolved not in answers:
        out.stale = True
        out.detail = (proc.stderr.strip().splitlines() or [""])[-1][:300]
    return out


def _judge_refusal(world: _World, guard_report: Path, stderr: str) -> tuple[bool, str]:
    """(wrong, why): a refusal is right only if the view it refused was really stale."""
    try:
        refusals = json.loads(guard_report.read_text())["refusals"]
    except (OSError, ValueError, KeyError):
        return True, "no guard report: " + stderr.strip()[-300:]
    if not refusals:
        return True, "exit 75 without a refusal: " + stderr.strip()[-300:]
    for refusal in refusals:
        project, seen, required = refusal["project"], refusal["seen"], refusal["required"]
        line = f"{refusal['verdict']} {project} seen {seen} required {required}"
        if refusal["verdict"] == "FILE":
            with world.origin._lock:
                live = project in world.origin._files
            if live:
                return True, f"{line}: the file is served: {refusal['reason']}"
            continue
        changes = world.content_changes(project)
        if required is None:
            return True, f"{line}: {refusal['reason']}"
        if seen is None:
            # A cached 404: right only if the project existed as of the serial required.
            before = [action for serial, action in changes if serial <= required]
            if not before or before[-1] == "remove project":
                return True, f"{line}: the project did not exist: {refusal['reason']}"
            continue
        if not any(seen < serial <= required for serial, _ in changes):
            return True, f"{line}: no content change in between"
    return False, "; ".join(f"{r['verdict']} {r['project']}" for r in refusals)


def _mutator(
    world: _World, stop: threading.Event, rng: random.Random, every: float,
    lost: float, max_delay: float, log: Callable[[str], None],
) -> None:  # fmt: skip
    while not stop.wait(rng.uniform(0.2 * every, 1.8 * every)):
        delays: list[float | None] = [
            None if rng.random() < lost else rng.uniform(0.0, max_delay)
            for _ in range(world.cdn.edges)
        ]
        if rng.random() < lost / 2:  # the purge job failed: no edge hears of this change
            delays = [None] * world.cdn.edges
        log(f"mutate: {world.mutate(delays)}")


@dataclass
class Totals:
    installs: int = 0
    plain: int = 0
    plain_stale: int = 0
    guarded: int = 0
    guarded_stale: int = 0
    refusals: int = 0
    wrong_refusals: int = 0
    mutations: int = 0
    seconds: float = 0.0
    problems: list[dict[str, object]] = field(default_factory=list)


def run_torture(
    installs: int = 500,
    seed: int = 0,
    *,
    projects: int = 6,
    edges: int = 3,
    workers: int = 2,
    max_wait: float = 8.0,
    short_wait: float = 0.5,
    short_share: float = 0.3,
    mutate_every: float = 1.0,
    lost_purge: float = 0.2,
    max_purge_delay: float = 5.0,
    ttl: float | None = 30.0,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, object]:
    """Run the torture schedule; the counts (see the module docstring) as a dict."""
    rng = random.Random(seed)
    world = _World(random.Random(rng.randrange(2**31)), projects, edges, ttl)
    totals = Totals()
    stop = threading.Event()
    mutator = threading.Thread(
        target=_mutator,
        args=(world, stop, random.Random(rng.randrange(2**31)), mutate_every, lost_purge,
              max_purge_delay, log),
        daemon=True,
    )  # fmt: skip
    # Some safe-pip runs get a --max-wait shorter than most purge delays, so that refusals
    # happen and each can be checked against the origin's history.
    plan: list[tuple[int, Tool, str, float]] = []
    for n in range(installs):
        tool: Tool = "safe-pip" if rng.random() < 0.5 else "pip"
        wait = short_wait if rng.random() < short_share else max_wait
        plan.append((n, tool, rng.choice(world.names), wait))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="safe-pip-torture-") as tmp:
        work = Path(tmp)
        mutator.start()
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                jobs = [pool.submit(_install, world, *job[:3], work, job[3]) for job in plan]
                for job in jobs:
                    out = job.result()
                    totals.installs += 1
                    if out.tool == "pip":
                        totals.plain += 1
                        totals.plain_stale += out.stale
                    else:
                        totals.guarded += 1
                        totals.guarded_stale += out.stale
                        totals.refusals += out.refused
                        totals.wrong_refusals += out.wrong_refusal
                    if out.wrong_refusal or (out.stale and out.tool == "safe-pip"):
                        totals.problems.append(asdict(out))
                    log(
                        f"{out.number:4d} {out.tool:8s} {out.project} -> {out.resolved} "
                        f"(code {out.code}, fresh {sorted(set(map(str, out.fresh_answers)))})"
                        f"{' STALE' if out.stale else ''}{' REFUSED' if out.refused else ''}"
                        f"{' WRONG' if out.wrong_refusal else ''}"
                    )
        finally:
            stop.set()
            mutator.join()
            totals.mutations = len(world.history) - 1
            world.close()
    totals.seconds = round(time.monotonic() - t0, 1)
    return {"seed": seed, **asdict(totals)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.torture", description=__doc__)
    parser.add_argument("--installs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-wait", type=float, default=8.0)
    parser.add_argument(
        "--short-wait", type=float, default=0.5, help="the --max-wait of 30%% of safe-pip runs"
    )
    parser.add_argument("--json", metavar="FILE", help="write the counts and problems as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per event")
    args = parser.parse_args(argv)
    def log(line: str) -> None:
        if args.verbose:
            print(line, file=sys.stderr, flush=True)

    result = run_torture(
        args.installs,
        args.seed,
        workers=args.workers,
        max_wait=args.max_wait,
        short_wait=args.short_wait,
        log=log,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"installs run:                                 {result['installs']}")
    print(f"  plain pip / safe-pip:                       {result['plain']} / {result['guarded']}")
    print(f"origin changes during the run:                {result['mutations']}")
    print(f"plain pip installs that used a stale view:    {result['plain_stale']}  (baseline)")
    print(f"safe-pip installs that used a stale view:     {result['guarded_stale']}  (target 0)")
    print(f"safe-pip refusals:                            {result['refusals']}")
    print(f"refusals that were wrong:                     {result['wrong_refusals']}  (target 0)")
    print(f"seconds:                                      {result['seconds']}")
    for problem in result["problems"]:  # type: ignore[attr-defined]
        print(f"problem: {json.dumps(problem)}")
    bad = result["guarded_stale"] or result["wrong_refusals"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
