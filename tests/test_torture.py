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
