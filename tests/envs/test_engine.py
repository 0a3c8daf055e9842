"""envs.engine: the compiled step against the numpy reference of the same equations, the ranking
kernel, the counter-based uniforms and the parallel kernel."""

from __future__ import annotations

import numpy as np
import pytest

from envs import engine
from envs.config import EnvConfig
from envs.core import SessionCore
from envs.engine import counter_uniforms
from envs.ranking import RankingEnv
from envs.vector import RankingVectorEnv
from envs.world import build_world
from simulators.dynamics import DynamicsParams, SessionState, UserTraits, advance, leave_probability
from simulators.response import ResponseTables


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


def session_normals(keys: np.ndarray) -> np.ndarray:
    """``(B,)`` :func:`envs.engine.session_normal` of each key."""
    return np.array([engine.session_normal(key) for key in keys])


@pytest.mark.parametrize("simulator", ["true", "fitted"])
def test_kernel_matches_the_numpy_equations(simulator: str) -> None:
    """Every output of the compiled step against :mod:`simulators.dynamics` and the simulator's
    numpy response, for 64 users over 15 steps: click and purchase probabilities, the draws
    they make from the session's uniforms, drift, boredom and the leave hazard, each user with
    their own traits."""
    config = EnvConfig(simulator=simulator)
    world = build_world(config)
    core = SessionCore(config, world, batch=64)
    users = np.arange(64) * 7 % len(world.user_weight)
    core.start_users(np.arange(64), users, np.arange(64, dtype=np.uint64) * 977 + 5)
    model, k = world.simulator, config.slate_size
    state = SessionState.fresh(64, world.n_topics, model.user_traits, users)
    # each session's own leave offset, fixed by its key (planted: the shop's fit finds none)
    core.params[engine.P_LEAVE_SESSION_SD] = 0.9
    own = 0.9 * session_normals(core.key)
    state.leave_offset = own if state.leave_offset is None else state.leave_offset + own
    rng = np.random.default_rng(1)
    for _ in range(15):
        before = state.take(np.arange(64))
        uniforms = engine.counter_uniforms(core.key, core.step_count, 2 * k + 1)
        core.step(core.check_actions(rng.uniform(-1, 1, (64, config.n_candidates)).astype(np.float32)))
        items = core.last_slate
        p_click = model.click_probability(users, items, before)
        np.testing.assert_allclose(core.last_p_click, p_click, rtol=1e-5)  # float32 logit tables
        click = (uniforms[:, :k] < core.last_p_click).astype(np.int8)
        np.testing.assert_array_equal(core.last_click, click)
        p_buy = model.purchase_probability(users, items, before)
        clicked = click > 0
        np.testing.assert_allclose(core.last_p_purchase[clicked], p_buy[clicked], rtol=1e-5)
        assert (core.last_p_purchase[~clicked] == 0).all()
        bought = clicked & (uniforms[:, k : 2 * k] < core.last_p_purchase)
        np.testing.assert_array_equal(core.last_purchase, bought.astype(np.int8))
        topics = model.item_topic[items]
        advance(model.dynamics, state, topics, click.astype(np.int64))
        np.testing.assert_allclose(core.state.boredom, state.boredom, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(core.state.interest_drift, state.interest_drift, rtol=1e-12, atol=1e-15)
        hazard = leave_probability(model.dynamics, state, topics, click)
        np.testing.assert_allclose(core.last_p_leave, hazard, rtol=1e-12)
        np.testing.assert_array_equal(core.last_leave, uniforms[:, 2 * k] < core.last_p_leave)
    assert core.last_purchase.any() or simulator == "fitted"  # the shop's users do buy


def test_engine_params_fill_every_slot_of_the_layout() -> None:
    """The parameter vector's layout and its filler agree: each ``P_*`` slot holds its field."""
    dynamics = DynamicsParams(drift_per_click=0.11, leave_bias=-1.7, leave_session_sd=0.9)
    tables = ResponseTables(
        np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32), 0.3, True, UserTraits.uniform(1)
    )
    params = engine.engine_params(dynamics, tables, 0.8)
    assert params.shape == (engine.N_PARAMS,)
    assert params[engine.P_DRIFT_PER_CLICK] == 0.11 and params[engine.P_LEAVE_BIAS] == -1.7
    assert params[engine.P_PURCHASE_DRIFT] == 0.3 and params[engine.P_HAS_PURCHASES] == 1.0
    assert params[engine.P_EXPOSURE_RETENTION] == 0.8 and params[engine.P_LEAVE_SESSION_SD] == 0.9
    slots = [value for name, value in vars(engine).items() if name.startswith("P_")]
    assert sorted(slots) == list(range(engine.N_PARAMS))


def test_a_sessions_own_leave_offset_is_a_standard_normal_fixed_by_its_key() -> None:
    keys = np.arange(20_000, dtype=np.uint64) * np.uint64(7919) + np.uint64(3)
    normals = session_normals(keys)
    np.testing.assert_array_equal(normals, session_normals(keys))
    assert normals[5] == engine.session_normal(keys[5])
    assert abs(normals.mean()) < 0.03 and abs(normals.std() - 1.0) < 0.03
    assert abs((normals < -1.0).mean() - 0.1587) < 0.01  # the normal's tail, not only its moments
    # independent of the step's uniforms: no correlation with a session's first click draw
    first = engine.counter_uniforms(keys, np.zeros(len(keys), dtype=np.int64), 1)[:, 0]
    assert abs(np.corrcoef(normals, first)[0, 1]) < 0.03


def test_merit_target_is_one_definition() -> None:
    """The ledger's target, the kernels' and the observation's context agree."""
    assert engine.protected_target(4.0, 1.0, np.nan) == 0.25
    assert engine.protected_target(0.0, 0.0, np.nan) == 0.0
    assert engine.protected_target(4.0, 1.0, 0.4) == 0.4


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


def _vector_trace(vector: RankingVectorEnv, steps: int) -> list[np.ndarray]:
    obs, _ = vector.reset(seed=5)
    rng = np.random.default_rng(2)
    trace = [obs["candidate_features"]]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = vector.step(rng.uniform(-1, 1, (vector.num_envs, 50)))
        trace += [obs["candidate_features"], obs["history"], reward, terminated, truncated, info["clicks"]]
        trace += list(info.get("final_obs", {}).values())
    return trace


def test_parallel_step_kernel_equals_the_serial_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "PARALLEL_MIN_BATCH", 1)
    parallel = _vector_trace(RankingVectorEnv(num_envs=96), 40)
    monkeypatch.setattr(engine, "PARALLEL_MIN_BATCH", 10**9)
    serial = _vector_trace(RankingVectorEnv(num_envs=96), 40)
    for a, b in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(a, b)


def test_counter_uniforms_are_deterministic_and_uniform() -> None:
    keys = np.arange(2000, dtype=np.uint64)
    u = counter_uniforms(keys, np.zeros(2000, dtype=np.int64), 11)
    np.testing.assert_array_equal(u, counter_uniforms(keys, np.zeros(2000, dtype=np.int64), 11))
    assert (u >= 0).all() and (u < 1).all() and abs(u.mean() - 0.5) < 0.01
    assert not np.array_equal(u, counter_uniforms(keys, np.ones(2000, dtype=np.int64), 11))
