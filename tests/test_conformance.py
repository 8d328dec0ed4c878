"""The conformance matrix: each installer, through each way in, against each kind of index.

Real pip (``safe-pip install``; plain pip against ``safe-pip serve``), real uv (``safe-pip run
-- uv pip install``; plain uv against ``serve``) and real pip-compile (``safe-pip run``), against
an origin rendered after each index profile of the simulator (``safe_pip.testing.PROFILES``)
behind a caching CDN, in three states:

- fresh: the CDN had cached the old page and purged it at once (PyPI's CDN purges softly, so
  the old copy is still answered once);
- purged: the old page stays cached for a while, then the purge arrives within ``--max-wait``;
- stale: the purge was lost; the old page outlasts ``--max-wait``.

uv reads PEP 658 metadata files where the profile has them (``pypi``) and otherwise a wheel's
metadata through ``HEAD`` and byte ranges (the mirror and plain profiles).

Each cell must end in the README's documented outcome ("Works with"): where the index gives
serials and an authority (its own changelog, or for a mirror its upstream's) the fresh release
is installed, or nothing is (exit 75; serve answers 503); where the index gives no serial, what
the CDN shows is installed with the NO-SERIAL warning. Without an authority, a serial still
guards against rollback (the last test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guarded import Served, installed, pins, safe_pip, tool

from safe_pip.testing import CDN, PROFILES, Origin, Profile, fill_cache

BIN = Path(sys.executable).parent
STATES = ("fresh", "purged", "stale")
CLIENTS = ("install", "run-uv", "run-pip-compile", "serve-pip", "serve-uv")
PURGE_DELAY = {"fresh": 0.0, "purged": 1.5, "stale": None}
MAX_WAIT = {"fresh": "30", "purged": "30", "stale": "3"}
NO_SERIAL_WARNING = "gives no serials; the freshness of its pages cannot be proven"
UNPROVEN_WARNING = "freshness not proven on"


def client_env(tmp_path: Path) -> dict[str, str]:
    """pip and uv run by hand against ``serve``: no configuration, no cache, no retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_HTTP_RETRIES="0",
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def authority(origin: Origin, cdn: CDN) -> list[str]:
    """The changelog a user gives for this kind of index (none for an index without serials:
    there is nothing to compare)."""
    if origin.profile.changelog:
        return ["--changelog", cdn.changelog_url]
    if origin.profile.has_serial:
        # A mirror's serials are its upstream's: the upstream's changelog is its authority.
        return ["--changelog", origin.upstream_changelog_url]
    return []


def attempt(client: str, cdn: CDN, guard: list[str], tmp_path: Path) -> tuple[int, str | None, str]:
    """Run one client; its exit code, the alpha version it installed (or pinned), its stderr."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "target"
    env = client_env(tmp_path)
    if client == "install":
        proc = safe_pip(
            *guard, "install", "--index-url", cdn.simple_url, "--target", str(target),
            "--no-cache-dir", "alpha",
        )  # fmt: skip
        return proc.returncode, installed(target).get("alpha"), proc.stderr
    if client == "run-uv":
        proc = safe_pip(
            *guard, "run", "--index-url", cdn.simple_url, "--",
            tool("uv"), "pip", "install", "--python", sys.executable, "--target", str(target),
            "alpha",
            env={"UV_CACHE_DIR": env["UV_CACHE_DIR"], "UV_NO_CONFIG": "1"},
        )  # fmt: skip
        return proc.returncode, installed(target).get("alpha"), proc.stderr
    if client == "run-pip-compile":
        (tmp_path / "requirements.in").write_text("alpha\n")
        proc = safe_pip(
            *guard, "run", "--index-url", cdn.simple_url, "--",
            tool("pip-compile"), "--quiet", "--no-header", "--output-file", "requirements.txt",
            "requirements.in",
            cwd=tmp_path,
        )  # fmt: skip
        return proc.returncode, pins(tmp_path / "requirements.txt").get("alpha"), proc.stderr
    served = Served(*guard, "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url)
    try:
        if client == "serve-pip":
            command = [
                sys.executable, "-m", "pip", "install", "--index-url", served.url,
                "--target", str(target), "--no-cache-dir", "--retries", "0", "alpha",
            ]  # fmt: skip
        else:
            command = [
                tool("uv"), "pip", "install", "--python", sys.executable, "--index-url",
                served.url, "--target", str(target), "alpha",
            ]  # fmt: skip
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=240, check=False
        )
    finally:
        assert served.stop() == 0
    log = "\n".join(served.lines)
    return proc.returncode, installed(target).get("alpha"), proc.stderr + "\n" + log


@pytest.fixture(params=list(PROFILES), ids=list(PROFILES))
def origin(request: pytest.FixtureRequest) -> Iterator[Origin]:
    with Origin(profile=request.param) as server:
        server.publish("beta", "1.0")
        server.publish("alpha", "1.0", requires=["beta>=1"])
        yield server


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("client", CLIENTS)
def test_matrix(origin: Origin, client: str, state: str, tmp_path: Path, state_dir: Path) -> None:
    profile: Profile = origin.profile
    purge = PURGE_DELAY[state]
    with CDN(origin, edges=1, purge_delays=[purge], soft_purge=profile.soft_purge) as cdn:
        fill_cache(cdn, "alpha", api=False)
        origin.publish("alpha", "2.0", requires=["beta>=1"])
        guard = [*authority(origin, cdn), "--max-wait", MAX_WAIT[state]]
        code, version, stderr = attempt(client, cdn, guard, tmp_path)

    if not profile.has_serial:
        # Nothing to prove freshness with: what the CDN shows, and the warning.
        assert code == 0, stderr
        assert NO_SERIAL_WARNING in stderr, stderr
        shown = {"fresh": {"2.0"}, "purged": {"1.0", "2.0"}, "stale": {"1.0"}}[state]
        assert version in shown, stderr
        return
    assert NO_SERIAL_WARNING not in stderr and UNPROVEN_WARNING not in stderr, stderr
    if state == "stale":
        assert version is None, stderr  # nothing installed, nothing pinned
        if client.startswith("serve"):
            assert code != 0, stderr  # the client got 503 for the page
            assert "refused" in stderr or "503" in stderr, stderr
        else:
            assert code == 75, stderr
            assert "refused alpha" in stderr, stderr
        return
    assert code == 0, stderr
    assert version == "2.0", stderr


@pytest.mark.parametrize(
    "name", [p.name for p in PROFILES.values() if p.has_serial and not p.changelog]
)
def test_serials_without_an_authority_still_stop_a_rollback(
    name: str, tmp_path: Path, state_dir: Path
) -> None:
    """A mirror used without its upstream's changelog: pages are used with a warning
    (freshness not proven), and a page older than one this machine has seen is refused."""
    with Origin(profile=name) as origin:
        origin.publish("beta", "1.0")
        origin.publish("alpha", "1.0", requires=["beta>=1"])
        with CDN(origin, edges=2, purge_delays=[0.0, None]) as cdn:
            fill_cache(cdn, "alpha", api=False)  # both edges hold the 1.0 page
            origin.publish("alpha", "2.0", requires=["beta>=1"])
            cdn.pin(1)  # the edge that lost the purge: 1.0, used with a warning
            old = attempt("install", cdn, ["--max-wait", "3"], tmp_path / "old")
            cdn.pin(0)  # the purged edge: 2.0, remembered
            new = attempt("install", cdn, ["--max-wait", "3"], tmp_path / "new")
            cdn.pin(1)  # back to the stale edge: a rollback
            back = attempt("install", cdn, ["--max-wait", "3"], tmp_path / "back")
    assert old[:2] == (0, "1.0") and UNPROVEN_WARNING in old[2], old[2]
    assert new[:2] == (0, "2.0"), new[2]
    assert back[:2] == (75, None), back[2]
    assert "ROLLBACK" in back[2], back[2]


def test_uv_cache_through_serve_never_gives_an_old_page(tmp_path: Path, state_dir: Path) -> None:
    """uv keeps its cache (pages included, where allowed) and serve's URLs stay the same from
    one client run to the next: a second run after a release must still see the new page,
    because serve marks pages no-store."""
    with Origin() as origin:
        origin.publish("beta", "1.0")
        origin.publish("alpha", "1.0", requires=["beta>=1"])
        with CDN(origin, edges=1, purge_delays=[1.0]) as cdn:
            served = Served(
                "--changelog", cdn.changelog_url, "--max-wait", "30",
                "serve", "--listen", "127.0.0.1:0", "--index", cdn.simple_url,
                "--recheck", "0",  # no verdict reused from the first run
            )  # fmt: skip
            try:
                env = client_env(tmp_path)  # one uv cache for both runs
                runs = []
                for release in ("1.0", "2.0"):
                    if release == "2.0":
                        origin.publish("alpha", "2.0", requires=["beta>=1"])
                    target = tmp_path / f"target-{release}"
                    proc = subprocess.run(
                        [
                            tool("uv"), "pip", "install", "--python", sys.executable,
                            "--index-url", served.url, "--target", str(target), "alpha",
                        ],
                        capture_output=True, text=True, env=env, timeout=240, check=False,
                    )  # fmt: skip
                    runs.append((proc.returncode, installed(target).get("alpha"), proc.stderr))
            finally:
                assert served.stop() == 0
    assert runs[0][:2] == (0, "1.0"), runs[0][2]
    assert any((tmp_path / "uv-cache").iterdir()), "uv kept nothing: the test proves nothing"
    assert runs[1][:2] == (0, "2.0"), runs[1][2]
