"""``safe-pip serve``: many clients, one verdict per request, 503 for refusals, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from _guarded import JSON, Served

from safe_pip.commands.serve import plan_listen
from safe_pip.errors import UsageError
from safe_pip.testing import CDN, Origin, fill_cache


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        yield server


def versions(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(f["filename"].split("-")[1] for f in response.json()["files"])


def test_32_clients_get_correct_verdicts(origin: Origin, state_dir: Path) -> None:
    fresh = [f"fresh-{n}" for n in range(6)]
    for name in fresh:
        origin.publish(name, "1.0")
    origin.publish("stuck", "1.0")
    with CDN(origin, edges=2, purge_delays=[None, None]) as cdn:
        for edge in (0, 1):
            cdn.pin(edge)
            fill_cache(cdn, "stuck", api=False)
        cdn.pin(None)
        origin.publish("stuck", "2.0")  # never purged: stale on every edge, every variant
        served = Served(
            "--changelog", cdn.changelog_url, "--max-wait", "1",
            "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
        )
        try:
            projects = [*fresh, "stuck", "no-such-project"]

            def client(n: int) -> list[tuple[str, int, str]]:
                session = requests.Session()
                got = []
                for i in range(len(projects) * 2):
                    project = projects[(n + i) % len(projects)]
                    resp = session.get(
                        f"{served.url}{project}/", headers={"Accept": JSON}, timeout=120
                    )
                    got.append((project, resp.status_code, resp.text))
                return got

            with ThreadPoolExecutor(max_workers=32) as pool:
                results = [r for rs in pool.map(client, range(32)) for r in rs]
        finally:
            code = served.stop()
    assert code == 0
    assert len(results) == 32 * len(projects) * 2
    for project, status, body in results:
        if project in fresh:
            assert status == 200, body
            assert '"versions":["1.0"]' in body
        elif project == "stuck":
            assert status == 503, body
            assert body.startswith("safe-pip refused stuck from ")
            assert "STALE" in body and f"{origin.project_serial('stuck')} required" in body
        else:
            assert status == 404
    answers = [line for line in served.lines if re.match(r"safe-pip serve: [\w-]+: \d{3} ", line)]
    logged = Counter(line.split(": ")[1] for line in answers)
    others = [line for line in served.lines if line not in answers]
    assert len(answers) == len(results), (logged, others)  # one line per request
    assert logged["stuck"] == 64 and logged["fresh-0"] == 64
    stuck = next(line for line in answers if ": stuck: 503" in line)
    assert "REFUSED (STALE)" in stuck and "ms" in stuck
    assert any(re.search(r"fresh-0: 200 FRESH, serial \d+ seen, \d+ required", x) for x in answers)


def test_pages_are_checked_again_after_recheck(origin: Origin, state_dir: Path) -> None:
    origin.publish("alpha", "1.0")
    with CDN(origin, edges=1, purge_delays=[1.0]) as cdn:
        served = Served(
            "--changelog", cdn.changelog_url, "--max-wait", "30",
            "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url, "--recheck", "0.2",
        )
        try:
            assert versions(served.get("alpha")) == ["1.0"]
            origin.publish("alpha", "2.0")
            time.sleep(0.5)
            # The journal is read again; the cached copy is stale until its purge lands, and
            # the guard waits that out inside the request instead of serving 1.0.
            assert versions(served.get("alpha")) == ["1.0", "2.0"]
        finally:
            assert served.stop() == 0


def test_sigterm_during_a_request(origin: Origin, state_dir: Path) -> None:
    origin.publish("stuck", "1.0")
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        fill_cache(cdn, "stuck", api=False)
        origin.publish("stuck", "2.0")
        served = Served(
            "--changelog", cdn.changelog_url, "--max-wait", "120",
            "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
        )
        answer: dict[str, requests.Response] = {}
        waiting = threading.Thread(target=lambda: answer.update(r=served.get("stuck", 120)))
        waiting.start()
        time.sleep(1.5)  # the request is being waited out (stale for up to 120 s)
        assert "r" not in answer
        t0 = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        code = served.stop()
        waiting.join(timeout=60)
        took = time.monotonic() - t0
    assert code == 0
    assert took < 30  # not the 120 s the wait had left
    assert answer["r"].status_code == 503
    assert "shutting down" in answer["r"].text
    assert any("shutting down" in line for line in served.lines)
    assert served.lines[-1].endswith("stopped")


def test_index_refusing_credentials_is_answered_at_once(state_dir: Path) -> None:
    """A 401 upstream is not waited out like a stale page: the client gets 502 (the gateway's
    own credentials were refused; a 401 would make pip ask its user for some) and one line."""
    with Origin(basic_auth=("user", "s3cret-Pw-7781")) as origin:
        origin.publish("alpha", "1.0")
        index = origin.simple_url.replace("http://", "http://user:wrong-Pw-7781@")
        served = Served(
            "--changelog", origin.changelog_url, "--max-wait", "30",
            "serve", "--listen", "127.0.0.1:0", "--index", index,
        )  # fmt: skip
        try:
            t0 = time.monotonic()
            answer = served.get("alpha", timeout=60)
            elapsed = time.monotonic() - t0
        finally:
            assert served.stop() == 0
    assert elapsed < 10, f"took {elapsed:.1f} s: waited out like a stale page"
    assert answer.status_code == 502, answer.text
    assert "Retry-After" not in answer.headers  # trying again will not help
    assert answer.text.startswith("safe-pip: the index http://****@127.0.0.1:")
    assert "refused the credentials from the index URL (HTTP 401 for alpha)" in answer.text
    logged = [line for line in served.lines if ": alpha: " in line]
    assert len(logged) == 1 and "502 ACCESS-DENIED" in logged[0], served.lines
    everything = answer.text + "\n".join(served.lines)
    assert "wrong-Pw-7781" not in everything and "still stale" not in everything


def test_second_serve_on_a_busy_port_is_one_clear_line(origin: Origin, state_dir: Path) -> None:
    origin.publish("alpha", "1.0")
    first = Served("serve", "--listen", "127.0.0.1:0", "--index", origin.simple_url)
    try:
        port = first.url.split(":")[2].split("/")[0]
        second = subprocess.run(
            [sys.executable, "-m", "safe_pip", "serve", "--listen", f"127.0.0.1:{port}",
             "--index", origin.simple_url],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert first.get("alpha").status_code == 200  # the first one is unharmed
    finally:
        first.stop()
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0]
    assert "in use" in lines[0]


def test_health_and_token(origin: Origin, state_dir: Path, tmp_path: Path) -> None:
    origin.publish("alpha", "1.0")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-0123456789\n")
    served = Served(
        "serve", "--listen", "127.0.0.1:0", "--index", origin.simple_url,
        "--token-file", str(token_file), token="s3cret-token-0123456789",
    )
    try:
        assert "s3cret" not in served.first_line and "/***/simple/" in served.first_line
        assert "/s3cret-token-0123456789/simple/" in served.url
        base = served.url.split("/s3cret")[0]
        health = requests.get(f"{base}/-/health", timeout=10)
        assert health.status_code == 200 and health.text == "ok\n"
        assert requests.get(f"{base}/simple/alpha/", timeout=10).status_code == 404
        wrong = requests.get(f"{base}/wrong-token-0123456789/simple/alpha/", timeout=10)
        assert wrong.status_code == 404
        page = served.get("alpha")
        assert page.status_code == 200
        # links are path-absolute under the token, so they work whatever host clients use
        url = page.json()["files"][0]["url"]
        assert url.startswith("/s3cret-token-0123456789/f/")
        wheel = requests.get(f"{base}{url}", timeout=10)
        assert wheel.status_code == 200
        assert wheel.content == origin.file_bytes("alpha-1.0-py3-none-any.whl")
    finally:
        assert served.stop() == 0


def test_pip_installs_through_serve(origin: Origin, state_dir: Path, tmp_path: Path) -> None:
    origin.publish("beta", "1.0")
    origin.publish("alpha", "1.0", requires=["beta"])
    with CDN(origin, edges=1) as cdn:
        served = Served(
            "--changelog", cdn.changelog_url,
            "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
        )
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--index-url", served.url,
                 "--target", str(tmp_path / "t"), "--no-cache-dir", "alpha"],
                capture_output=True, text=True, timeout=240, check=False,
                env=dict(os.environ, NO_PROXY="127.0.0.1"),
            )
        finally:
            assert served.stop() == 0
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "t").glob("*.dist-info")) == [
        "alpha-1.0.dist-info",
        "beta-1.0.dist-info",
    ]
    assert any(line.startswith("safe-pip serve: file alpha-1.0") for line in served.lines)


def test_uv_installs_through_serve_without_metadata_files(
    origin: Origin, state_dir: Path, tmp_path: Path
) -> None:
    # No PEP 658 files: uv reads each wheel's metadata with a HEAD and byte-range GETs.
    origin.publish("beta", "1.0", with_metadata=False)
    origin.publish("alpha", "1.0", requires=["beta"], with_metadata=False)
    uv = Path(sys.executable).parent / "uv"
    with CDN(origin, edges=1) as cdn:
        served = Served(
            "--changelog", cdn.changelog_url,
            "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
        )
        try:
            proc = subprocess.run(
                [str(uv) if uv.exists() else "uv", "pip", "install", "--index-url", served.url,
                 "--python", sys.executable, "--target", str(tmp_path / "t"), "alpha"],
                capture_output=True, text=True, timeout=240, check=False,
                env=dict(
                    os.environ, NO_PROXY="127.0.0.1", UV_NO_CONFIG="1",
                    UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_PYTHON_DOWNLOADS="never",
                ),
            )
        finally:
            assert served.stop() == 0
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "t").glob("*.dist-info")) == [
        "alpha-1.0.dist-info",
        "beta-1.0.dist-info",
    ]
    files = [line for line in served.lines if line.startswith("safe-pip serve: file ")]
    assert any(": 206," in line for line in files), served.lines  # a range was asked for


def test_listen_plan_requires_a_token_off_loopback(tmp_path: Path) -> None:
    assert plan_listen("127.0.0.1:3141", None).token == ""
    assert plan_listen("localhost:3141", None).loopback
    assert plan_listen("[::1]:3141", None).host == "::1"
    for public in ("0.0.0.0:3141", "192.0.2.7:3141", "[::]:3141", "build-host:3141"):
        with pytest.raises(UsageError, match="token is required"):
            plan_listen(public, None)
    token = tmp_path / "token"
    token.write_text("abcdefghijklmnop-1\n")
    plan = plan_listen("0.0.0.0:3141", str(token))
    assert (plan.host, plan.port, plan.token) == ("0.0.0.0", 3141, "abcdefghijklmnop-1")
    assert plan.url() == "http://0.0.0.0:3141/abcdefghijklmnop-1/simple/"
    token.write_text("short")
    with pytest.raises(UsageError, match="16 to 256"):
        plan_listen("0.0.0.0:3141", str(token))
    with pytest.raises(UsageError, match="cannot read"):
        plan_listen("0.0.0.0:3141", str(tmp_path / "missing"))
    for bad in ("3141", "host:", "host:http", "127.0.0.1:70000"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            plan_listen(bad, None)


def test_serve_off_loopback_without_token_exits_2_before_binding(state_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "safe_pip", "serve", "--listen", "0.0.0.0:0",
         "--index", "http://127.0.0.1:9/simple/"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "token is required" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
