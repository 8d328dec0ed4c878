"""Benchmark: ``safe-pip check`` of 200 hashed pins, every request to the index taking 20 ms.

The index is the simulator on 127.0.0.1 in this process: an origin (``Origin(latency=...)``,
the latency added to every page, changelog and file request) behind a caching CDN. The check
runs as ``python -m safe_pip`` in its own process, as in CI, with a fresh state directory (a
cold run: the changelog is read from scratch) and pip's configuration ignored. The figure is
the wall time of that process, interpreter start-up included. Target: under 3 s.

Importing this module starts nothing; ``run_check_benchmark()`` does the work.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safe_pip.testing import CDN, Origin

TARGET_SECONDS = 3.0


def run_check_benchmark(pins: int = 200, latency: float = 0.02) -> dict[str, object]:
    """Check ``pins`` pinned, hashed requirements; return the figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="safe-pip-bench-check-") as tmp:
        work = Path(tmp)
        with Origin() as origin, CDN(origin, edges=2) as cdn:
            lines = []
            for i in range(pins):
                name = f"bench-check-{i:03d}"
                origin.publish(name, "1.0")
                origin.publish(name, "1.1")
                data = origin.file_bytes(f"bench_check_{i:03d}-1.1-py3-none-any.whl")
                lines.append(f"{name}==1.1 --hash=sha256:{hashlib.sha256(data).hexdigest()}")
            requirements = work / "requirements.txt"
            requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")
            origin.latency = latency  # only the check pays it, not the set-up
            cdn.latency = 0.0
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("PIP_", "SAFE_PIP_"))
            }
            env.update(
                PIP_CONFIG_FILE=os.devnull,
                PIP_DISABLE_PIP_VERSION_CHECK="1",
                SAFE_PIP_STATE_DIR=str(work / "state"),
            )
            argv = [
                sys.executable, "-m", "safe_pip", "--changelog", cdn.changelog_url,
                "check", "--format", "json", "--index-url", cdn.simple_url, str(requirements),
            ]
            started = time.perf_counter()
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=600, check=False
            )
            seconds = time.perf_counter() - started
            changelog_calls = sum(origin.calls.values())
            requests_to_cdn = cdn.hits + cdn.misses
    findings = None
    if proc.returncode in (0, 1) and proc.stdout.strip():
        findings = len(json.loads(proc.stdout)["findings"])
    return {
        "benchmark": "check",
        "pins": pins,
        "latency_s": latency,
        "seconds": round(seconds, 3),
        "target_s": TARGET_SECONDS,
        "within_target": seconds < TARGET_SECONDS,
        "exit_code": proc.returncode,
        "findings": findings,
        "page_requests": requests_to_cdn,
        "changelog_calls": changelog_calls,
        "stderr_tail": proc.stderr.strip().splitlines()[-3:] if findings is None else [],
    }


if __name__ == "__main__":
    result = run_check_benchmark()
    print(json.dumps(result, indent=2))
    print(
        f"safe-pip check: {result['pins']} pins at {result['latency_s']:g} s per request: "
        f"{result['seconds']:.2f} s (target < {TARGET_SECONDS:g} s)"
    )
