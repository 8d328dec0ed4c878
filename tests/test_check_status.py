"""PEP 792 project status in ``safe-pip check`` (archived, deprecated, quarantined findings,
``--fail-on``, releases removed without a yank) and the warning ``safe-pip install`` prints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from _guarded import installed, safe_pip

from safe_pip.cli import main
from safe_pip.testing import CDN, Origin

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "check" / "sarif-schema-2.1.0.json").read_text("utf-8")
)


pytestmark = pytest.mark.usefixtures("no_network")  # conftest


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin() as server:  # the pypi profile: simple API 1.4 with project-status
        for name in ("oldlib", "shim", "evil", "alpha"):
            server.publish(name, "1.0")
        server.publish("alpha", "2.0")
        server.set_status("oldlib", "archived", "Superseded by newlib.")
        server.set_status("shim", "deprecated", "Use the standard library instead.")
        server.set_status("evil", "quarantined")
        server.quarantine_release("alpha", "2.0")
        yield server


@pytest.fixture
def cdn(origin: Origin) -> Iterator[CDN]:
    with CDN(origin, edges=1) as server:
        yield server


def check(
    capsys: pytest.CaptureFixture[str], cdn: CDN, tmp_path: Path, text: str, *args: str
) -> tuple[int, str, str]:
    req = tmp_path / "requirements.txt"
    req.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(
        ["--changelog", cdn.changelog_url, "check", "--index-url", cdn.simple_url, *args, str(req)]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_archived_and_deprecated_are_warnings_that_do_not_fail_by_default(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(capsys, cdn, tmp_path, "oldlib==1.0\nshim==1.0\n")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        f"requirements.txt:1: oldlib 1.0: archived: {cdn.simple_url} marks oldlib archived: "
        "Superseded by newlib."
    )
    assert lines[1].endswith(
        "shim 1.0: deprecated: "
        f"{cdn.simple_url} marks shim deprecated: Use the standard library instead."
    )
    assert "2 findings (0 of the kinds that fail the check)" in err


def test_fail_on_chooses_the_kinds_that_set_exit_1(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = check(capsys, cdn, tmp_path, "oldlib==1.0\n", "--fail-on", "archived,missing")
    assert code == 1, err
    assert "1 findings" in err
    # Without quarantined among them, a quarantined pin is reported and passes.
    code, out, err = check(capsys, cdn, tmp_path, "evil==1.0\n", "--fail-on", "missing")
    assert code == 0, err
    assert ": evil 1.0: quarantined: " in out
    code, _, err = check(capsys, cdn, tmp_path, "evil==1.0\n", "--fail-on", "bogus")
    assert code == 2
    assert "--fail-on: no finding kind 'bogus'" in err


def test_quarantined_project_is_an_error_not_a_missing_pin(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(capsys, cdn, tmp_path, "evil==1.0\n", "--format", "json")
    assert code == 1, err
    findings = json.loads(out)["findings"]
    assert [(f["kind"], f["level"]) for f in findings] == [("quarantined", "error")]
    assert findings[0]["message"] == f"{cdn.simple_url} marks evil quarantined"


def test_release_gone_without_a_yank_is_missing_with_the_reason(
    cdn: CDN, origin: Origin, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serial = origin.project_serial("alpha")
    code, out, err = check(capsys, cdn, tmp_path, "alpha==2.0\nalpha==3.0\n")
    assert code == 1, err
    gone, never = out.splitlines()
    assert gone.endswith(
        "requirements.txt:1: alpha 2.0: missing: removed from the index (deleted or "
        f"quarantined): {cdn.simple_url} lists no files of 2.0 (page serial {serial}), though the "
        "index still lists the version"
    )
    # A version the index never had is not said to be removed.
    assert never.endswith(
        f"requirements.txt:2: alpha 3.0: missing: {cdn.simple_url} lists no files of 3.0 "
        f"(page serial {serial})"
    )


def test_sarif_rules_carry_each_kinds_level(
    cdn: CDN, tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(
        capsys, cdn, tmp_path, "oldlib==1.0\nshim==1.0\nevil==1.0\n", "--format", "sarif"
    )
    assert code == 1, err
    log = json.loads(out)
    jsonschema.validate(log, SCHEMA)
    run = log["runs"][0]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in run["tool"]["driver"]["rules"]}
    assert levels["archived"] == levels["deprecated"] == "warning"
    assert levels["quarantined"] == levels["missing"] == "error"
    assert sorted((r["ruleId"], r["level"]) for r in run["results"]) == [
        ("archived", "warning"),
        ("deprecated", "warning"),
        ("quarantined", "error"),
    ]


def test_install_warns_once_for_an_archived_project(
    cdn: CDN, tmp_path: Path, state_dir: Path
) -> None:
    target = tmp_path / "target"
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(target), "oldlib", "shim",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert installed(target) == {"oldlib": "1.0", "shim": "1.0"}
    warnings = [line for line in proc.stderr.splitlines() if "archived" in line]
    assert warnings == [
        f"safe-pip: warning: oldlib is archived (no further releases or fixes are expected) "
        f"on {cdn.simple_url}: Superseded by newlib."
    ]
    assert "deprecated" not in proc.stderr  # install warns of quarantined and archived only


def test_a_locked_release_gone_from_an_index_without_pep700_versions(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Origin(profile="devpi") as devpi:  # API 1.0: no "versions" to tell a release existed
        devpi.publish("alpha", "1.0")
        devpi.publish("alpha", "2.0")
        wheel = "alpha-2.0-py3-none-any.whl"
        lock = tmp_path / "pylock.toml"
        lock.write_text(
            'lock-version = "1.0"\ncreated-by = "test"\n\n[[packages]]\nname = "alpha"\n'
            f'version = "2.0"\nindex = "{devpi.simple_url}"\n\n[[packages.wheels]]\n'
            f'name = "{wheel}"\nurl = "{devpi.file_url(wheel)}"\n'
            f'hashes = {{sha256 = "{hashlib.sha256(devpi.file_bytes(wheel)).hexdigest()}"}}\n',
            encoding="utf-8",
        )
        devpi.quarantine_release("alpha", "2.0")
        capsys.readouterr()
        code = main(["check", str(lock)])
        out, err = capsys.readouterr()
    assert code == 1, err
    assert out.endswith(
        "pylock.toml:4: alpha 2.0: missing: removed from the index (deleted or quarantined): "
        f"{devpi.simple_url} lists no files of 2.0 (page serial 6), though the lock names its "
        "files\n"
    )


def test_install_warns_for_a_quarantined_project_pip_cannot_install(
    cdn: CDN, tmp_path: Path, state_dir: Path
) -> None:
    proc = safe_pip(
        "--changelog", cdn.changelog_url,
        "install", "--index-url", cdn.simple_url, "--target", str(tmp_path / "t"), "evil",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # pip's own: the page lists no files
    assert (
        "safe-pip: warning: evil is quarantined (under review, e.g. for malware) on "
        f"{cdn.simple_url}\n"
    ) in proc.stderr
    assert "No matching distribution found for evil" in proc.stderr
