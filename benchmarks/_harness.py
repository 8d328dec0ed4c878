"""What every benchmark row shares: a dependency tree on the simulator, and pip run side by side.

Plain pip and ``safe-pip`` are always run by the same interpreter (so the same pip) against
the same CDN, alternating, so that drift in the machine's load hits both sides alike; a row
reports the median of the ratios.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from safe_pip.testing import CDN, Origin

#: Every project of a benchmark tree is named ``bench-NNN``; ``bench-000`` is the root.
PREFIX = "bench-"
#: Each project of a tree has this many releases, so pages list several files, as real ones do.
VERSIONS = ("1.0", "1.1", "2.0")
#: Children per project: a tree of 30 is four levels deep, one of 300 six.
FANOUT = 3


def project_name(i: int) -> str:
    return f"{PREFIX}{i:03d}"


def publish_tree(origin: Origin, size: int, *, tag: str = "") -> str:
    """Publish ``size`` projects where project i requires its ``FANOUT`` children; the root.

    ``tag`` makes the names of one tree distinct from another's on the same origin.
    """
    names = [f"{project_name(i)}{tag}" for i in range(size)]
    for i in range(size - 1, -1, -1):
        children = [names[c] for c in range(i * FANOUT + 1, min(size, i * FANOUT + 1 + FANOUT))]
        for version in VERSIONS:
            origin.publish(names[i], version, requires=[f"{c}>=1.0" for c in children])
    return names[0]


#: A real resolution's shape: projects, their dependencies, releases and files per page.
REAL_SHAPE = Path(__file__).resolve().parent / "real_shape.json"
#: Wheel tags listed beside each release's own ``py3-none-any`` wheel, platform by platform,
#: each for every Python (so CPython 3.8 to 3.14 on x86-64 Linux come first, as a compiled
#: project's page lists them).
_PYTHONS = ("cp38-cp38", "cp39-cp39", "cp310-cp310", "cp311-cp311", "cp312-cp312",
            "cp313-cp313", "cp313-cp313t", "cp314-cp314", "cp314-cp314t", "pp39-pypy39_pp73",
            "pp310-pypy310_pp73", "pp311-pypy311_pp73")
_PLATFORMS = ("manylinux_2_17_x86_64.manylinux2014_x86_64",
              "manylinux_2_17_aarch64.manylinux2014_aarch64", "musllinux_1_2_x86_64",
              "musllinux_1_2_aarch64", "macosx_10_12_x86_64", "macosx_11_0_arm64", "win_amd64",
              "win32", "win_arm64", "manylinux_2_17_i686.manylinux2014_i686",
              "manylinux_2_17_ppc64le.manylinux2014_ppc64le",
              "manylinux_2_17_s390x.manylinux2014_s390x", "musllinux_1_2_i686",
              "manylinux_2_31_armv7l", "musllinux_1_2_armv7l")
WHEEL_TAGS = ("py2.py3-none-any",) + tuple(f"{py}-{plat}" for plat in _PLATFORMS for py in _PYTHONS)


def publish_real_tree(origin: Origin, *, scale: float = 1.0, shape: Path = REAL_SHAPE) -> list[str]:
    """Publish every project of a recorded shape; the roots to install.

    Each project gets its recorded number of releases (``1.0`` to ``1.N``, newest last) and
    of files, spread over the releases (the newest get one more); every release requires
    the project's dependencies. Only the first wheel of a release is built; the others are
    listed with ``Origin.add_wheels``. ``scale`` < 1 lists that share of the files (the
    smoke test's small version of the same tree).
    """
    recorded = json.loads(shape.read_text(encoding="utf-8"))
    projects: dict[str, tuple[int, int, list[str]]] = recorded["projects"]
    for name, (all_releases, all_files, deps) in projects.items():
        files = max(1, round(all_files * scale))
        releases = min(all_releases, files)
        per_release, extra = divmod(files, releases)
        requires = [f"{dep}>=1.0" for dep in deps]
        for i in range(releases):
            version = f"1.{i}"
            count = per_release + (1 if i >= releases - extra else 0)
            if count > len(WHEEL_TAGS) + 1:
                raise ValueError(f"{name}: {count} files a release, more than the tags known")
            origin.publish(name, version, requires=requires, requires_python=">=3.8")
            origin.add_wheels(name, version, WHEEL_TAGS[: count - 1])
    return list(recorded["roots"])


@dataclass
class Index:
    """A live index named by the user (``python -m benchmarks --index URL``): its simple URL
    and, if given, its changelog; never used by the tests."""

    simple_url: str
    changelog_url: str | None = None


@dataclass
class World:
    """An origin and a CDN in front of it, both with the same latency per request; or, for
    ``--index``, a live index and no origin."""

    origin: Origin
    cdn: CDN | Index
    latency: float


def live_requirements(shape: Path = REAL_SHAPE) -> list[str]:
    """What the recorded shape was resolved from, to resolve it again on a live index."""
    return list(json.loads(shape.read_text(encoding="utf-8"))["requirements"])


@contextmanager
def world(latency: float, **cdn_options: object) -> Iterator[World]:
    """Origin and CDN on 127.0.0.1; ``latency`` is added by each (a CDN miss pays it twice)."""
    with Origin(latency=latency) as origin, CDN(origin, latency=latency, **cdn_options) as cdn:  # type: ignore[arg-type]
        yield World(origin, cdn, latency)


def base_env(home: Path) -> dict[str, str]:
    """The environment both sides run in: no user configuration, state and caches in ``home``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "SAFE_PIP_", "UV_"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        HOME=str(home),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        SAFE_PIP_STATE_DIR=str(home / "safe-pip-state"),
    )
    return env


@dataclass
class Outcome:
    seconds: float
    returncode: int
    stderr: str
    report: dict[str, object] = field(default_factory=dict)
    peak_rss_kb: int = 0
    #: user+sys seconds of the whole process tree (the process and the children it waited
    #: for: for safe-pip, the guard and its pip) and of the top process alone (for safe-pip,
    #: the guard without its pip); 0 unless asked for with ``cpu=True``.
    tree_cpu_s: float = 0.0
    own_cpu_s: float = 0.0


def _peak_rss_watcher(pid: int, peak: list[int], done: threading.Event) -> None:
    """Read ``VmHWM`` (the process's own peak RSS) until it exits; Linux only."""
    path = f"/proc/{pid}/status"
    while not done.is_set():
        try:
            with open(path, encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
        except (OSError, ValueError):
            return
        done.wait(0.01)


def _own_cpu(pid: int) -> float:
    """user+sys seconds of one process, its children left out (``/proc/PID/stat`` fields 14
    and 15); read while it is a zombie, they are final. Linux only; 0 elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cmd(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    watch_rss: bool = False,
    cpu: bool = False,
    timeout: float = 900,
) -> Outcome:
    """Run one command to its end; wall seconds, optionally its own peak RSS and its CPU.

    ``cpu``: the exit is awaited without reaping (``waitid(WNOWAIT)``), so the process's own
    final CPU times can be read from ``/proc`` before ``wait4`` reaps it and gives the tree's.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=errors)
        peak = [0]
        done = threading.Event()
        watcher = None
        if watch_rss:
            watcher = threading.Thread(target=_peak_rss_watcher, args=(proc.pid, peak, done))
            watcher.start()
        tree = own = 0.0
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            if cpu:
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
                seconds = time.perf_counter() - t0
                own = _own_cpu(proc.pid)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                tree = usage.ru_utime + usage.ru_stime
            else:
                proc.wait()
                seconds = time.perf_counter() - t0
        finally:
            killer.cancel()
            done.set()
            if watcher is not None:
                watcher.join()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    return Outcome(
        seconds, proc.returncode, stderr, peak_rss_kb=peak[0], tree_cpu_s=tree, own_cpu_s=own
    )


class Side:
    """One side of a comparison: plain pip or safe-pip, with its own target and cache dirs."""

    def __init__(self, name: str, scratch: Path, env: dict[str, str], guarded: bool) -> None:
        self.name = name
        self.scratch = scratch
        self.env = env
        self.guarded = guarded
        self.runs = 0

    def command(
        self, w: World, pip_command: str, args: Sequence[str], *, report: Path | None = None
    ) -> list[str]:
        pip_args = [pip_command, "--index-url", w.cdn.simple_url, *args]
        if not self.guarded:
            return [sys.executable, "-m", "pip", *pip_args]
        changelog = w.cdn.changelog_url
        guard = ["--changelog", changelog] if changelog else []
        if report is not None:
            guard += ["--guard-report", str(report)]
        return [sys.executable, "-m", "safe_pip", *guard, *pip_args]

    def install(
        self,
        w: World,
        requirements: Sequence[str],
        *,
        cache: str = "none",
        report: bool = False,
        **kw: bool,
    ) -> Outcome:
        """``install --target`` a fresh directory; ``cache`` is "none" or "keep" (own dir).

        ``report``: safe-pip also writes its guard report (read into ``Outcome.report``); the
        timed rows leave it out, as a plain ``safe-pip install`` does.

        "none" empties safe-pip's verified-file cache too: a cold install downloads every
        file on both sides. safe-pip's state (serials, journal summary) is kept, as on any
        machine that used it before.
        """
        self.runs += 1
        if cache == "none" and self.guarded:
            shutil.rmtree(self.scratch / "cache" / "safe-pip" / "files", ignore_errors=True)
        target = self.scratch / f"target-{self.runs}"
        cache_args = (
            ["--no-cache-dir"] if cache == "none" else ["--cache-dir", str(self.scratch / "cache")]
        )
        report_file = self.scratch / f"report-{self.runs}.json" if self.guarded and report else None
        argv = self.command(
            w, "install", ["--target", str(target), *cache_args, *requirements], report=report_file
        )
        outcome = run_cmd(argv, self.env, **kw)
        shutil.rmtree(target, ignore_errors=True)
        if outcome.returncode != 0:
            raise RuntimeError(f"{self.name} failed (exit {outcome.returncode}):\n{outcome.stderr}")
        if report_file is not None and report_file.exists():
            outcome.report = json.loads(report_file.read_text(encoding="utf-8"))
        return outcome

    def uv_install(self, w: World, requirements: Sequence[str], *, cache: str = "none") -> Outcome:
        """``uv pip install --target`` a fresh directory, through ``safe-pip run`` on the
        guarded side; ``cache`` "none" starts from an empty uv cache (and, for safe-pip, an
        empty verified-file cache), "keep" keeps both. CPU is measured as for ``install``."""
        self.runs += 1
        uv_cache = self.scratch / "uv-cache"
        if cache == "none":
            shutil.rmtree(uv_cache, ignore_errors=True)
            shutil.rmtree(self.scratch / "cache" / "safe-pip" / "files", ignore_errors=True)
        target = self.scratch / f"target-{self.runs}"
        uv = [
            str(Path(sys.executable).with_name("uv")), "pip", "install", "--no-config", "--python",
            sys.executable, "--target", str(target), "--cache-dir", str(uv_cache),
            *requirements,
        ]
        if self.guarded:
            argv = [
                sys.executable, "-m", "safe_pip", "--changelog", w.cdn.changelog_url, "run",
                "--index-url", w.cdn.simple_url, "--", *uv,
            ]
        else:
            argv = [*uv, "--index-url", w.cdn.simple_url]
        outcome = run_cmd(argv, self.env, watch_rss=self.guarded, cpu=True)
        shutil.rmtree(target, ignore_errors=True)
        if outcome.returncode != 0:
            raise RuntimeError(
                f"{self.name} uv failed (exit {outcome.returncode}):\n{outcome.stderr}"
            )
        return outcome


@contextmanager
def sides(prefix: str = "safe-pip-bench-") -> Iterator[tuple[Side, Side]]:
    """(plain pip, safe-pip), each with its own home (caches, state) in a temporary dir."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        made = []
        for name, guarded in (("pip", False), ("safe-pip", True)):
            scratch = Path(tmp) / name
            scratch.mkdir()
            made.append(Side(name, scratch, base_env(scratch), guarded))
        yield made[0], made[1]


def alternate(
    runs: int, plain: Side, guarded: Side, w: World, reqs: Sequence[str], cache: str = "none"
) -> tuple[list[Outcome], list[Outcome]]:
    """``runs`` installs on each side, alternating which side goes first; CPU measured."""
    a: list[Outcome] = []
    b: list[Outcome] = []
    for i in range(runs):
        order = (plain, guarded) if i % 2 == 0 else (guarded, plain)
        for side in order:
            (b if side.guarded else a).append(side.install(w, reqs, cache=cache, cpu=True))
    return a, b


def median_ratio(plain: Sequence[float], guarded: Sequence[float]) -> float:
    """Median of the per-pair ratios (each pair ran back to back, sharing the machine's load)."""
    return statistics.median(g / p for p, g in zip(plain, guarded, strict=True))


def byte_compile() -> None:
    """Compile safe-pip's modules, as installing it would: a source tree run with
    ``PYTHONDONTWRITEBYTECODE`` set compiles every module on every run (~0.2 s), which plain
    pip, installed byte-compiled, never pays."""
    import compileall

    import safe_pip

    compileall.compile_dir(str(Path(safe_pip.__file__).parent), quiet=1)


def machine() -> dict[str, str]:
    """Cores, Python, pip and OS: printed above the table."""
    pip_version = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()[1:2]
    return {
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "pip": pip_version[0] if pip_version else "unknown",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
    }
