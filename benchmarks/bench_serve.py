"""Benchmark: pages per second ``safe-pip serve`` answers to 32 concurrent clients.

The pages are cached-fresh: each project page was proven fresh once and its verdict is reused
(``--recheck``, 5 s by default, so the guard re-checks each page every few seconds during the
run, as it would in service). The index is the simulator (origin and CDN) on 127.0.0.1, in this
process; ``safe-pip serve`` runs in its own process, as in production, and the clients in a
third one, each client a thread with its own keep-alive connection (as pip and uv keep theirs).
Target: at least 1,000 pages/s on 2 cores.

The same server is then measured by two standard load generators when they are installed:
``wrk`` (HTTP/1.1, one keep-alive connection per client, the pages in turn) and ``ab``
(ApacheBench: HTTP/1.0, a new connection for every request, as the simplest clients make).

Importing this module starts nothing; ``run_throughput_benchmark()`` does the work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

#: The client process: N threads, each with one keep-alive connection, asking for pages in
#: turn until the deadline; prints one JSON line with the counts.
_CLIENT = r"""
import http.client, json, sys, threading, time, urllib.parse
url, clients, seconds, projects = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
parts = urllib.parse.urlsplit(url)
accept = "application/vnd.pypi.simple.v1+json"
counts = {"ok": 0, "bad": 0}
lock = threading.Lock()
start = threading.Event()
def client(n):
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    ok = bad = 0
    i = n
    start.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        project = projects[i % len(projects)]
        i += 1
        try:
            conn.request("GET", f"{parts.path}{project}/", headers={"Accept": accept})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and b'"_last-serial"' in body:
                ok += 1
            else:
                bad += 1
        except OSError:
            bad += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    with lock:
        counts["ok"] += ok
        counts["bad"] += bad
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads:
    t.start()
t0 = time.monotonic()
start.set()
for t in threads:
    t.join()
counts["elapsed"] = time.monotonic() - t0
print(json.dumps(counts))
"""


def _wait_for_url(log_path: str, server: subprocess.Popen[bytes]) -> str:
    """The URL serve prints on its first line (it listens on a port of its choosing)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8") as log:
            first = log.readline()
        found = re.search(r" at (http://\S+)", first)
        if found:
            return found.group(1)
        if server.poll() is not None:
            raise RuntimeError(f"safe-pip serve did not start: {first.strip()}")
        time.sleep(0.05)
    raise RuntimeError("safe-pip serve did not start within 60 s")


def run_throughput_benchmark(
    clients: int = 32, seconds: float = 10.0, projects: int = 20
) -> dict[str, Any]:
    """Pages/s served to ``clients`` concurrent keep-alive clients, for cached-fresh pages."""
    from safe_pip.testing import CDN, Origin

    names = [f"project-{n}" for n in range(projects)]
    with tempfile.TemporaryDirectory(prefix="safe-pip-bench-") as tmp, Origin() as origin:
        for name in names:
            origin.publish(name, "1.0")
        with CDN(origin, edges=2) as cdn:
            env = dict(os.environ)
            env.update(PIP_CONFIG_FILE=os.devnull, SAFE_PIP_STATE_DIR=os.path.join(tmp, "state"))
            log_path = os.path.join(tmp, "serve.log")
            with open(log_path, "w", encoding="utf-8") as log:
                server = subprocess.Popen(
                    [
                        sys.executable, "-m", "safe_pip", "--changelog", cdn.changelog_url,
                        "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
                    ],
                    env=env,
                    stderr=log,  # the access log: one line per page
                )
            try:
                url = _wait_for_url(log_path, server)
                warm = subprocess.run(
                    [sys.executable, "-c", _CLIENT, url, "1", "0.5", *names],
                    capture_output=True, text=True, check=True, timeout=120,
                )
                if json.loads(warm.stdout)["bad"]:
                    raise RuntimeError(f"warm-up answers were wrong: {warm.stdout}")
                proc = subprocess.run(
                    [sys.executable, "-c", _CLIENT, url, str(clients), str(seconds), *names],
                    capture_output=True, text=True, check=True, timeout=seconds + 120,
                )
                counts = json.loads(proc.stdout)
                standard = {
                    "wrk": _wrk(url, names, clients, seconds),
                    "ab": _ab(url, names[0], clients, seconds),
                }
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait(timeout=30)
            with open(log_path, encoding="utf-8") as log:
                lines = log.read().splitlines()
    return {
        "benchmark": "serve cached-fresh pages",
        "clients": clients,
        "projects": projects,
        "seconds": round(counts["elapsed"], 2),
        "pages": counts["ok"],
        "errors": counts["bad"],
        "pages_per_second": round(counts["ok"] / counts["elapsed"], 1),
        "checks": sum("(checked in" in line for line in lines),  # re-checks every --recheck
        "log_lines": sum(": 200 " in line for line in lines),
        "cores": os.cpu_count(),
        "standard": standard,
    }


#: wrk asks for the pages in turn, each connection from its own place in the list.
_WRK_SCRIPT = """
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1],
                    {["Accept"] = "application/vnd.pypi.simple.v1+json"})
end
"""


def _wrk(url: str, names: list[str], clients: int, seconds: float) -> dict[str, Any] | None:
    """wrk's figures (HTTP/1.1 keep-alive), None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    path = url.split("://", 1)[1].partition("/")[2]
    paths = ", ".join(f'"/{path}{name}/"' for name in names)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % paths)
    try:
        proc = subprocess.run(
            [wrk, "-t2", f"-c{clients}", f"-d{max(1, round(seconds))}s", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    return _figures(
        "wrk", proc.stdout, "wrk, HTTP/1.1 keep-alive", r"Requests/sec:\s*([\d.]+)",
        r"Non-2xx or 3xx responses:\s*(\d+)",
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
    )


def _ab(url: str, name: str, clients: int, seconds: float) -> dict[str, Any] | None:
    """ApacheBench's figures (HTTP/1.0, a connection per request), None when not installed."""
    ab = shutil.which("ab")
    if ab is None:
        return None
    proc = subprocess.run(
        [ab, "-q", "-c", str(clients), "-t", str(max(1, round(seconds))), "-n", "10000000",
         "-H", "Accept: application/vnd.pypi.simple.v1+json", f"{url}{name}/"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )
    return _figures(
        "ab", proc.stdout, "ab, HTTP/1.0, a connection per request",
        r"Requests per second:\s*([\d.]+)", r"Failed requests:\s*(\d+)",
        r"Non-2xx responses:\s*(\d+)",
    )


def _figures(tool: str, out: str, client: str, rate: str, *errors: str) -> dict[str, Any]:
    """The rate a load generator printed and the sum of the error counts it printed."""
    found = re.search(rate, out)
    if found is None:
        raise RuntimeError(f"{tool} printed no rate:\n{out}")
    counted = (re.search(pattern, out) for pattern in errors)
    return {
        "client": client,
        "pages_per_second": float(found.group(1)),
        "errors": sum(int(n) for match in counted if match for n in match.groups()),
    }


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    print(json.dumps(run_throughput_benchmark(seconds=seconds), indent=2))
