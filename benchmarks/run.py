"""The benchmark command: every row of the table, side by side with plain pip, in one run.

    python -m benchmarks [--quick] [--out DIR] [--only ROW ...]
    python -m benchmarks --index URL [--changelog URL] --only real

Starts the simulator's origin and CDN on 127.0.0.1 with 20 ms per request (unless a row says
otherwise), runs plain pip and safe-pip alternately with the same pip, and prints a Markdown
table (medians of at least 5 runs; ``--quick``: one run per row, small sizes, for the smoke
test). Writes ``results.json`` and, when matplotlib is installed (the ``bench`` extra),
``overhead.png`` (overhead against the number of projects) and, when the ``real`` and ``uv``
rows ran, ``real.png`` (wall and CPU time of pip, safe-pip, uv and ``run -- uv`` on the
real-shaped tree) to ``--out``. ``--index`` runs the real-shaped rows against a live index the
user names (never the tests).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import _rows
from benchmarks._harness import Index, byte_compile, machine
from benchmarks._rows import Row

LATENCY = 0.02
#: Where real pages come from: about 110 ms a page on the real index.
REAL_LATENCY = 0.1
HERE = Path(__file__).resolve().parent


def _plan(quick: bool) -> dict[str, Callable[[], Row | list[Row]]]:
    runs = 1 if quick else 5
    # The overhead rows compare two 2-to-4-second runs on a shared machine, where one run can
    # vary by a quarter (plain pip took 1.90 to 2.82 s within one row's nine pairs): the
    # median of 9 pairs still moved by ±0.05 from run to run, more than the 0 ms row's whole
    # margin. 21 pairs narrow it by about a third (1/sqrt(n)); the other rows take 5.
    pairs = 1 if quick else 21
    tree = 3 if quick else 30
    real_scale = 0.05 if quick else 1.0
    return {
        "overhead-20": lambda: _rows.overhead(LATENCY, size=tree, runs=pairs, warm_up=not quick),
        "overhead-0": lambda: _rows.overhead(0.0, size=tree, runs=pairs, warm_up=not quick),
        "overhead-warm": lambda: _rows.overhead(LATENCY, size=tree, runs=pairs, cache="keep"),
        "authority": lambda: _rows.authority_calls((1, 2) if quick else (1, 30, 300), 0.0),
        "recovery": lambda: _rows.recovery(LATENCY, runs),
        "memory": lambda: _rows.memory(
            5 * 2**20, (20 if quick else 500) * 2**20, 1 if quick else 3
        ),
        "check": lambda: _rows.check(20 if quick else 200, LATENCY),
        "throughput": lambda: _rows.throughput(32, 2.0 if quick else 10.0),
        "mirror": lambda: _rows.mirror_check(200 if quick else 10_000),
        # The real-shaped tree: ~25 s a plain pip run at 100 ms, so 5 pairs; the smoke test
        # lists a twentieth of its files with no latency.
        "real": lambda: _rows.real(0.0 if quick else REAL_LATENCY, runs, scale=real_scale),
        "uv": lambda: _rows.uv(0.0 if quick else REAL_LATENCY, runs, scale=real_scale),
    }


def table(rows: list[Row], described: dict[str, str]) -> str:
    head = (
        f"Machine: {described['cores']} cores, Python {described['python']}, "
        f"pip {described['pip']}, {described['os']}\n\n"
        "| row | measured | value | target | met |\n|---|---|---|---|---|\n"
    )
    marks = {True: "yes", False: "**no**", None: "—"}
    return head + "".join(
        f"| {r.name} | {r.what} | {r.value} | {r.target} | {marks[r.ok]} |\n" for r in rows
    )


def plot(curve: dict[int, dict[str, float]], path: Path, latency: float) -> bool:
    """overhead.png: the safe-pip/pip time ratio by number of projects (False: no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = sorted(curve)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(sizes, [curve[s]["ratio"] for s in sizes], marker="o", label="safe-pip / pip")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="plain pip")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("projects installed (dependency tree, empty pip cache)")
    ax.set_ylabel("wall time ratio")
    ax.set_title(f"safe-pip install vs pip install, {latency * 1000:g} ms per request")
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_real(rows: list[Row], path: Path) -> bool:
    """real.png: wall and CPU seconds (medians) of pip, safe-pip, uv and ``run -- uv`` on the
    real-shaped tree, the guard's own CPU shown apart; False without matplotlib or rows."""
    real = next((r.data for r in rows if r.name.startswith("real, ") and r.data), None)
    uv = next((r.data for r in rows if r.name == "uv, cold"), None)
    if real is None or uv is None:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False

    def med(values: object) -> float:
        return statistics.median(values)  # type: ignore[arg-type]

    names = ["pip", "safe-pip install", "uv (cold)", "safe-pip run -- uv"]
    wall = [med(real["pip_s"]), med(real["safe_pip_s"]), med(uv["uv_s"]), med(uv["safe_pip_s"])]
    tool_cpu = [med(real["pip_cpu_s"]), med(real["guarded_pip_cpu_s"]), med(uv["uv_cpu_s"]),
                med(uv["guarded_uv_cpu_s"])]
    guard_cpu = [0.0, med(real["guard_cpu_s"]), 0.0, med(uv["guard_cpu_s"])]
    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], wall, width=0.4, label="wall")
    ax.bar([i + 0.2 for i in x], tool_cpu, width=0.4, label="CPU: pip or uv")
    ax.bar([i + 0.2 for i in x], guard_cpu, width=0.4, bottom=tool_cpu, label="CPU: the guard")
    ax.set_xticks(list(x), names)
    ax.set_ylabel("seconds (median)")
    latency = float(real.get("latency", 0.0))  # type: ignore[arg-type]
    scale = float(real.get("scale", 1.0))  # type: ignore[arg-type]
    tree = "102 pages, 32,013 files" if scale == 1.0 else f"{scale:g} of its files"
    ax.set_title(f"real-shaped tree ({tree}), {latency * 1000:g} ms per request")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="one run per row, small sizes")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.json and the PNG go")
    parser.add_argument(
        "--only",
        nargs="*",
        metavar="ROW",
        choices=list(_plan(False)),
        help=f"run only these rows (no curve): {', '.join(_plan(False))}",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the overhead curve")
    parser.add_argument(
        "--index",
        metavar="URL",
        help="run the real rows against this live simple index instead of the simulator "
        "(the recorded shape's requirements; only with --only real)",
    )
    parser.add_argument(
        "--changelog", metavar="URL", help="with --index: the index's changelog (XML-RPC)"
    )
    args = parser.parse_args(argv)
    plan = _plan(args.quick)
    if args.index:
        if args.only != ["real"]:
            parser.error("--index runs the real rows only: add --only real")
        index = Index(args.index, args.changelog)
        plan = {"real": lambda: _rows.real(0.0, 1 if args.quick else 5, index=index)}
    args.out.mkdir(parents=True, exist_ok=True)
    byte_compile()
    described = machine()
    print(f"safe-pip benchmarks on {described}", file=sys.stderr, flush=True)
    rows: list[Row] = []
    for name, measure in plan.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        measured = measure()
        for row in measured if isinstance(measured, list) else [measured]:
            print(f"  {row.name}: {row.value} ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr, flush=True)
            rows.append(row)
    results: dict[str, object] = {"machine": described, "rows": [asdict(r) for r in rows]}
    if not args.no_plot and not args.only:
        sizes = (1, 2) if args.quick else (1, 10, 30, 100, 300)
        curve = _rows.overhead_curve(LATENCY, sizes, 1 if args.quick else 2)
        results["curve"] = {str(k): v for k, v in curve.items()}
        drawn = plot(curve, args.out / "overhead.png", LATENCY)
        print(f"  curve: {'overhead.png written' if drawn else 'not drawn (no matplotlib)'}: "
              + ", ".join(f"{s}: {v['ratio']:.2f}" for s, v in curve.items()), file=sys.stderr)
    if not args.no_plot and plot_real(rows, args.out / "real.png"):
        print("  real.png written", file=sys.stderr)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(rows, described))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
