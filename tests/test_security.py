"""The guard is locked down: loopback only, a per-run path token, credentials kept to their
index and out of every output, TLS verification never weakened, state never written through
a planted symlink."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _guarded import installed, refusal_lines, safe_pip, tree

from safe_pip.authority.state import StateStore, index_key
from safe_pip.guard.options import GuardOptions
from safe_pip.guard.proxy import Proxy
from safe_pip.guard.setup import GuardSetup
from safe_pip.net.http import TransportSettings
from safe_pip.net.urls import redact
from safe_pip.testing import Origin, TestCA, make_test_ca

USER, SECRET = "deploy", "s3cret-Pa55word"


# --------------------------------------------------------------------------- the proxy


@pytest.fixture
def origin(state_dir: Path) -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0", requires=["beta>=1"])
        server.publish("beta", "1.0")
        yield server


def test_proxy_is_loopback_only_and_needs_the_token(origin: Origin, tmp_path: Path) -> None:
    proxies = []
    for _ in range(2):
        setup = GuardSetup(
            GuardOptions(changelog=origin.changelog_url, max_wait=5),
            TransportSettings(timeout=5),
            store=StateStore(tmp_path / "state"),
            say=lambda line: None,
        )
        setup.add_index(origin.simple_url, main=True)
        proxy = Proxy(setup.guard)
        proxy.start()
        setup.guard.start_authorities()
        proxies.append(proxy)
    try:
        first, second = proxies
        host, port = first._server.server_address[:2]
        assert host == "127.0.0.1"
        assert port != second.port and first.token != second.token  # random per run
        assert len(first.token) >= 24
        assert first.base == f"http://127.0.0.1:{port}/{first.token}"
        page = requests.get(f"{first.base}/i/0/alpha/", timeout=30)
        assert page.status_code == 200 and b"alpha-1.0" in page.content
        # The request line is read as Latin-1: a byte 0xB2 is "²", a digit to str.isdigit
        # that int() refuses. Still a 404, never an unanswered request.
        for raw_path in (b"/i/\xb2/alpha/", b"/f/\xb2/x.whl", b"/f/0/\xb3/x.whl"):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                raw.sendall(b"GET /" + first.token.encode() + raw_path + b" HTTP/1.1\r\n\r\n")
                assert raw.recv(64).startswith(b"HTTP/1.1 404 "), raw_path
        for path in ("/i/0/alpha/", f"/{second.token}/i/0/alpha/", f"/{first.token[:-1]}/i/0/"):
            direct = requests.get(f"http://127.0.0.1:{port}{path}", timeout=30)
            assert direct.status_code == 404, path
            assert b"alpha" not in direct.content
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(b"GET /\xc3\xa9t/i/0/alpha/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert raw.recv(64).startswith(b"HTTP/1.1 404 ")  # a stray byte: still a 404
        # Bound to 127.0.0.1 alone: another loopback address (or any other) finds nothing.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=5):
            pass
    finally:
        for proxy in proxies:
            proxy.stop()


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def private(state_dir: Path) -> Iterator[Origin]:
    with Origin(basic_auth=(USER, SECRET)) as server:
        server.publish("alpha", "1.0", requires=["beta>=1"])
        server.publish("beta", "1.0")
        yield server


def with_credentials(url: str, host: str = "127.0.0.1") -> str:
    return url.replace("http://127.0.0.1", f"http://{USER}:{SECRET}@{host}")


def assert_secret_nowhere(
    proc: subprocess.CompletedProcess[str], *places: Path
) -> None:
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    for place in places:
        for name, data in tree(place).items() if place.is_dir() else [(place.name, b"")]:
            assert SECRET.encode() not in data, name
        if place.is_file():
            assert SECRET not in place.read_text(), place


def test_credentials_in_the_index_url_stay_with_their_index(
    private: Origin, tmp_path: Path, state_dir: Path
) -> None:
    with Origin() as other:
        other.publish("gamma", "1.0")
        report, target = tmp_path / "report.json", tmp_path / "target"
        proc = safe_pip(
            "-v", "--changelog", with_credentials(private.changelog_url),
            "--guard-report", str(report),
            "install", "--no-cache-dir", "--index-url", with_credentials(private.simple_url),
            "--extra-index-url", other.simple_url, "--target", str(target), "alpha", "gamma",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert installed(target) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
        assert [a for _, _, a in other.authorization_seen] and not any(
            a for _, _, a in other.authorization_seen
        ), "credentials went to another index"
    index_calls = [a for host, _, a in private.authorization_seen if host == "index"]
    assert index_calls and all(index_calls), "the index was asked without its credentials"
    files = [a for host, _, a in private.authorization_seen if host == "files"]
    assert files and not any(files), "credentials went to the file host (another host)"
    assert "FRESH" in report.read_text()  # the changelog was asked with its credentials
    assert_secret_nowhere(proc, report, state_dir)


def test_credentials_are_not_shown_in_a_refusal(
    private: Origin, tmp_path: Path, state_dir: Path
) -> None:
    private.faults.inject("beta", "503")
    report, target = tmp_path / "report.json", tmp_path / "target"
    proc = safe_pip(
        "--changelog", with_credentials(private.changelog_url), "--max-wait", "1",
        "--guard-report", str(report),
        "install", "--no-cache-dir", "--index-url", with_credentials(private.simple_url),
        "--target", str(target), "alpha",
    )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    assert "****@127.0.0.1" in refusal_lines(proc.stderr)[0]
    assert tree(target) == {}
    assert_secret_nowhere(proc, report, state_dir)


def test_netrc_credentials_go_to_their_host_only(
    private: Origin, tmp_path: Path, state_dir: Path
) -> None:
    home = Path(os.environ["HOME"])
    netrc = home / ".netrc"
    netrc.write_text(f"machine localhost login {USER} password {SECRET}\n")
    netrc.chmod(0o600)
    index = private.simple_url.replace("127.0.0.1", "localhost")
    changelog = private.changelog_url.replace("127.0.0.1", "localhost")
    report, target = tmp_path / "report.json", tmp_path / "target"
    proc = safe_pip(
        "--changelog", changelog, "--guard-report", str(report),
        "install", "--no-cache-dir", "--index-url", index, "--target", str(target), "alpha",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    files = [a for host, _, a in private.authorization_seen if host == "files"]
    assert files and not any(files)  # the file host is 127.0.0.1, not localhost
    assert "FRESH" in report.read_text()
    assert_secret_nowhere(proc, report, state_dir)


def test_credentials_from_pip_config_are_not_shown(
    private: Origin, tmp_path: Path, state_dir: Path
) -> None:
    config = tmp_path / "pip.conf"
    config.write_text(f"[global]\nindex-url = {with_credentials(private.simple_url)}\n")
    report, target = tmp_path / "report.json", tmp_path / "target"
    proc = safe_pip(
        "--changelog", with_credentials(private.changelog_url), "--guard-report", str(report),
        "install", "--no-cache-dir", "--target", str(target), "alpha",
        env={"PIP_CONFIG_FILE": str(config)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    assert_secret_nowhere(proc, report, state_dir)


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls_origin(test_ca: TestCA, state_dir: Path) -> Iterator[Origin]:
    with Origin(tls=test_ca.server_context()) as server:
        server.publish("alpha", "1.0", requires=["beta>=1"])
        server.publish("beta", "1.0")
        yield server


def test_tls_is_verified_and_an_unknown_ca_is_refused(tls_origin: Origin, tmp_path: Path) -> None:
    assert tls_origin.simple_url.startswith("https://")
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", tls_origin.changelog_url, "--max-wait", "1",
        "install", "--no-cache-dir", "--index-url", tls_origin.simple_url,
        "--target", str(target), "alpha",
    )  # fmt: skip
    assert proc.returncode == 75, proc.stderr
    line = refusal_lines(proc.stderr)[0]
    assert "refused alpha" in line and "CERTIFICATE_VERIFY_FAILED" in line, line
    assert tree(target) == {}


@pytest.mark.parametrize("how", ["--cert", "PIP_CERT", "REQUESTS_CA_BUNDLE", "pip.conf"])
def test_the_users_ca_bundle_is_honoured(
    tls_origin: Origin, test_ca: TestCA, tmp_path: Path, how: str
) -> None:
    pip_args: list[str] = []
    # A machine-wide bundle in the environment (many CI images set one) must not beat the
    # bundle the user gave pip, for the pages or for the changelog (requests #3829).
    env = {"CURL_CA_BUNDLE": requests.certs.where()}
    if how == "--cert":
        pip_args = ["--cert", str(test_ca.ca_file)]
    elif how == "pip.conf":
        config = tmp_path / "pip.conf"
        config.write_text(f"[global]\ncert = {test_ca.ca_file}\n")
        env["PIP_CONFIG_FILE"] = str(config)
    else:
        env[how] = str(test_ca.ca_file)
    report, target = tmp_path / "report.json", tmp_path / "target"
    proc = safe_pip(
        "--changelog", tls_origin.changelog_url, "--max-wait", "5",
        "--guard-report", str(report),
        "install", "--no-cache-dir", *pip_args, "--index-url", tls_origin.simple_url,
        "--target", str(target), "alpha", env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"alpha": "1.0", "beta": "1.0"}
    doc = json.loads(report.read_text())
    # The changelog, too, was reached over verified TLS: every page is proven, not UNVERIFIED.
    assert {p["verdict"] for p in doc["pages"]} == {"FRESH"}, doc
    assert "freshness not proven" not in proc.stderr


# --------------------------------------------------------------------------- state files


def test_state_files_follow_the_umask(origin: Origin, tmp_path: Path, state_dir: Path) -> None:
    for umask, expected in ((0o077, 0o600), (0o022, 0o644)):
        store_dir = tmp_path / f"state-{umask:o}"
        proc = subprocess.run(
            [sys.executable, "-c", "import os, sys; os.umask(int(sys.argv[1], 8)); "
             "from safe_pip.cli import main; sys.exit(main(sys.argv[2:]))",
             f"{umask:o}", "--changelog", origin.changelog_url,
             "install", "--no-cache-dir", "--index-url", origin.simple_url,
             "--target", str(tmp_path / f"t-{umask:o}"), "alpha"],
            capture_output=True, text=True, timeout=240, check=False,
            env={**os.environ, "SAFE_PIP_STATE_DIR": str(store_dir)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        files = [p for p in store_dir.iterdir() if p.is_file()]
        assert any(p.name.endswith(".serials.json") for p in files)
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == expected, (path, umask)


@pytest.mark.parametrize("kind", ["serials", "journal", "lock"])
def test_planted_symlink_in_the_state_dir_is_never_followed(
    origin: Origin, tmp_path: Path, state_dir: Path, kind: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    state_dir.mkdir()
    stem = StateStore(state_dir)._path(index_key(origin.simple_url), "serials").name
    stem = stem[: -len(".serials.json")]
    name = f"{stem}.lock" if kind == "lock" else f"{stem}.{kind}.json"
    (state_dir / name).symlink_to(victim)
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", origin.changelog_url,
        "install", "--no-cache-dir", "--index-url", origin.simple_url,
        "--target", str(target), "alpha",
    )  # fmt: skip
    assert victim.read_text() == "precious\n"
    assert (state_dir / name).is_symlink()
    assert "symlink" in proc.stderr and name in proc.stderr, proc.stderr
    if proc.returncode != 0:
        # Refusing the state dir is refusing the run: one line, exit 2, nothing installed.
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert tree(target) == {}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:s3cret@index.example/simple/", "https://****@index.example/simple/"),
        ("https://index.example/simple/", "https://index.example/simple/"),
        # An unclosed "[" does not parse; the URL is still named, its credentials masked.
        ("http://u:s3cret@[::1/simple/", "http://****@[::1/simple/"),
        ("http://[::1/simple/", "http://[::1/simple/"),
    ],
)
def test_redact_masks_credentials_even_in_a_url_that_does_not_parse(url: str, shown: str) -> None:
    assert redact(url) == shown
