"""``safe-pip check`` on the lock files uv, Poetry and PDM write, against a local index.

The uv lock is written by the real uv (a test dependency) against the simulator in each test.
Poetry and PDM do not install offline, so their locks in ``tests/data/locks`` were written by
the real tools (the version is in each file's first comment) against the simulator with this
module's releases (its wheels are the same bytes in every run), hosts replaced by
``index.example`` (the main index), ``private.index.example`` (a second index) and
``files.example``; each test puts its own servers' URLs back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from _guarded import check, tool

from safe_pip.cli import main
from safe_pip.testing import CDN, Origin, fill_cache

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((DATA / "check" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


pytestmark = pytest.mark.usefixtures("no_network")  # conftest


@dataclass
class Indexes:
    main: Origin
    cdn: CDN  # in front of main
    private: Origin

    def unbreak_hosts(self, text: str) -> str:
        """A committed lock's hosts replaced by this test's servers."""
        return (
            text.replace("https://index.example/simple", self.cdn.simple_url.rstrip("/"))
            .replace("https://private.index.example/simple", self.private.simple_url.rstrip("/"))
            .replace("https://files.example", self.main.files_url.rstrip("/"))
            .replace("https://private.files.example", self.private.files_url.rstrip("/"))
        )


def publish_all(main: Origin, private: Origin) -> None:
    """The releases the committed locks were written against."""
    main.publish("alpha", "1.0")
    main.publish("alpha", "2.0", requires=["beta>=1.0"])
    main.publish("beta", "1.0")
    main.publish("gamma", "0.5")
    main.publish("delta", "3.0")
    private.publish("epsilon", "1.0")


def break_index(main: Origin) -> None:
    """gamma yanked, delta 3.0 gone (missing), beta's locked wheel replaced (changed)."""
    main.yank("gamma", "0.5", reason="broken build")
    main.remove_release("delta", "3.0")
    main.add_wheels("beta", "1.0", ["py2-none-any"])
    main.remove_file("beta", "beta-1.0-py3-none-any.whl")


@pytest.fixture
def indexes() -> Iterator[Indexes]:
    with Origin() as main, Origin() as private:
        publish_all(main, private)
        with CDN(main, edges=1) as cdn:
            yield Indexes(main, cdn, private)


def header_line(text: str, name: str) -> int:
    """The line of the ``[[package]]`` header of the entry named ``name``."""
    lines = text.splitlines()
    at = lines.index(f'name = "{name}"')
    assert lines[at - 1] == "[[package]]"
    return at  # 1-based line of the header, one above the name


def assert_broken_index_found(
    capsys: pytest.CaptureFixture[str], idx: Indexes, lock: str, text: str
) -> None:
    """After ``break_index``, a check of the lock names each finding at its entry's line."""
    break_index(idx.main)
    code, out, err = check(capsys, idx.cdn, "-i", idx.cdn.simple_url, lock)
    assert code == 1, err
    assert [line.split(": ", 3)[:3] for line in out.splitlines()] == [
        [f"{lock}:{header_line(text, 'beta')}", "beta 1.0", "changed"],
        [f"{lock}:{header_line(text, 'delta')}", "delta 3.0", "missing"],
        [f"{lock}:{header_line(text, 'gamma')}", "gamma 0.5", "yanked"],
    ]


def uv_lock(project: Path, idx: Indexes) -> str:
    """``uv lock`` by the real uv: alpha, gamma, delta from the main index (through the CDN),
    epsilon from a second named index, a local wheel by path, and the project itself."""
    project.mkdir()
    local = project / "localpkg-1.0-py3-none-any.whl"
    local.write_bytes(idx.private.file_bytes("localpkg-1.0-py3-none-any.whl"))
    (project / "pyproject.toml").write_text(
        f"""\
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["alpha==2.0", "gamma", "delta", "epsilon", "localpkg"]

[tool.uv.sources]
epsilon = {{ index = "private" }}
localpkg = {{ path = "localpkg-1.0-py3-none-any.whl" }}

[[tool.uv.index]]
name = "main"
url = "{idx.cdn.simple_url}"
default = true

[[tool.uv.index]]
name = "private"
url = "{idx.private.simple_url}"
explicit = true
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(
        UV_CACHE_DIR=str(project / "uv-cache"),
        XDG_CONFIG_HOME=str(project / "config"),  # no user or system uv.toml
        XDG_CONFIG_DIRS=str(project / "config"),
        UV_PYTHON_DOWNLOADS="never",
        NO_PROXY="127.0.0.1,localhost",
    )
    proc = subprocess.run(
        [tool("uv"), "lock", "--python", sys.executable],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return (project / "uv.lock").read_text(encoding="utf-8")


@pytest.fixture
def uv_indexes(indexes: Indexes) -> Indexes:
    indexes.private.publish("localpkg", "1.0")  # only to have its wheel's bytes
    return indexes


def test_uv_lock_clean_then_yanked_missing_changed(
    uv_indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = uv_indexes
    text = uv_lock(tmp_path / "proj", idx)
    lock = str(tmp_path / "proj" / "uv.lock")
    # --index-url names which of the lock's indexes --changelog belongs to.
    code, out, err = check(capsys, idx.cdn, "-i", idx.cdn.simple_url, lock)
    assert code == 0, err + out
    assert out == ""
    assert (
        "checked 5 pins in 1 files on 2 indexes: no findings; "
        "2 locked packages not from an index skipped" in err
    )
    assert f"freshness not proven on {idx.cdn.simple_url}" not in err  # the changelog proved it

    break_index(idx.main)
    code, out, err = check(capsys, idx.cdn, "-i", idx.cdn.simple_url, lock)
    assert code == 1, err
    assert out.splitlines() == [
        f"{lock}:{header_line(text, 'beta')}: beta 1.0: changed: beta-1.0-py3-none-any.whl "
        "is no longer listed for 1.0 (the index lists 1 other files)",
        # The lock names delta's files, so the release was removed, not mistyped.
        f"{lock}:{header_line(text, 'delta')}: delta 3.0: missing: removed from the index "
        f"(deleted or quarantined): {idx.cdn.simple_url} lists no files of 3.0 (page serial "
        f"{idx.main.project_serial('delta')}), though the lock names its files",
        f"{lock}:{header_line(text, 'gamma')}: gamma 0.5: yanked: the release is yanked: "
        "broken build",
    ]


def test_uv_lock_json_and_sarif_at_lock_lines(
    uv_indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = uv_indexes
    text = uv_lock(tmp_path / "proj", idx)
    lock = str(tmp_path / "proj" / "uv.lock")
    idx.main.yank("gamma", "0.5")
    code, out, _ = check(capsys, idx.cdn, "--format", "json", lock)
    assert code == 1
    doc = json.loads(out)
    assert (doc["pins"], doc["skipped"]) == (5, 2)
    assert [(f["project"], f["kind"], f["line"]) for f in doc["findings"]] == [
        ("gamma", "yanked", header_line(text, "gamma"))
    ]
    # Each package on its own index: epsilon's page was read on the private index only.
    serials = {i["url"]: sorted(i["serials"]) for i in doc["indexes"]}
    assert serials == {
        idx.cdn.simple_url: ["alpha", "beta", "delta", "gamma"],
        idx.private.simple_url: ["epsilon"],
    }
    code, out, _ = check(capsys, idx.cdn, "--format", "sarif", lock)
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "yanked"
    assert result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": header_line(text, "gamma")
    }


def test_uv_lock_stale_page_is_waited_out_or_refused_never_missing(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for delay, code_wanted in ((0.5, 1), (None, 75)):
        with Origin() as main_origin, Origin() as private:
            publish_all(main_origin, private)
            private.publish("localpkg", "1.0")
            with CDN(main_origin, edges=1, purge_delays=[delay]) as cdn:
                project = tmp_path / f"proj-{delay}"
                uv_lock(project, Indexes(main_origin, cdn, private))
                fill_cache(cdn, "delta")  # the edge holds delta's page with 3.0
                main_origin.remove_release("delta", "3.0")
                code, out, err = check(
                    capsys,
                    cdn,
                    "-i",
                    cdn.simple_url,
                    str(project / "uv.lock"),
                    guard=("--max-wait", "3"),
                )
        assert code == code_wanted, err + out
        if delay is None:  # purge lost: refused, nothing judged
            assert out == ""
            assert "refused delta from" in err and "STALE" in err
            assert "nothing was checked" in err
        else:  # purged within --max-wait: the fresh page says 3.0 is gone
            assert out.splitlines() == [out.splitlines()[0]]
            assert "delta 3.0: missing" in out


def test_poetry_lock_two_sources(
    indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = indexes.unbreak_hosts((DATA / "locks" / "poetry" / "poetry.lock").read_text())
    lock = tmp_path / "poetry.lock"
    lock.write_text(text, encoding="utf-8")
    code, out, err = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, str(lock))
    assert code == 0, err + out
    assert "checked 5 pins in 1 files on 2 indexes: no findings" in err
    assert "skipped" not in err

    assert_broken_index_found(capsys, indexes, str(lock), text)


def test_poetry_lock_hash_mismatch(
    indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = indexes.unbreak_hosts((DATA / "locks" / "poetry" / "poetry.lock").read_text())
    digest = text.split('{file = "alpha-2.0-py3-none-any.whl", hash = "sha256:', 1)[1][:64]
    lock = tmp_path / "poetry.lock"
    lock.write_text(text.replace(digest, "0" * 64), encoding="utf-8")
    code, out, _ = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, str(lock))
    assert code == 1
    assert out == (
        f"{lock}:{header_line(text, 'alpha')}: alpha 2.0: hash-mismatch: "
        f"alpha-2.0-py3-none-any.whl: the lock has sha256:{'0' * 64}, the index lists {digest}\n"
    )


@pytest.mark.parametrize("name", ["pdm.lock", "static-urls.lock"])
def test_pdm_lock_sources_from_pyproject(
    name: str,
    indexes: Indexes,
    tmp_path: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pdm.lock names no index: PDM's sources come from the pyproject.toml beside it (a
    ``pypi`` source replacing the default, a second one for epsilon only). The static-URLs
    lock has another name: it is told by its content."""
    for file in (name, "pyproject.toml"):
        text = indexes.unbreak_hosts((DATA / "locks" / "pdm" / file).read_text())
        (tmp_path / file).write_text(text, encoding="utf-8")
    text = (tmp_path / name).read_text(encoding="utf-8")
    lock = str(tmp_path / name)
    code, out, err = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, lock)
    assert code == 0, err + out
    assert (
        "checked 5 pins in 1 files on 2 indexes: no findings; "
        "1 locked packages not from an index skipped" in err
    )
    assert_broken_index_found(capsys, indexes, lock, text)


def test_all_lock_kinds_at_once_beside_requirements(
    uv_indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = uv_indexes
    uv_lock(tmp_path / "uvproj", idx)
    for kind in ("poetry", "pdm"):
        (tmp_path / kind).mkdir()
        for source in (DATA / "locks" / kind).iterdir():
            (tmp_path / kind / source.name).write_text(idx.unbreak_hosts(source.read_text()))
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==1.0\n", encoding="utf-8")
    files = [
        str(tmp_path / "uvproj" / "uv.lock"),
        str(tmp_path / "poetry" / "poetry.lock"),
        str(tmp_path / "pdm" / "pdm.lock"),
        str(req),
    ]
    code, out, err = check(capsys, idx.cdn, "-i", idx.cdn.simple_url, *files)
    assert code == 0, err + out
    assert "checked 16 pins in 4 files on 2 indexes: no findings; " in err
    assert "3 locked packages not from an index skipped" in err


@pytest.mark.parametrize(
    ("name", "text", "where", "message"),
    [
        ("uv.lock", "version = 1\n[[package]\n", 2, "not valid TOML"),
        (
            "uv.lock",
            'version = 1\nrevision = 3\nrequires-python = ">=3.10"\n\n[[package]]\n'
            'name = "a"\nversion = "1.0"\nsource = { registry = "https://index.example/simple" }\n'
            'wheels = [{ url = "https://files.example/a-1.0-py3-none-any.whl", hash = "md5" }]\n',
            5,
            "package[0]: wheels[0].hash must be 'algorithm:hexdigest'",
        ),
        (
            "poetry.lock",
            '[[package]]\nname = "a"\nversion = "one"\n\n[metadata]\n'
            'lock-version = "2.1"\ncontent-hash = "x"\n',
            1,
            "package[0]: version 'one' is not a valid version (PEP 440)",
        ),
        (
            "pdm.lock",
            '[metadata]\nlock_version = "4.5.0"\n\n[[package]]\nname = "a"\n'
            'version = "1.0"\nfiles = "a.whl"\n',
            4,
            "package[0]: files must be an array",
        ),
    ],
)
def test_malformed_lock_is_one_line_with_file_and_line(
    name: str,
    text: str,
    where: int,
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = tmp_path / name
    lock.write_text(text, encoding="utf-8")
    code = main(["check", str(lock)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"safe-pip: error: {lock}:{where}: {message}"), err


def test_hook_file_pattern_takes_the_new_locks() -> None:
    hooks = (Path(__file__).parents[1] / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    match = re.search(r"^  files: (.+)$", hooks, re.MULTILINE)
    assert match is not None
    pattern = re.compile(match.group(1))
    for path in (
        "uv.lock",
        "sub/uv.lock",
        "poetry.lock",
        "a/pdm.lock",
        "pylock.toml",
        "requirements-dev.txt",
    ):
        assert pattern.search(path), path
    for path in ("Cargo.lock", "yarn.lock", "package-lock.json", "notuv.lock"):
        assert not pattern.search(path), path


def test_uv_lock_download_hashes_the_locked_bytes(
    uv_indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idx = uv_indexes
    text = uv_lock(tmp_path / "proj", idx)
    lock = tmp_path / "proj" / "uv.lock"
    code, out, err = check(capsys, idx.cdn, "--download", "-i", idx.cdn.simple_url, str(lock))
    assert code == 0, err + out
    digest = text.split('/gamma-0.5-py3-none-any.whl", hash = "sha256:', 1)[1][:64]
    lock.write_text(text.replace(digest, "e" * 64), encoding="utf-8")
    code, out, _ = check(capsys, idx.cdn, "--download", "-i", idx.cdn.simple_url, str(lock))
    assert code == 1
    assert out == (
        f"{lock}:{header_line(text, 'gamma')}: gamma 0.5: hash-mismatch: "
        f"gamma-0.5-py3-none-any.whl: the lock has sha256:{'e' * 64}, its bytes hash {digest}\n"
    )


def test_lock_index_reached_with_the_command_lines_credentials(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Poetry and uv leave credentials out of the lock: the same index given on the command
    line with them is the one used."""
    with Origin(basic_auth=("user", "s3cret")) as main_origin, Origin() as private:
        publish_all(main_origin, private)
        text = (
            (DATA / "locks" / "poetry" / "poetry.lock")
            .read_text(encoding="utf-8")
            .replace("https://index.example/simple", main_origin.simple_url.rstrip("/"))
            .replace("https://private.index.example/simple", private.simple_url.rstrip("/"))
        )
        lock = tmp_path / "poetry.lock"
        lock.write_text(text, encoding="utf-8")
        capsys.readouterr()
        assert main(["check", str(lock)]) == 2
        err = capsys.readouterr().err
        assert "needs credentials and none were available" in err
        with_credentials = main_origin.simple_url.replace("http://", "http://user:s3cret@")
        code = main(["check", "-i", with_credentials, str(lock)])
        out, err = capsys.readouterr()
        assert code == 0, err + out
        assert "s3cret" not in err + out
        assert "checked 5 pins in 1 files on 2 indexes: no findings" in err


def test_pdm_find_links_source_serves_a_pin(
    indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package PDM can take from a ``find_links`` source is not ``missing`` from the index."""
    for file in ("pdm.lock", "pyproject.toml"):
        text = indexes.unbreak_hosts((DATA / "locks" / "pdm" / file).read_text())
        (tmp_path / file).write_text(text, encoding="utf-8")
    lock = str(tmp_path / "pdm.lock")
    indexes.main.remove_release("delta", "3.0")
    code, out, _ = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, lock)
    assert code == 1 and "delta 3.0: missing" in out
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "delta-3.0-py3-none-any.whl").write_bytes(b"not read")
    with (tmp_path / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[[tool.pdm.source]]\nname = "local"\nurl = "wheels"\ntype = "find_links"\n')
    code, out, err = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, lock)
    assert code == 0, err + out


def test_poetry_lock_pins_get_the_project_status_findings(
    indexes: Indexes, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = indexes.unbreak_hosts((DATA / "locks" / "poetry" / "poetry.lock").read_text())
    lock = tmp_path / "poetry.lock"
    lock.write_text(text, encoding="utf-8")
    indexes.main.set_status("gamma", "archived", "No more releases.")
    indexes.main.set_status("delta", "quarantined")
    code, out, err = check(capsys, indexes.cdn, "-i", indexes.cdn.simple_url, str(lock))
    assert code == 1, err  # quarantined fails the check; archived alone would not
    assert [line.split(": ", 3)[:3] for line in out.splitlines()] == [
        [f"{lock}:{header_line(text, 'delta')}", "delta 3.0", "quarantined"],
        [f"{lock}:{header_line(text, 'gamma')}", "gamma 0.5", "archived"],
    ]
    assert "No more releases." in out
