"""The benchmark command's smoke mode, so the benchmark code cannot rot (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROWS = {
    "overhead, 20 ms",
    "overhead, 0 ms",
    "overhead, warm",
    "authority calls",
    "recovery",
    "memory",
    "check",
    "throughput",
    "throughput, wrk",  # "not measured" rows where wrk or ab is not installed
    "throughput, ab",
    "mirror-check",
    "real, 0 ms",  # --quick: the real-shaped tree's smaller version, with no latency
    "real, guard CPU",
    "real, guard memory",
    "uv, cold",
    "uv, warm",
}


def test_quick_benchmark_measures_every_row(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["name"]: row for row in results["rows"]}
    assert set(rows) == ROWS
    assert results["machine"]["cores"] and results["machine"]["pip"] != "unknown"
    assert rows["authority calls"]["ok"] is True  # counts, not timings: bounded at any speed
    for name in ("overhead, 20 ms", "overhead, 0 ms", "overhead, warm", "uv, cold", "uv, warm"):
        assert rows[name]["data"]["ratio"] > 0
    real = rows["real, 0 ms"]["data"]
    assert real["ratio"] > 0 and real["cpu_ratio"] > 0
    assert min(real["guard_cpu_s"]) > 0 and min(real["guard_peak_rss_mb"]) > 0
    assert set(results["curve"]) == {"1", "2"}
    assert "| recovery |" in proc.stdout and "| memory |" in proc.stdout


def test_the_real_plot_needs_both_rows_and_draws_wall_and_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # the benchmarks are not installed
    from benchmarks.run import Row, plot_real

    real = Row("real, 100 ms", "", "0.2", "", True, {
        "pip_s": [20.0], "safe_pip_s": [4.0], "pip_cpu_s": [2.4], "guard_cpu_s": [1.0],
        "guarded_pip_cpu_s": [2.0], "latency": 0.1, "scale": 1.0,
    })  # fmt: skip
    uv = Row("uv, cold", "", "1.5", "", False, {
        "uv_s": [1.8], "safe_pip_s": [2.8], "uv_cpu_s": [0.5], "guard_cpu_s": [1.3],
        "guarded_uv_cpu_s": [0.5], "latency": 0.1,
    })  # fmt: skip
    assert plot_real([real], tmp_path / "real.png") is False  # no uv row: nothing to compare
    assert not (tmp_path / "real.png").exists()
    pytest.importorskip("matplotlib")
    assert plot_real([real, uv], tmp_path / "real.png") is True
    assert (tmp_path / "real.png").read_bytes().startswith(b"\x89PNG")
