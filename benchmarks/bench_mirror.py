"""Benchmark: ``safe-pip mirror-check --all`` of a local mirror of 10,000 projects.

The index (an origin with its changelog) and the mirror (``safe_pip.testing.Mirror``, a
bandersnatch-style copy, one project in a hundred left behind) run in this process on
127.0.0.1 with no added latency, as a mirror on the same network would answer. The check runs
as ``python -m safe_pip`` in its own process, with pip's configuration ignored. The figure is
projects checked per second of that process's wall time, start-up included. Target: 10,000
projects in under a minute (about 167 a second) on two cores.

Importing this module starts nothing; ``run_mirror_benchmark()`` does the work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from safe_pip.testing import Mirror, Origin

TARGET_PER_SECOND = 10_000 / 60


def run_mirror_benchmark(projects: int = 10_000, jobs: int = 8) -> dict[str, object]:
    """Check a mirror of ``projects`` projects; return the figures as a dict."""
    with Origin() as origin, Mirror(origin) as mirror:
        for number in range(projects):
            origin.publish(f"bench-mirror-{number:05d}", "1.0")
        mirror.sync()
        behind = [f"bench-mirror-{n:05d}" for n in range(0, projects, 100)]
        for name in behind:
            origin.publish(name, "1.1")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PIP_", "SAFE_PIP_"))
        }
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
        argv = [
            sys.executable, "-m", "safe_pip", "--changelog", origin.upstream_changelog_url,
            "mirror-check", "--all", "--jobs", str(jobs), "--format", "json",
            mirror.simple_url,
        ]
        started = time.perf_counter()
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        seconds = time.perf_counter() - started
        changelog_calls = sum(origin.calls.values())
        pages = mirror.pages_served
    findings = checked = None
    if proc.returncode in (0, 1) and proc.stdout.strip():
        document = json.loads(proc.stdout)
        findings, checked = len(document["findings"]), document["projects"]
    rate = projects / seconds if seconds else 0.0
    return {
        "benchmark": "mirror-check",
        "projects": projects,
        "jobs": jobs,
        "seconds": round(seconds, 3),
        "projects_per_second": round(rate, 1),
        "target_per_second": round(TARGET_PER_SECOND, 1),
        "within_target": rate >= TARGET_PER_SECOND,
        "exit_code": proc.returncode,
        "checked": checked,
        "findings": findings,
        "behind": len(behind),
        "pages_served": pages,
        "changelog_calls": changelog_calls,
        "stderr_tail": proc.stderr.strip().splitlines()[-3:],
    }


if __name__ == "__main__":
    result = run_mirror_benchmark()
    print(json.dumps(result, indent=2))
