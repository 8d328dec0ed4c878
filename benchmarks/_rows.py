"""One function per row of the table: each measures side by side and says how it did."""

from __future__ import annotations

import contextlib
import importlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from benchmarks._harness import (
    Index,
    Outcome,
    Side,
    World,
    alternate,
    live_requirements,
    median_ratio,
    publish_real_tree,
    publish_tree,
    run_cmd,
    sides,
    world,
)


@dataclass
class Row:
    name: str
    what: str
    value: str
    target: str
    ok: bool | None  # None: not measured
    data: dict[str, object] = field(default_factory=dict)


def overhead(
    latency: float, *, size: int, runs: int, cache: str = "none", warm_up: bool = True
) -> Row:
    """safe-pip install vs pip install of one tree, alternating; median of the pair ratios."""
    with world(latency) as w, sides() as (plain, guarded):
        root = publish_tree(w.origin, size)
        if warm_up or cache != "none":
            # Untimed first round: fills the CDN for both (with cache="keep", pip's caches;
            # for safe-pip, its journal summary, as on any machine that used it before).
            plain.install(w, [root], cache=cache)
            guarded.install(w, [root], cache=cache)
        pip_runs, safe_runs = alternate(runs, plain, guarded, w, [root], cache=cache)
    a = [o.seconds for o in pip_runs]
    b = [o.seconds for o in safe_runs]
    ratio = median_ratio(a, b)
    cpu, cpu_text = _cpu(pip_runs, safe_runs)
    warm = cache != "none"
    if warm:
        limit = 1.05
    elif latency == 0:
        # Nothing to gain from prefetching at 0 ms, and pip's own parser, which reads pip's
        # options before pip starts, costs about 0.2 s of importing pip.
        limit = 1.10
    else:
        limit = 1.00
    return Row(
        f"overhead, {'warm' if warm else f'{latency * 1000:g} ms'}",
        f"{size} projects, {'warm pip cache both' if warm else 'empty pip cache both'}, "
        f"{latency * 1000:g} ms/request; pip {statistics.median(a):.2f} s, "
        f"safe-pip {statistics.median(b):.2f} s; {cpu_text}",
        f"{ratio:.2f}",
        f"{'≤' if limit > 1 else '<'} {limit:.2f}",
        ratio <= limit if limit > 1 else ratio < limit,
        {"pip_s": a, "safe_pip_s": b, "ratio": ratio, "size": size, "latency": latency, **cpu},
    )


def _cpu(
    pip_runs: Sequence[Outcome], safe_runs: Sequence[Outcome]
) -> tuple[dict[str, list[float]], str]:
    """The CPU figures of side-by-side runs: plain pip's (the whole tree), the guard's own
    (the safe-pip process, its pip left out) and its pip's; medians in a line of text."""
    data = {
        "pip_cpu_s": [o.tree_cpu_s for o in pip_runs],
        "guard_cpu_s": [o.own_cpu_s for o in safe_runs],
        "guarded_pip_cpu_s": [o.tree_cpu_s - o.own_cpu_s for o in safe_runs],
    }
    pip, guard, inner = (statistics.median(v) for v in data.values())
    return data, f"CPU: pip {pip:.2f} s, guard {guard:.2f} s (its pip {inner:.2f} s)"


def _share(scale: float) -> str:
    return "" if scale == 1 else f" ({scale:g} of its files)"


def _median_pair_ratio(pairs: Sequence[tuple[float, float]]) -> float:
    return statistics.median(b / a for a, b in pairs) if all(a > 0 for a, _ in pairs) else 0.0


def real(
    latency: float, runs: int, *, scale: float = 1.0, index: Index | None = None
) -> list[Row]:
    """A real-shaped resolution (``benchmarks/real_shape.json``): ``install --dry-run``
    through safe-pip vs pip, alternating; wall time, the guard's CPU beside pip's, and the
    guard's peak RSS.

    Guard CPU is the safe-pip process's own user+sys time (every thread of it: proxy, page
    checks, prefetching), its pip child left out; pip's CPU is the plain pip run's. Both are
    read when the process ends (``run_cmd(cpu=True)``); the ratio is the median of pairs.

    ``index``: resolve the recorded requirements on that live index instead (the latency is
    the index's own).
    """
    options = ["--dry-run", "--ignore-installed"]
    here: contextlib.AbstractContextManager[World] = world(latency)
    if index is not None:
        here = contextlib.nullcontext(World(None, index, 0.0))  # type: ignore[arg-type]
    with here as w, sides() as (plain, guarded):
        roots = live_requirements() if index else publish_real_tree(w.origin, scale=scale)
        reqs = [*options, *roots]
        # Untimed: fills the CDN (every page variant safe-pip reads) and safe-pip's state.
        plain.install(w, reqs)
        guarded.install(w, reqs)
        pip_runs: list[Outcome] = []
        safe_runs: list[Outcome] = []
        for i in range(runs):
            order = (plain, guarded) if i % 2 == 0 else (guarded, plain)
            for side in order:
                outcome = side.install(w, reqs, watch_rss=side.guarded, cpu=True)
                (safe_runs if side.guarded else pip_runs).append(outcome)
    wall = median_ratio([o.seconds for o in pip_runs], [o.seconds for o in safe_runs])
    pairs = list(zip(pip_runs, safe_runs, strict=True))
    cpu = _median_pair_ratio([(p.tree_cpu_s, g.own_cpu_s) for p, g in pairs])
    rss = statistics.median(o.peak_rss_kb for o in safe_runs) / 1024
    cpu_data, cpu_text = _cpu(pip_runs, safe_runs)
    ms = f"{latency * 1000:g} ms" if index is None else "live"
    data: dict[str, object] = {
        "pip_s": [o.seconds for o in pip_runs],
        "safe_pip_s": [o.seconds for o in safe_runs],
        **cpu_data,
        "guard_peak_rss_mb": [o.peak_rss_kb / 1024 for o in safe_runs],
        "ratio": wall,
        "cpu_ratio": cpu,
        "latency": latency,
        "scale": scale,
    }
    what = f"real-shaped tree{_share(scale)}, --dry-run, {ms}/request"
    if index is not None:
        what = f"{' '.join(roots)} on {index.simple_url}, --dry-run"
    return [
        Row(
            f"real, {ms}",
            f"{what}; pip {statistics.median(data['pip_s']):.2f} s, "  # type: ignore[arg-type]
            f"safe-pip {statistics.median(data['safe_pip_s']):.2f} s",  # type: ignore[arg-type]
            f"{wall:.2f}",
            "≤ 0.35",
            wall <= 0.35,
            data,
        ),
        Row(
            "real, guard CPU",
            f"{what}; {cpu_text}",
            f"{cpu:.2f}",
            "≤ 0.30",
            cpu <= 0.30,
        ),
        Row(
            "real, guard memory",
            f"{what}; the safe-pip process's peak RSS (VmHWM)",
            f"{rss:.0f} MB",
            "≤ 80 MB",
            rss <= 80,
        ),
    ]


def uv(latency: float, runs: int, *, scale: float = 1.0) -> list[Row]:
    """``safe-pip run -- uv pip install`` vs ``uv pip install`` of the real-shaped tree, with
    an empty uv cache (each side's own, emptied before every run) and with it warm."""
    rows = []
    with world(latency) as w, sides() as (plain, guarded):
        roots = publish_real_tree(w.origin, scale=scale)
        for cache, limit in (("none", 1.15), ("keep", 1.25)):
            # Untimed: fills the CDN and safe-pip's state (and, for "keep", both caches).
            plain.uv_install(w, roots, cache=cache)
            guarded.uv_install(w, roots, cache=cache)
            a: list[Outcome] = []
            b: list[Outcome] = []
            for i in range(runs):
                order = (plain, guarded) if i % 2 == 0 else (guarded, plain)
                for side in order:
                    (b if side.guarded else a).append(side.uv_install(w, roots, cache=cache))
            ratio = median_ratio([o.seconds for o in a], [o.seconds for o in b])
            warm = cache == "keep"
            uv_s = statistics.median(o.seconds for o in a)
            rows.append(
                Row(
                    f"uv, {'warm' if warm else 'cold'}",
                    f"real-shaped tree{_share(scale)}, `safe-pip run -- uv pip install`"
                    f" vs `uv pip install`, {'warm' if warm else 'empty'} uv cache, "
                    f"{latency * 1000:g} ms/request; uv {uv_s:.2f} s, "
                    f"safe-pip run {statistics.median(o.seconds for o in b):.2f} s "
                    f"(guard CPU {statistics.median(o.own_cpu_s for o in b):.2f} s)",
                    f"{ratio:.2f}",
                    f"≤ {limit:.2f}",
                    ratio <= limit,
                    {
                        "uv_s": [o.seconds for o in a],
                        "safe_pip_s": [o.seconds for o in b],
                        "uv_cpu_s": [o.tree_cpu_s for o in a],
                        "guard_cpu_s": [o.own_cpu_s for o in b],
                        "guarded_uv_cpu_s": [o.tree_cpu_s - o.own_cpu_s for o in b],
                        "ratio": ratio,
                        "latency": latency,
                    },
                )
            )
    return rows


def overhead_curve(latency: float, sizes: Sequence[int], runs: int) -> dict[int, dict[str, float]]:
    """Ratio and medians for each tree size (the plot)."""
    curve: dict[int, dict[str, float]] = {}
    with world(latency) as w, sides() as (plain, guarded):
        for size in sizes:
            root = publish_tree(w.origin, size, tag=f"-n{size}")
            plain.install(w, [root])
            guarded.install(w, [root])
            pip_runs, safe_runs = alternate(runs, plain, guarded, w, [root])
            a = [o.seconds for o in pip_runs]
            b = [o.seconds for o in safe_runs]
            curve[size] = {
                "ratio": median_ratio(a, b),
                "pip_s": statistics.median(a),
                "safe_pip_s": statistics.median(b),
            }
    return curve


def _changelog_calls(report: dict[str, object]) -> int:
    calls = report.get("authority_calls", [])
    assert isinstance(calls, list)
    return sum(1 for c in calls if c.get("authority") == "changelog")


def authority_calls(sizes: Sequence[int], latency: float) -> Row:
    """Changelog calls per install, cold (empty state dir) then warm (the same state dir)."""
    counts: dict[int, tuple[int, int]] = {}
    with world(latency) as w:
        for size in sizes:
            root = publish_tree(w.origin, size, tag=f"-a{size}")
            with sides() as (_, guarded):
                cold = _changelog_calls(guarded.install(w, [root], report=True).report)
                w.origin.publish(f"unrelated-{size}", "1.0")  # the journal moved on meanwhile
                warm = _changelog_calls(guarded.install(w, [root], report=True).report)
            counts[size] = (cold, warm)
    ok = all(c <= 2 and h <= 1 for c, h in counts.values())
    shown = ", ".join(f"{s}: {c}/{h}" for s, (c, h) in counts.items())
    return Row(
        "authority calls",
        f"changelog calls per install, cold/warm, by number of projects ({latency * 1000:g} ms)",
        shown,
        "≤ 2 cold, ≤ 1 warm",
        ok,
        {str(s): {"cold": c, "warm": h} for s, (c, h) in counts.items()},
    )


def _warm_cdn(w: World, project: str) -> None:
    """Fill every variant of a page on every edge (each edge pinned in turn)."""
    accepts = (
        "application/vnd.pypi.simple.v1+json",
        "application/vnd.pypi.simple.v1+html",
        "text/html",
    )
    for edge in range(w.cdn.edges):
        w.cdn.pin(edge)
        for accept in accepts:
            for enc in ("gzip", "identity"):
                headers = {"Accept": accept, "Accept-Encoding": enc}
                url = f"{w.cdn.simple_url}{project}/"
                requests.get(url, headers=headers, timeout=30).raise_for_status()
    w.cdn.pin(None)


def recovery(latency: float, runs: int) -> Row:
    """Seconds from the purge reaching the last edge to the guard accepting the fresh page.

    A release is published while every edge holds the old page; safe-pip starts at once and
    waits it out. The purge delay varies from run to run so that it falls at different
    points of the guard's backoff.
    """
    delays = [1.0 + 0.37 * i for i in range(runs)]
    waits: list[float] = []
    with world(latency, edges=2) as w, sides() as (_, guarded), tempfile.TemporaryDirectory() as d:
        for i, delay in enumerate(delays):
            name = f"recover-{i}"
            w.origin.publish(name, "1.0")
            _warm_cdn(w, name)
            w.cdn.set_purge_delays([delay] * w.cdn.edges)
            w.origin.publish(name, "2.0")
            last_edge = time.time() + delay
            report = Path(d) / f"r{i}.json"
            argv = guarded.command(
                w, "download", ["--no-deps", "-d", str(Path(d) / f"dl{i}"), f"{name}>=2.0"],
                report=report,
            )
            outcome = run_cmd(argv, guarded.env)
            if outcome.returncode != 0:
                raise RuntimeError(f"recovery run failed:\n{outcome.stderr}")
            pages = json.loads(report.read_text())["pages"]
            accepted = max(p["finished_at"] for p in pages if p["project"] == name)
            waits.append(accepted - last_edge)
    median = statistics.median(waits)
    return Row(
        "recovery",
        f"purge reaching the last of 2 edges → safe-pip going on ({latency * 1000:g} ms)",
        f"{median:.2f} s",
        "≤ 0.5 s",
        median <= 0.5,
        {"seconds": waits, "purge_delays": delays},
    )


def memory(small: int, big: int, runs: int) -> Row:
    """The safe-pip process's own peak RSS (VmHWM) while streaming a small and a big wheel."""
    peaks: dict[int, list[int]] = {small: [], big: []}
    with world(0.0) as w, sides() as (_, guarded), tempfile.TemporaryDirectory() as d:
        for size in (small, big):
            w.origin.publish(f"payload-{size}", "1.0", payload_size=size)
        for i in range(runs):
            for size in (small, big):
                target = Path(d) / f"dl-{size}-{i}"
                args = ["--no-deps", "-d", str(target), f"payload-{size}"]
                argv = guarded.command(w, "download", args)
                outcome = run_cmd(argv, guarded.env, watch_rss=True)
                if outcome.returncode != 0:
                    raise RuntimeError(f"memory run failed:\n{outcome.stderr}")
                peaks[size].append(outcome.peak_rss_kb)
                for child in target.iterdir():
                    child.unlink()
    mb = {size: statistics.median(v) / 1024 for size, v in peaks.items()}
    ok = mb[big] <= 80 and mb[big] - mb[small] <= 10
    return Row(
        "memory",
        f"guard peak RSS streaming a {big // 2**20} MB vs a {small // 2**20} MB wheel",
        f"{mb[big]:.0f} MB vs {mb[small]:.0f} MB",
        "flat, ≤ 80 MB",
        ok,
        {"peak_rss_mb": {str(k): v for k, v in mb.items()}},
    )


def _optional(module: str, function: str) -> Callable[..., dict[str, object]] | None:
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    return getattr(found, function, None)


def check(pins: int, latency: float) -> Row:
    run = _optional("benchmarks.bench_check", "run_check_benchmark")
    if run is None:
        return Row("check", f"safe-pip check of {pins} pins", "not measured (module missing)",
                   "< 3 s", None)
    result = run(pins=pins, latency=latency)
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    good = result.get("exit_code") in (0, 1) and seconds < 3.0
    return Row("check", f"safe-pip check of {pins} pins ({latency * 1000:g} ms)",
               f"{seconds:.2f} s", "< 3 s", good, result)


def mirror_check(projects: int) -> Row:
    run = _optional("benchmarks.bench_mirror", "run_mirror_benchmark")
    what = f"safe-pip mirror-check --all of a local mirror of {projects:,} projects (0 ms)"
    if run is None:
        return Row("mirror-check", what, "not measured (module missing)", "≥ 167/s", None)
    result = run(projects=projects)
    rate = float(result["projects_per_second"])  # type: ignore[arg-type]
    good = result.get("exit_code") == 1 and result.get("findings") == result.get("behind")
    good = good and rate >= 10_000 / 60
    return Row("mirror-check", what + f"; {float(result['seconds']):.1f} s",  # type: ignore[arg-type]
               f"{rate:,.0f} projects/s", "≥ 167/s (10,000 in a minute)", good, result)


def throughput(clients: int, seconds: float) -> list[Row]:
    run = _optional("benchmarks.bench_serve", "run_throughput_benchmark")
    if run is None:
        return [Row("throughput", f"pages/s to {clients} clients",
                    "not measured (module missing)", "≥ 1,000/s", None)]
    result = run(clients=clients, seconds=seconds)
    rate = float(result["pages_per_second"])  # type: ignore[arg-type]
    good = rate >= 1000 and not result.get("errors")
    rows = [Row("throughput", f"pages/s `safe-pip serve` gives {clients} clients, cached-fresh",
                f"{rate:,.0f}/s", "≥ 1,000/s", good, result)]
    standard: dict[str, dict[str, object] | None] = result["standard"]  # type: ignore[assignment]
    for tool, found in standard.items():
        name = f"throughput, {tool}"
        if found is None:
            rows.append(Row(name, f"{tool} is not installed", "not measured", "≥ 1,000/s", None))
            continue
        rate = float(found["pages_per_second"])  # type: ignore[arg-type]
        errors = int(found["errors"])  # type: ignore[call-overload]
        rows.append(Row(name, f"the same server, {found['client']}, {clients} clients"
                        + (f"; {errors} errors" if errors else ""),
                        f"{rate:,.0f}/s", "≥ 1,000/s", rate >= 1000 and not errors, found))
    return rows


__all__ = ["Row", "Side", "authority_calls", "check", "memory", "mirror_check", "overhead",
           "overhead_curve", "real", "recovery", "throughput", "uv"]
