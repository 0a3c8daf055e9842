"""The static re-rankers (best-fixed, tuned-weights, MMR): slate probabilities that sum to 1 and
match what they sample, greedy slates equal to the env's own modes, and tuning that meets users
no evaluation meets and is cached."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import agents.evaluation.tuning as tuning
from agents.evaluation.tuning import TUNING_SEED, TuningBudget, load_or_tune
from agents.policies.baselines import StaticReranker
from envs.config import FEATURES, STRATEGIES, EnvConfig
from envs.core import SessionCore
from envs.world import build_world
from simulators.core.errors import ConfigError

TOPICS = np.array([0, 0, 1, 1, 2, 2, 3, 0, 1, 2])
VECTORS = np.random.default_rng(0).normal(size=(10, 4))
VECTORS /= np.linalg.norm(VECTORS, axis=1, keepdims=True)


def _observation(batch: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    features = rng.uniform(0.05, 0.9, (1, 6, len(FEATURES))).astype(np.float32)
    return {
        "candidates": np.tile(np.array([[0, 2, 4, 1, 6, 8]], dtype=np.int32), (batch, 1)),
        "candidate_features": np.tile(features, (batch, 1, 1)),
    }


POLICIES = [
    StaticReranker("best-fixed", TOPICS, strategy=STRATEGIES.index("one_per_topic"), temperature=0.7),
    StaticReranker("best-fixed", TOPICS, strategy=STRATEGIES.index("fresh_topics"), temperature=0.5),
    StaticReranker("best-fixed", TOPICS, strategy=STRATEGIES.index("explore")),
    StaticReranker("tuned-weights", TOPICS, weights=(0.9, 0.2, -0.3, 0.1, 0.4, -0.5, 0.3), temperature=0.8),
    StaticReranker("tuned-weights", TOPICS, weights=(0.9, 0.2, -0.3, 0.1, 0.4, -0.5, -0.3), temperature=0.8),
    StaticReranker("mmr", TOPICS, mmr_lambda=0.6, similarity="topic", temperature=0.6),
    StaticReranker("mmr", TOPICS, VECTORS, mmr_lambda=0.3, similarity="text", temperature=0.6),
]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.name}-{p.knobs}")
def test_slate_probabilities_sum_to_one_and_match_the_samples(policy: StaticReranker) -> None:
    k, n = 3, 6
    slates = np.array(list(itertools.permutations(range(n), k)))
    probability = policy.slate_probability(_observation(len(slates)), slates)
    assert probability.sum() == pytest.approx(1.0, abs=1e-9)
    draws = 40_000
    sampled = policy.slates(_observation(draws), k, np.random.default_rng(7))
    assert (np.sort(sampled, axis=1)[:, 1:] != np.sort(sampled, axis=1)[:, :-1]).all()  # distinct items
    keys, counts = np.unique(sampled, axis=0, return_counts=True)
    seen = {tuple(key): c / draws for key, c in zip(keys, counts, strict=True)}
    for slate, p in zip(map(tuple, slates), probability, strict=True):
        assert abs(seen.get(slate, 0.0) - p) < 5 * np.sqrt(p * (1 - p) / draws) + 3 / draws, (slate, p)


def test_one_per_topic_fills_distinct_topics_first() -> None:
    greedy = replace(POLICIES[0], temperature=0.0)
    slate = greedy.slates(_observation(), 4, None)[0]
    topics = TOPICS[_observation()["candidates"][0][slate]]
    assert len(set(topics.tolist())) == 4  # four topics among the six candidates: all distinct


@pytest.mark.parametrize("mode", ["discrete", "weights"])
def test_greedy_slates_are_the_envs_own(mode: str) -> None:
    """At temperature 0 the re-ranker's slate is the one the env shows for its native action."""
    config = EnvConfig(action_mode=mode, candidates="popularity")
    world = build_world(config)
    rng = np.random.default_rng(1)
    for trial in range(4):
        if mode == "discrete":
            policy = StaticReranker("best-fixed", world.simulator.item_topic, strategy=trial % 7)
        else:
            policy = StaticReranker(
                "tuned-weights", world.simulator.item_topic, weights=tuple(rng.uniform(-1, 1, 7))
            )
        assert policy.action_mode == mode
        core = SessionCore(config, world, batch=32)
        core.start_users(
            np.arange(32), np.arange(32) * 11 % len(world.user_weight), np.arange(32, dtype=np.uint64)
        )
        for _ in range(5):
            obs = core.observe()
            mine = np.take_along_axis(obs["candidates"], policy.slates(obs, config.slate_size, None), axis=1)
            core.step(core.check_actions(policy.act(obs, rng)))
            np.testing.assert_array_equal(mine, core.last_slate)


def test_bad_knobs_are_clear() -> None:
    with pytest.raises(ConfigError, match="7 weights"):
        StaticReranker("tuned-weights", TOPICS, weights=(1.0,))
    with pytest.raises(ConfigError, match="mmr_lambda"):
        StaticReranker("mmr", TOPICS, mmr_lambda=1.5)
    with pytest.raises(ConfigError, match="re-ranker"):
        StaticReranker("oracle", TOPICS)


def test_tuning_meets_users_no_evaluation_meets_and_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, EnvConfig]] = []
    original = tuning.run_sessions

    def recording(policy: Any, env: EnvConfig, episodes: int, seed: int, **options: Any) -> Any:
        calls.append((seed, env))
        return original(policy, env, episodes, seed, **options)

    monkeypatch.setattr(tuning, "run_sessions", recording)
    config = EnvConfig(candidates="popularity", simulator="true", max_steps=5)
    budget = TuningBudget(sessions=32, cem_population=4, cem_elite=2, cem_generations=2)
    first = load_or_tune("tuned-weights", config, budget)
    assert calls and all(seed >= TUNING_SEED for seed, _ in calls)
    assert all(env.simulator == "fitted" for _, env in calls)  # tuned in the fitted world
    # evaluation seeds: a run's seed + 10_000 (+ slot < 32) and seed + 30_000, for seeds far below
    evaluation = {
        s + offset + slot for s in range(100) for offset in (0, 10_000, 30_000) for slot in range(32)
    }
    assert not evaluation & {seed + slot for seed, _ in calls for slot in range(32)}
    calls.clear()
    assert load_or_tune("tuned-weights", config, budget).weights == first.weights and not calls  # cached
    file = tuning._cache_file("tuned-weights", config, budget)
    file.write_text("{not json")  # a broken cache entry is tuned again
    assert load_or_tune("tuned-weights", config, budget).weights == first.weights and calls
