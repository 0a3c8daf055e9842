"""The compiled step against the numpy reference of the same equations."""

from __future__ import annotations

import numpy as np
import pytest

from envs import engine
from envs.ranking import RankingEnv
from simulators.dynamics import SessionState, advance, leave_probability


def _kernel_rank(scores: np.ndarray, topics: np.ndarray, k: int, one_per_topic: bool) -> np.ndarray:
    out = np.zeros(k, dtype=np.int64)
    engine._rank(
        scores,
        topics,
        k,
        one_per_topic,
        np.zeros(len(scores), dtype=bool),
        np.zeros(topics.max() + 1, dtype=bool),
        out,
    )
    return out


def test_ranking_is_a_stable_top_k() -> None:
    rng = np.random.default_rng(0)
    topics = rng.integers(0, 6, 50)
    for _ in range(300):
        scores = rng.integers(0, 6, 50).astype(np.float64)  # many ties
        np.testing.assert_array_equal(
            _kernel_rank(scores, topics, 5, False), np.argsort(-scores, kind="stable")[:5]
        )


def test_one_per_topic_puts_distinct_topics_first() -> None:
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    topics = np.array([0, 0, 1, 1, 2, 0])
    np.testing.assert_array_equal(_kernel_rank(scores, topics, 5, True), [0, 2, 4, 1, 3])


def test_kernel_matches_the_numpy_dynamics() -> None:
    """Replay the env's own slates and clicks through ``simulators.dynamics`` and the
    simulator's numpy response: same click probabilities, boredom, drift and leave hazard."""
    env = RankingEnv(simulator="true")
    env.reset(seed=4)
    core, simulator = env.core, env.core.world.simulator
    state = SessionState.fresh(1, core.world.n_topics)
    rng = np.random.default_rng(1)
    for _ in range(12):
        user = core.user.copy()
        _obs, _, terminated, truncated, info = env.step(rng.uniform(-1, 1, 50).astype(np.float32))
        items = info["slate"][None, :]
        expected = simulator.click_probability(user, items, state)
        np.testing.assert_allclose(core.last_p_click, expected, rtol=1e-5)  # float32 logit tables
        topics = simulator.item_topic[items]
        advance(simulator.dynamics, state, topics, core.last_click.astype(np.int64))
        np.testing.assert_allclose(core.state.boredom, state.boredom, rtol=1e-12)
        np.testing.assert_allclose(core.state.interest_drift, state.interest_drift, rtol=1e-12)
        hazard = leave_probability(simulator.dynamics, state, topics, core.last_click)
        assert 0 < hazard[0] < 1
        if terminated or truncated:
            break


def test_history_keeps_the_last_clicks_oldest_first() -> None:
    env = RankingEnv()
    env.reset(seed=2)
    before = env.core.history[0].copy()
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(np.linspace(1, -1, 50).astype(np.float32))
        clicked = info["slate"][env.core.last_click[0] > 0]
        valid = before[before >= 0].tolist() + clicked.tolist()
        expected = (valid[-20:] + [-1] * 20)[:20]
        np.testing.assert_array_equal(env.core.history[0], expected)
        before = env.core.history[0].copy()
        if terminated or truncated:
            break


@pytest.mark.parametrize("key", [0, 1, 2**52])
def test_batched_uniforms_are_the_per_slot_hash(key: int) -> None:
    keys = np.array([key, key + 7], dtype=np.uint64)
    steps = np.array([3, 0])
    batched = engine.counter_uniforms(keys, steps, 11)
    for b in range(2):
        expected = [engine.splitmix_uniform(keys[b], int(steps[b]), j) for j in range(11)]
        np.testing.assert_array_equal(batched[b], expected)
