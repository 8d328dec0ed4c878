"""The consistency torture run, short and seeded (``python -m benchmarks.torture`` runs 500).

Two tests: the judge can tell a stale view (plain pip behind a lost purge is caught) and a
right refusal, and a short random schedule gives safe-pip no stale install and no wrong
refusal.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def torture() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_torture_under_test", ROOT / "benchmarks" / "torture.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_judge_catches_a_stale_view(torture: ModuleType, tmp_path: Path) -> None:
    world = torture._World(random.Random(0), projects=1, edges=2, ttl=None)
    try:
        name = world.names[0]
        for edge in range(2):  # every edge keeps pip's copy (JSON, gzip) of the page
            world.cdn.pin(edge)
            requests.get(
                f"{world.cdn.simple_url}{name}/",
                headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                timeout=30,
            ).raise_for_status()
        world.cdn.pin(None)
        world.mutate([None, None])  # whatever it was, no edge hears of it
        while world.history[-1][1] == world.history[-2][1]:  # a role change changes nothing
            world.mutate([None, None])
        plain = torture._install(world, 0, "pip", name, tmp_path, 5.0)
        assert plain.stale, plain
        world.warm(name, rounds=4)  # every copy the guard may ask for is the stale one
        refused = torture._install(world, 1, "safe-pip", name, tmp_path, 1.0)
        assert refused.refused and not refused.wrong_refusal, refused  # a right refusal
        world.cdn.purge_now()  # the lost purge, delivered late
        guarded = torture._install(world, 2, "safe-pip", name, tmp_path, 5.0)
        assert not guarded.stale and not guarded.refused, guarded
        assert guarded.resolved == world.history[-1][1][name]
    finally:
        world.close()


def test_short_seeded_torture_run(torture: ModuleType, state_dir: Path) -> None:
    result = torture.run_torture(12, seed=7, workers=2, max_wait=8.0)
    assert result["installs"] == 12
    assert result["plain"] + result["guarded"] == 12 and result["guarded"] > 0
    assert result["mutations"] > 0
    assert result["guarded_stale"] == 0, result["problems"]
    assert result["wrong_refusals"] == 0, result["problems"]


def test_the_refusal_judge(torture: ModuleType, tmp_path: Path) -> None:
    world = torture._World(random.Random(0), projects=1, edges=1, ttl=None)
    try:
        name = world.names[0]
        first = world.origin.project_serial(name)
        gone = world.origin.remove_project(name)
        back = world.origin.publish(name, "9.0")

        def wrong(
            seen: int | None, required: int | None, verdict: str = "STALE", what: str = name
        ) -> bool:
            refusal = {"project": what, "seen": seen, "required": required,
                       "verdict": verdict, "reason": "test"}  # fmt: skip
            (tmp_path / "g.json").write_text(torture.json.dumps({"refusals": [refusal]}))
            return bool(torture._judge_refusal(world, tmp_path / "g.json", "")[0])

        assert not wrong(first, back)  # a content change between: the view was stale
        assert wrong(back, back)  # nothing newer than what was seen
        assert not wrong(None, back)  # a cached 404 of a project that exists again
        assert wrong(None, gone)  # a 404 of a removed project is the truth
        assert wrong(None, None)
        live = f"{name.replace('-', '_')}-9.0-py3-none-any.whl"
        assert live in world.origin._files
        assert wrong(None, None, "FILE", live)  # the file host serves it: a wrong refusal
        assert not wrong(None, None, "FILE", live.replace("9.0", "1.0"))  # removed: right
    finally:
        world.close()
