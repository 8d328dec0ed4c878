"""``safe-pip status``: where state is kept, what is remembered per index, ``--forget``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from safe_pip.authority.state import StateStore
from safe_pip.cli import main
from safe_pip.index.journal import JournalSummary

INDEX = "https://index.example/simple/"
OTHER = "https://mirror.example/simple/"


@pytest.fixture
def store(state_dir: Path) -> StateStore:
    store = StateStore()
    assert store.root == state_dir
    store.remember("https://user:secret@index.example/simple", {"alpha": 1041, "Beta": 1043})
    store.save_journal(INDEX, JournalSummary(1000, 1050, {"alpha": 1041, "gamma": 1049}))
    store.remember(OTHER, {"alpha": 7})
    return store


def test_text_lists_each_index(
    store: StateStore, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"state directory: {state_dir}" in out
    assert "secret" not in out
    lines = out.splitlines()
    at = lines.index(INDEX)
    assert lines[at + 1 : at + 4] == [
        "  projects remembered: 2",
        "  newest serial: 1043",
        "  journal tail cached: serials 1000..1050, 2 projects with content changes",
    ]
    at = lines.index(OTHER)
    assert lines[at + 3] == "  journal tail cached: none"


def test_json(store: StateStore, state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["state_dir"] == str(state_dir)
    by_key = {i["key"]: i for i in doc["indexes"]}
    assert by_key[INDEX] == {
        "key": INDEX,
        "projects": 2,
        "newest_serial": 1043,
        "journal_low": 1000,
        "journal_head": 1050,
        "journal_size": 2,
    }
    assert by_key[OTHER]["journal_head"] is None


def test_forget_one_index(store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--forget", "https://INDEX.example:443/simple"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"forgot {INDEX}: 2 project serials, the cached journal tail")
    assert [s.key for s in store.indexes()] == [OTHER]  # the other index is untouched
    assert store.remembered(INDEX) == {}
    assert main(["status", "--forget", INDEX]) == 0
    assert capsys.readouterr().out.startswith(f"nothing remembered about {INDEX}")
    assert main(["status", "--forget", OTHER, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["forgot"] == OTHER and doc["index"]["projects"] == 1
    assert store.indexes() == []


def test_empty_state_and_usage_errors(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    assert "nothing remembered yet" in capsys.readouterr().out
    assert main(["status", "--forget", "no-scheme"]) == 2
    assert "--forget" in capsys.readouterr().err
    assert main(["status", "--bogus"]) == 2
    assert "--bogus" in capsys.readouterr().err
