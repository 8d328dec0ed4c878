"""``safe-pip check`` against a local origin and CDN: every finding kind, input form and format."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import requests
from _guarded import check

from safe_pip.cli import main
from safe_pip.testing import CDN, Origin

DATA = Path(__file__).parent / "data" / "check"
SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("no_network")  # conftest


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:
        server.publish("alpha", "1.0")
        server.publish("alpha", "2.0")
        server.publish("beta", "1.0")
        server.publish("gamma", "0.5")
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def sha256(origin: Origin, filename: str) -> str:
    return hashlib.sha256(origin.file_bytes(filename)).hexdigest()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_clean_requirements_with_includes_markers_continuations_constraints(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = sha256(origin, "alpha-1.0-py3-none-any.whl")
    write(tmp_path / "more.txt", "gamma==0.5 ; python_version < '3'  # checked on every platform\n")
    write(tmp_path / "constraints.txt", "beta==1.0\n")
    req = write(
        tmp_path / "requirements.txt",
        "# pinned\n"
        f"alpha==1.0 \\\n    --hash=sha256:{digest}\n"
        "-r more.txt\n-c constraints.txt\nbeta\n",
    )
    code, out, err = check(capsys, cdn, "--index-url", cdn.simple_url, str(req))
    assert code == 0, err
    assert out == ""
    assert "checked 3 pins in 1 files on 1 indexes: no findings" in err
    assert "warning" not in err


def test_every_requirements_finding(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.yank("beta", "1.0", reason="broken build")
    req = write(
        tmp_path / "requirements.txt",
        "alpha==9.9\n"
        "nosuch==1.0\n"
        "alpha==2.0 --hash=sha256:" + "0" * 64 + "\n"
        "beta==1.0\n"
        "gamma>=0.1\n",
    )
    code, out, err = check(capsys, cdn, "--index-url", cdn.simple_url, str(req))
    assert code == 1, err
    lines = out.splitlines()
    assert len(lines) == 5, out
    assert lines[0].startswith(f"{req}:1: alpha 9.9: missing: ")
    assert "lists no files of 9.9 (page serial" in lines[0]
    assert lines[1].startswith(f"{req}:2: nosuch 1.0: missing: ") and "has no project" in lines[1]
    assert lines[2].startswith(f"{req}:3: alpha 2.0: hash-mismatch: no file of 2.0 has sha256:000")
    assert lines[3] == f"{req}:4: beta 1.0: yanked: the release is yanked: broken build"
    assert lines[4].startswith(f"{req}:5: gamma: unpinned: ")


def _pylock(origin: Origin, cdn: CDN, entries: list[tuple[str, str]]) -> str:
    parts = ['lock-version = "1.0"', 'created-by = "test"', ""]
    for name, version in entries:
        filename = f"{name}-{version}-py3-none-any.whl"
        data = origin.file_bytes(filename)
        page = requests.get(
            f"{origin.simple_url}{name}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            timeout=10,
        ).json()
        upload = next(f["upload-time"] for f in page["files"] if f["filename"] == filename)
        parts += [
            "[[packages]]",
            f'name = "{name}"',
            f'version = "{version}"',
            f'index = "{cdn.simple_url}"',
            "",
            "[[packages.wheels]]",
            f'name = "{filename}"',
            f'url = "{origin.file_url(filename)}"',
            f"upload-time = {upload}",
            f"size = {len(data)}",
            f'hashes = {{sha256 = "{hashlib.sha256(data).hexdigest()}"}}',
            "",
        ]
    return "\n".join(parts)


def test_pylock_clean_then_changed(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _pylock(origin, cdn, [("alpha", "1.0"), ("beta", "1.0"), ("gamma", "0.5")])
    lock = write(tmp_path / "pylock.toml", text)
    # The lock names its index: no --index-url is needed (the default index is never asked).
    code, out, err = check(capsys, cdn, str(lock))
    assert code == 0, err + out
    assert "warning" not in err  # the lock's index is the main one: --changelog proves it fresh

    alpha_size = len(origin.file_bytes("alpha-1.0-py3-none-any.whl"))
    changed = (
        text.replace(f"size = {alpha_size}", f"size = {alpha_size + 1}", 1)
        .replace('/alpha-1.0-py3-none-any.whl"', '/alpha-1.0-py3-none-any.whl?moved"')
        .replace('name = "beta-1.0-py3-none-any.whl"', 'name = "beta-1.0-py2.py3-none-any.whl"')
        .replace('version = "0.5"', 'version = "0.6"')
    )
    lock2 = write(tmp_path / "pylock.ci.toml", changed)
    code, out, err = check(capsys, cdn, str(lock2))
    assert code == 1, err
    kinds = [line.split(": ")[2] for line in out.splitlines()]
    assert kinds == ["changed", "changed", "changed", "missing"], out
    assert f"{lock2}:4: alpha 1.0: changed: alpha-1.0-py3-none-any.whl: size" in out
    assert "alpha-1.0-py3-none-any.whl: the lock's URL" in out
    assert "beta 1.0: changed: beta-1.0-py2.py3-none-any.whl is no longer listed" in out
    assert "gamma 0.6: missing" in out


def test_pylock_hash_mismatch_and_download(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _pylock(origin, cdn, [("alpha", "2.0")])
    good = sha256(origin, "alpha-2.0-py3-none-any.whl")
    lock = write(tmp_path / "pylock.toml", text)
    code, _, err = check(capsys, cdn, "--download", str(lock))
    assert code == 0, err
    bad = write(tmp_path / "pylock.bad.toml", text.replace(good, "f" * 64))
    code, out, _ = check(capsys, cdn, str(bad))
    assert code == 1
    assert f"the lock has sha256:{'f' * 64}, the index lists {good}" in out
    code, out, _ = check(capsys, cdn, "--download", str(bad))
    assert code == 1
    assert f"its bytes hash {good}" in out


def test_download_hashes_requirement_bytes(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = sha256(origin, "beta-1.0-py3-none-any.whl")
    req = write(tmp_path / "r.txt", f"beta==1.0 --hash=sha256:{digest}\n")
    code, _, err = check(capsys, cdn, "--download", "-i", cdn.simple_url, str(req))
    assert code == 0, err
    req = write(tmp_path / "r.txt", "beta==1.0 --hash=sha512:" + "a" * 128 + "\n")
    code, out, _ = check(capsys, cdn, "--download", "-i", cdn.simple_url, str(req))
    assert code == 1
    assert "hash-mismatch: no file of 1.0 has sha512:aaaa" in out and "by their bytes" in out


def test_index_options_inside_requirements_files(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = write(tmp_path / "r.txt", f"--index-url {cdn.simple_url}\nalpha==1.0\n")
    code, out, err = check(capsys, cdn, str(req))
    assert code == 0, err + out
    assert "on 1 indexes" in err


def test_find_links_directory_serves_a_pin(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "local_only-3.0-py3-none-any.whl").write_bytes(b"not read")
    req = write(tmp_path / "r.txt", "local-only==3.0\nlocal-only2==3.0\n")
    code, out, _ = check(capsys, cdn, "-i", cdn.simple_url, "-f", str(wheels), str(req))
    assert code == 1
    assert [line.split(": ")[1] for line in out.splitlines()] == ["local-only2 3.0"]


def test_json_shape_is_stable(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = write(tmp_path / "r.txt", "alpha==1.0\nbeta==3.0\n")
    report = tmp_path / "report.json"
    code, out, _ = check(
        capsys, cdn, "--format", "json", "-o", str(report), "-i", cdn.simple_url, str(req)
    )
    assert code == 1 and out == ""
    doc = json.loads(report.read_text())
    assert sorted(doc) == ["files", "findings", "indexes", "pins", "skipped", "tool", "version"]
    assert doc["version"] == 1 and doc["pins"] == 2 and doc["files"] == [str(req)]
    assert doc["skipped"] == 0
    assert doc["findings"] == [
        {
            "project": "beta",
            "version": "3.0",
            "kind": "missing",
            "level": "error",
            "file": str(req),
            "line": 2,
            "message": doc["findings"][0]["message"],
        }
    ]
    assert doc["indexes"] == [
        {
            "url": cdn.simple_url,
            "serials": {
                "alpha": origin.project_serial("alpha"),
                "beta": origin.project_serial("beta"),
            },
        }
    ]


def test_sarif_is_valid_sarif_2_1_0(
    cdn: CDN,
    origin: Origin,
    tmp_path: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    origin.yank("alpha", "1.0")
    write(tmp_path / "requirements dev.txt", "alpha==1.0\nbeta\nnosuch==1\n")
    lock = write(tmp_path / "pylock.toml", _pylock(origin, cdn, [("gamma", "0.5")]))
    code, out, _ = check(
        capsys, cdn, "--format", "sarif", "-i", cdn.simple_url, "requirements dev.txt", str(lock)
    )
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    results = log["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["yanked", "unpinned", "missing"]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {
        "uri": "requirements%20dev.txt",
        "uriBaseId": "%SRCROOT%",
    }
    assert location["region"] == {"startLine": 1}
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [rules[r["ruleIndex"]]["id"] for r in results] == ["yanked", "unpinned", "missing"]
    # and a clean run is valid too
    code, out, _ = check(capsys, cdn, "--format", "sarif", str(lock))
    assert code == 0
    jsonschema.Draft4Validator(SCHEMA).validate(json.loads(out))


def test_stale_view_is_refused_not_missing(
    origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with CDN(origin, edges=1, purge_delays=[None]) as cdn:
        warm = requests.get(f"{cdn.simple_url}alpha/", timeout=10)  # cache the old page
        assert warm.status_code == 200
        for accept in (
            "application/vnd.pypi.simple.v1+json",
            "application/vnd.pypi.simple.v1+html",
            "text/html",
        ):
            for enc in ("gzip", "identity"):
                requests.get(
                    f"{cdn.simple_url}alpha/",
                    headers={"Accept": accept, "Accept-Encoding": enc},
                    timeout=10,
                )
        origin.publish("alpha", "3.0")
        req = write(tmp_path / "r.txt", "alpha==3.0\n")
        code, out, err = check(
            capsys, cdn, "--format", "json", "-i", cdn.simple_url, str(req),
            guard=("--max-wait", "1"),
        )
    assert code == 75, err
    assert out == ""  # no report, so no "missing"
    assert "refused alpha from" in err and "STALE" in err
    assert "nothing was checked" in err


def test_index_refusing_credentials_is_said_once(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 401 is not a stale view: one line for the index (not one per project), at once,
    exit 2 (1 would say the pins are wrong; it is the configuration)."""
    with Origin(basic_auth=("user", "s3cret-Pw-3310")) as locked:
        for name in ("alpha", "beta", "gamma"):
            locked.publish(name, "1.0")
        req = write(tmp_path / "r.txt", "alpha==1.0\nbeta==1.0\ngamma==1.0\n")
        index = locked.simple_url.replace("http://", "http://user:wrong-Pw-3310@")
        capsys.readouterr()
        t0 = time.monotonic()
        code = main(
            ["--changelog", locked.changelog_url, "--max-wait", "30", "check", "-i", index,
             str(req)]
        )  # fmt: skip
        elapsed = time.monotonic() - t0
        out, err = capsys.readouterr()
    assert code == 2, err
    assert elapsed < 10, f"took {elapsed:.1f} s: waited out like a stale page"
    assert out == ""  # nothing was judged, so no report
    lines = [line for line in err.splitlines() if line.startswith("safe-pip: the index ")]
    assert len(lines) == 1, err
    assert "http://****@127.0.0.1:" in lines[0]
    assert "refused the credentials from the index URL (HTTP 401 for " in lines[0]
    assert lines[0].endswith("nothing was checked (exit 2)")
    assert "wrong-Pw-3310" not in err and "STALE" not in err and "refused alpha" not in err


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("requirements-bad-line.txt", "requirements-bad-line.txt:2", ""),
        ("pylock.broken.toml", "pylock.broken.toml:7", "not valid TOML"),
        ("pylock.nohashes.toml", "pylock.nohashes.toml:8", "needs a hashes table"),
        ("pylock.future.toml", "pylock.future.toml", "lock-version '2.0' is not supported"),
    ],
)
def test_malformed_input_names_file_and_line(
    name: str,
    where: str,
    message: str,
    cdn: CDN,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = check(capsys, cdn, "-i", cdn.simple_url, str(DATA / name))
    assert code == 2, err
    assert out == ""
    assert f"error: {DATA / where.split(':')[0]}" in err
    assert where.rsplit("/", 1)[-1] in err
    assert message in err


def test_usage_errors(cdn: CDN, state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, cdn)
    assert code == 2 and "the following arguments are required: FILE" in err
    code, _, err = check(capsys, cdn, "--format", "xml", "r.txt")
    assert code == 2 and "invalid choice" in err
    code, _, err = check(capsys, cdn, "-i", cdn.simple_url, "does-not-exist.txt")
    assert code == 2 and "does-not-exist.txt" in err


def test_lock_without_index_or_table_headers_uses_configured_index(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Packages written as an inline array: no [[packages]] headers, so no line to point at.
    lock = write(
        tmp_path / "pylock.toml",
        'lock-version = "1.0"\n'
        'packages = [{name = "alpha", version = "1.0"}, {name = "alpha", version = "7.0"},\n'
        '  {name = "mine", directory = {path = "."}}]\n',
    )
    code, out, err = check(capsys, cdn, "--format", "sarif", "-i", cdn.simple_url, str(lock))
    assert code == 1, err
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "missing" and "region" not in result["locations"][0][
        "physicalLocation"
    ]
    code, out, _ = check(capsys, cdn, "-i", cdn.simple_url, str(lock))
    assert out.startswith(f"{lock}: alpha 7.0: missing: ")


def test_guard_report_and_help(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = write(tmp_path / "r.txt", "alpha==1.0\nbeta==1.0\n")
    report = tmp_path / "guard.json"
    code, _, err = check(
        capsys, cdn, "-i", cdn.simple_url, str(req), guard=("--guard-report", str(report))
    )
    assert code == 0, err
    doc = json.loads(report.read_text())
    assert doc["command"] == "check"
    assert {p["project"]: p["verdict"] for p in doc["pages"]} == {
        "alpha": "FRESH",
        "beta": "FRESH",
    }
    code, out, _ = check(capsys, cdn, "--help")
    assert code == 0 and "usage: safe-pip check" in out
