"""Every registered env through the checkers, determinism, pickling and the vector twin;
then the behaviour the design promises (fairness terms, dynamics, long-term structure)."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs import engine
from envs.config import ACTION_MODES, FEATURES, STRATEGIES, WEIGHTS, ActionError, embedding_layout
from envs.engine import counter_uniforms
from envs.fairness import ExposureLedger, position_weights
from envs.ranking import RankingEnv
from envs.sb3 import SB3VecEnvAdapter
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError, DataError
from simulators.datasets.movielens import installed_recbole_folder

REGISTERED = [
    pytest.param(
        env_id,
        marks=pytest.mark.skipif(
            env_id == "movielens-v0" and installed_recbole_folder() is None, reason="needs recbole's ml-100k"
        ),
    )
    for env_id in envs.ENV_IDS
]


def _bytes(obs: Any) -> tuple[bytes, ...]:
    values = obs.values() if isinstance(obs, dict) else [obs]
    return tuple(np.asarray(v).tobytes() for v in values)


def _rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0) -> list[tuple[Any, ...]]:
    """Observations, rewards and flags of ``steps`` steps with seeded random actions."""
    env.action_space.seed(action_seed)
    obs, _ = env.reset(seed=seed)
    trace: list[tuple[Any, ...]] = [_bytes(obs)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append(
            (
                _bytes(obs),
                reward,
                terminated,
                truncated,
                info["clicks"],
            )
        )
        if terminated or truncated:
            obs, _ = env.reset()
    return trace


@pytest.mark.parametrize("mode", ACTION_MODES)
@pytest.mark.parametrize("env_id", REGISTERED)
def test_registered_env_passes_checkers_and_is_deterministic(env_id: str, mode: str) -> None:
    env = gym.make(env_id, action_mode=mode)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, action_mode=mode).unwrapped, warn=False)
    first = _rollout(gym.make(env_id, action_mode=mode), seed=7, steps=60)
    second = _rollout(gym.make(env_id, action_mode=mode), seed=7, steps=60)
    assert first == second
    assert first != _rollout(gym.make(env_id, action_mode=mode), seed=8, steps=60)


@pytest.mark.parametrize("env_id", REGISTERED)
def test_pickle_round_trip_continues_identically(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    env.reset(seed=3)
    action = np.linspace(1, -1, env.action_space.shape[0]).astype(np.float32)
    for _ in range(3):
        if any(env.step(action)[2:4]):
            env.reset()
    blob = pickle.dumps(env)
    assert len(blob) < 5_000_000, "a pickle carries session state, not the simulator's tables"
    clone = pickle.loads(blob)
    for _ in range(10):
        a, b = env.step(action), clone.step(action)
        assert a[1:4] == b[1:4]
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key])
        if a[2] or a[3]:
            assert env.reset()[0]["history"].tobytes() == clone.reset()[0]["history"].tobytes()


def test_vector_env_matches_single_envs_step_for_step() -> None:
    n, seed = 3, 11
    vector = RankingVectorEnv(num_envs=n, shared_ledger=False, fairness_lambda=0.5)
    singles = [RankingEnv(fairness_lambda=0.5) for _ in range(n)]
    vec_obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    for _ in range(80):
        actions = rng.uniform(-1, 1, (n, 50)).astype(np.float32)
        for i in range(n):
            for key, value in single_obs[i].items():
                np.testing.assert_array_equal(vec_obs[key][i], value)
        vec_obs, rewards, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            obs, reward, term, trunc, single_info = env.step(actions[i])
            assert reward == pytest.approx(rewards[i], abs=1e-12)
            assert (term, trunc) == (terminated[i], truncated[i])
            assert single_info["clicks"] == info["clicks"][i]
            if term or trunc:
                for key, value in obs.items():
                    np.testing.assert_array_equal(info["final_obs"][key][i], value)
                obs, _ = env.reset()
            single_obs[i] = obs
        for value in info.get("final_obs", {}).values():
            assert not value[~info["_final_obs"]].any()  # zeros where no session ended


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


def test_make_vec_uses_the_native_vector_env() -> None:
    vector = gym.make_vec("ecommerce-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vector.unwrapped, RankingVectorEnv)
    obs, _ = vector.reset(seed=0)
    assert obs["candidate_features"].shape == (4, 50, len(FEATURES))
    assert vector.action_space.shape == (4, 50)


def test_sb3_adapter_speaks_vecenv() -> None:
    adapter = SB3VecEnvAdapter(RankingVectorEnv(num_envs=5, action_mode="discrete"))
    adapter.seed(1)
    obs = adapter.reset()
    assert obs["history"].shape == (5, 20)
    saw_terminal = False
    for _ in range(60):
        adapter.step_async(np.zeros(5, dtype=np.int64))
        obs, rewards, dones, infos = adapter.step_wait()
        assert rewards.shape == (5,) and dones.dtype == bool
        for done, info in zip(dones, infos, strict=True):
            if done:
                saw_terminal = True
                assert set(info["terminal_observation"]) == set(obs)
    assert saw_terminal


# ----------------------------------------------------------------------- design promises
def test_greedy_ctr_ranking_is_expressible_in_every_mode() -> None:
    slates = []
    for mode in ACTION_MODES:
        env = RankingEnv(action_mode=mode)
        obs, _ = env.reset(seed=5)
        pctr = obs["candidate_features"][:, FEATURES.index("pctr")]
        if mode == "scores":
            action: Any = (2 * pctr / pctr.max() - 1).astype(np.float32)
        elif mode == "weights":
            action = np.eye(len(WEIGHTS), dtype=np.float32)[FEATURES.index("pctr")]
        else:
            action = STRATEGIES.index("greedy_ctr")
        slates.append(env.step(action)[4]["slate"])
    assert all(np.array_equal(slates[0], s) for s in slates[1:])


def test_reward_differs_by_exactly_lambda_times_penalty() -> None:
    plain, fair = RankingEnv(fairness_lambda=0.0), RankingEnv(fairness_lambda=2.5)
    obs, _ = plain.reset(seed=9)
    fair.reset(seed=9)
    saw_penalty = False
    for _ in range(40):  # protected items ranked last: their exposure falls short of the target
        protected = obs["candidate_features"][:, FEATURES.index("protected")]
        action = (np.linspace(0.5, -0.5, 50) - protected).astype(np.float32)
        obs, r0, t0, u0, i0 = plain.step(action)
        _, r1, _, _, i1 = fair.step(action)
        assert i0["engagement"] == i1["engagement"] == r0
        assert r0 - r1 == pytest.approx(2.5 * i1["fairness_penalty"], abs=1e-12)
        saw_penalty |= i1["fairness_penalty"] != 0
        if t0 or u0:
            obs, _ = plain.reset()
            fair.reset()
    assert saw_penalty


def test_ledger_spans_sessions_and_a_seed_clears_it() -> None:
    env = RankingEnv()
    env.reset(seed=1)
    action = np.zeros(50, dtype=np.float32)
    for _ in range(3):
        env.step(action)
    exposure = env.core.ledger.provider_exposure.sum()
    env.reset()
    assert env.core.ledger.provider_exposure.sum() == exposure
    np.testing.assert_allclose(env.core.ledger.shares().sum(), 1.0)
    env.reset(seed=1)
    assert env.core.ledger.provider_exposure.sum() == 0


def test_ledger_penalty_and_shares() -> None:
    ledger = ExposureLedger(n_rows=1, n_items=4, n_user_groups=2, target_share=0.5)
    rows = np.array([0])
    protected, tail = np.array([False, False, True, True]), np.zeros(4, dtype=bool)
    merit_total, merit_protected = np.array([4.0]), np.array([2.0])
    none_protected = ledger.record(rows, np.array([[0, 1]]), protected, tail, merit_total, merit_protected)
    assert none_protected[0] == pytest.approx(0.5)  # half of the step's exposure was owed and went missing
    all_protected = ledger.record(rows, np.array([[2, 3]]), protected, tail, merit_total, merit_protected)
    assert all_protected[0] == pytest.approx(-0.5)  # and this slate closes that gap
    np.testing.assert_allclose(ledger.shares().sum(), 1.0)
    np.testing.assert_allclose(ledger.shares()[1], 0.5)
    w = position_weights(2)
    exposure = np.sort([w[0], w[1], w[0], w[1]])
    expected_gini = ((2 * np.arange(1, 5) - 5) @ exposure) / (4 * exposure.sum())
    assert ledger.metrics()["exposure_gini"] == pytest.approx(expected_gini)
    with pytest.raises(ConfigError):
        ExposureLedger(1, 4, 1, target_share=1.5)


def test_merit_target_follows_the_relevance_offered() -> None:
    ledger = ExposureLedger(n_rows=1, n_items=4, n_user_groups=1)
    protected, tail = np.array([False, False, True, True]), np.zeros(4, dtype=bool)
    ledger.record(np.array([0]), np.array([[0, 1]]), protected, tail, np.array([4.0]), np.array([1.0]))
    assert ledger.target(np.array([0]))[0] == pytest.approx(0.25)


def test_repeating_one_category_raises_boredom_and_leaving() -> None:
    """With the true shop: five items of the user's favourite category each step versus five
    different categories; the first bores users and sends more of them away."""
    from simulators.dynamics import SessionState, leave_probability
    from simulators.shop.world import ShopConfig, ShopWorld

    world = ShopWorld(ShopConfig(n_users=400, n_sessions=10))
    users = np.arange(400)
    favourite = world.user_category_pref.argmax(1)
    by_category = [np.flatnonzero(world.item_category == c) for c in range(20)]
    same = np.stack([by_category[c][:5] for c in favourite])
    mixed = np.stack([[by_category[(c + j) % 20][0] for j in range(5)] for c in favourite])
    rng = np.random.default_rng(0)
    outcomes = {}
    for name, slates in (("same", same), ("mixed", mixed)):
        state = SessionState.fresh(400, 20)
        clicks = leave = 0.0
        for _ in range(4):
            response = world.respond(users, slates, state, rng)
            clicks += response.click.sum()
            leave = leave_probability(
                world.dynamics, state, world.item_category[slates], response.click
            ).mean()
        outcomes[name] = (state.boredom.max(1).mean(), leave)
    assert outcomes["same"][0] > 2 * outcomes["mixed"][0]
    assert outcomes["same"][1] > outcomes["mixed"][1]


def _slot1_probabilities(env: RankingEnv) -> np.ndarray:
    core = env.core
    n = core.candidates.shape[1]
    state = core.state.take(np.zeros(n, dtype=np.int64))
    return core.world.simulator.click_probability(
        np.repeat(core.user, n), core.candidates[0][:, None], state
    )[:, 0]


def _diverse_scores(env: RankingEnv) -> np.ndarray:
    p = _slot1_probabilities(env)
    topics, scores, seen = env.core.candidate_topics[0], np.full(len(p), -1.0), set()
    for rank, i in enumerate(np.argsort(-p, kind="stable")):
        if topics[i] not in seen:
            scores[i] = 1.0 - 0.01 * rank
            seen.add(topics[i])
    return scores


@pytest.mark.slow
def test_diversity_aware_oracle_beats_the_greedy_oracle() -> None:
    """Long-term structure: in the true shop, penalising repeats pays over a session."""
    returns = {}
    for name, policy in (("greedy", _slot1_probabilities), ("diverse", _diverse_scores)):
        env = RankingEnv(simulator="true")
        env.reset(seed=123)
        totals = []
        for _ in range(300):
            env.reset()
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(np.clip(policy(env), -1, 1).astype(np.float32))
                total, done = total + reward, terminated or truncated
            totals.append(total)
        returns[name] = np.array(totals)
    gap = returns["diverse"].mean() - returns["greedy"].mean()
    noise = np.sqrt(returns["diverse"].var() / 300 + returns["greedy"].var() / 300)
    assert gap > 2 * noise, (returns["diverse"].mean(), returns["greedy"].mean())


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"slate_size": 60}, "slate_size (60) must be <= n_candidates (50)"),
        ({"action_mode": "ranks"}, "action_mode must be one of"),
        ({"fairness_lambda": float("nan")}, "fairness_lambda"),
        ({"simulator": "oracle"}, "simulator must be one of"),
    ],
)
def test_bad_options_are_clear(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        gym.make("ecommerce-v0", **options)


def test_missing_data_path_is_clear(tmp_path: Any) -> None:
    with pytest.raises(DataError, match="no such MovieLens folder"):
        gym.make("movielens-v0", data_path=str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("mode", "action", "message"),
    [
        ("scores", np.full(50, np.nan, dtype=np.float32), "NaN"),
        ("scores", np.zeros(49, dtype=np.float32), "shape"),
        ("weights", np.zeros(50, dtype=np.float32), "shape"),
        ("discrete", 99, "must lie in"),
        ("discrete", 1.5, "integer"),
    ],
)
def test_bad_actions_are_clear(mode: str, action: Any, message: str) -> None:
    env = RankingEnv(action_mode=mode)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=message):
        env.step(action)


def test_render_ansi_shows_the_slate() -> None:
    env = RankingEnv(render_mode="ansi")
    env.reset(seed=0)
    slate = env.step(np.zeros(50, dtype=np.float32))[4]["slate"]
    text = env.render()
    assert text is not None and text.count("\n") == 6
    assert env.core.world.item_text[slate[0]].split(". ")[0] in text.splitlines()[1]


# ------------------------------------------------------------------------------- helpers
def test_counter_uniforms_are_deterministic_and_uniform() -> None:
    keys = np.arange(2000, dtype=np.uint64)
    u = counter_uniforms(keys, np.zeros(2000, dtype=np.int64), 11)
    np.testing.assert_array_equal(u, counter_uniforms(keys, np.zeros(2000, dtype=np.int64), 11))
    assert (u >= 0).all() and (u < 1).all() and abs(u.mean() - 0.5) < 0.01
    assert not np.array_equal(u, counter_uniforms(keys, np.ones(2000, dtype=np.int64), 11))


def test_embedding_observation_mode() -> None:
    """``obs_mode="embedding"``: checkers, determinism, pickling, the layout and the vector twin."""
    options = {"obs_mode": "embedding", "action_mode": "weights"}
    env = gym.make("ecommerce-v0", **options)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make("ecommerce-v0", **options).unwrapped, warn=False)
    assert _rollout(gym.make("ecommerce-v0", **options), 5, 30) == _rollout(
        gym.make("ecommerce-v0", **options), 5, 30
    )
    single = RankingEnv(**options)
    obs, _ = single.reset(seed=2)
    layout = embedding_layout(single.config, single.core.embedder.dim)
    start, stop = layout["candidate_features"]
    np.testing.assert_array_equal(obs[start:stop].reshape(50, -1), single.core.candidate_features[0])
    start, stop = layout["candidate_vectors"]
    item_vectors = single.world.ctr_embedder().item_vectors[single.core.candidates[0]]
    np.testing.assert_array_equal(obs[start:stop].reshape(50, -1), item_vectors)
    clone = pickle.loads(pickle.dumps(single))
    vector = RankingVectorEnv(num_envs=1, **options)
    vector_obs, _ = vector.reset(seed=2)
    np.testing.assert_allclose(vector_obs[0], obs, atol=1e-6)
    action = np.array([1, 0, 0, 0, 0, -0.5, 1], dtype=np.float32)
    for _ in range(15):
        a, b = single.step(action), clone.step(action)
        v = vector.step(action[None])
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] == pytest.approx(v[1][0])
        if a[2] or a[3]:
            break
        np.testing.assert_allclose(v[0][0], a[0], atol=1e-5)


def test_embedding_mode_needs_ctr_candidates() -> None:
    with pytest.raises(ConfigError, match="needs candidates='ctr'"):
        RankingEnv(obs_mode="embedding", candidates="popularity")
