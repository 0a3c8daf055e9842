"""Fault injection on the tuned-baselines cache (``$RECGYM_CACHE/baselines``): like every other
cache, an entry that was cut short, bit-flipped, replaced, edited by hand or lost its manifest is
reported in one line and tuned again, never used; a forged entry (its manifest rewritten to match)
whose knobs are not the re-ranker's is caught too. Tuning runs on the small shop with a tiny
budget, so each re-tune takes a fraction of a second."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import agents.evaluation.tuning as tuning
from agents.evaluation.tuning import TuningBudget, load_or_tune
from envs.config import STRATEGIES, EnvConfig
from simulators.core.storage import write_manifest
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP
from tests.core.test_cache_faults import FAULTS

pytestmark = pytest.mark.usefixtures("own_cache")  # these tests break cache entries on purpose

BUDGET = TuningBudget(sessions=4, cem_population=2, cem_elite=1, cem_generations=1)
NAME = "best-fixed"


@pytest.fixture(scope="module")
def config() -> EnvConfig:
    """The small shop's world, popularity candidates (no CTR model), short sessions."""
    return EnvConfig(data=str(shop_folder(SMALL_SHOP)), candidates="popularity", max_steps=5)


@pytest.fixture
def tunings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The seeds of every tuning session played from here on (empty: nothing was tuned)."""
    seeds: list[int] = []
    original = tuning.run_sessions

    def recording(policy: Any, env: EnvConfig, episodes: int, seed: int, **options: Any) -> Any:
        seeds.append(seed)
        return original(policy, env, episodes, seed, **options)

    monkeypatch.setattr(tuning, "run_sessions", recording)
    yield seeds


def manifest_of(entry: Path) -> Path:
    return entry.with_name(f"{entry.stem}.manifest.json")


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def edit_knobs(entry: Path) -> None:
    """A hand edit: valid JSON, another strategy (the manifest no longer matches)."""
    record = json.loads(entry.read_text())
    record["knobs"]["strategy"] = (record["knobs"]["strategy"] + 1) % len(STRATEGIES)
    entry.write_text(json.dumps(record))


ENTRY_FAULTS: dict[str, Callable[[Path], None]] = {**FAULTS, "knob-edited": edit_knobs}


def test_a_tuned_entry_is_written_with_its_manifest_and_served_from_the_cache(
    config: EnvConfig, tunings: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    first = load_or_tune(NAME, config, BUDGET)
    entry = tuning._cache_file(NAME, config, BUDGET)
    assert entry.is_file() and manifest_of(entry).is_file()
    capsys.readouterr()
    tunings.clear()
    assert load_or_tune(NAME, config, BUDGET).strategy == first.strategy
    assert not tunings and not warnings_in(capsys.readouterr().err)


@pytest.mark.parametrize("fault", ENTRY_FAULTS)
def test_a_broken_entry_is_reported_in_one_line_and_tuned_again(
    config: EnvConfig, tunings: list[int], capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    first = load_or_tune(NAME, config, BUDGET)
    entry = tuning._cache_file(NAME, config, BUDGET)
    ENTRY_FAULTS[fault](entry)
    capsys.readouterr()
    tunings.clear()
    again = load_or_tune(NAME, config, BUDGET)
    reported = warnings_in(capsys.readouterr().err)
    assert len(reported) == 1, reported
    assert reported[0].startswith(f"warning: rebuilding the cached tuned baseline {NAME!r} in {entry}: ")
    assert tunings, "the broken entry was used instead of tuning again"
    assert again.strategy == first.strategy  # the same tuning users: the same pick
    tunings.clear()
    assert load_or_tune(NAME, config, BUDGET).strategy == first.strategy
    assert not tunings and not warnings_in(capsys.readouterr().err)  # healed


@pytest.mark.parametrize(
    ("knobs", "name", "problem"),
    [
        ({"strategy": len(STRATEGIES)}, NAME, "strategy must lie in"),
        ({"strategy": "3"}, NAME, "not an integer"),
        ({"strategy": 1, "mmr_lambda": 0.5}, NAME, "its knobs are not ['strategy']"),
        ({"mmr_lambda": 0.5, "similarity": "topic"}, "mmr", "the knobs of 'mmr'"),
    ],
)
def test_a_forged_entry_with_knobs_that_are_not_the_rerankers_is_tuned_again(
    config: EnvConfig,
    tunings: list[int],
    capsys: pytest.CaptureFixture[str],
    knobs: Any,
    name: str,
    problem: str,
) -> None:
    first = load_or_tune(NAME, config, BUDGET)
    entry = tuning._cache_file(NAME, config, BUDGET)
    entry.write_text(json.dumps({"name": name, "knobs": knobs, "report": {}}))
    write_manifest(manifest_of(entry), [entry])  # the manifest vouches for the forged bytes
    capsys.readouterr()
    tunings.clear()
    assert load_or_tune(NAME, config, BUDGET).strategy == first.strategy
    reported = warnings_in(capsys.readouterr().err)
    assert len(reported) == 1 and problem in reported[0], reported
    assert tunings
