"""envs.ranking: every registered env through the checkers, determinism and pickling; then the
behaviour the design promises (dynamics, long-term structure), bad input and the embedding mode."""

from __future__ import annotations

import pickle
import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from envs.config import ACTION_MODES, FEATURES, STRATEGIES, WEIGHTS, ActionError, embedding_layout
from envs.ranking import RankingEnv
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError, DataError
from simulators.datasets.movielens import installed_recbole_folder
from tests.conftest import MENU, mode_options

REGISTERED = [
    pytest.param(
        env_id,
        marks=[
            pytest.mark.skipif(
                env_id.startswith("movielens") and installed_recbole_folder() is None,
                reason="needs recbole's ml-100k",
            ),
            # the first movielens-v0 env fits its simulator (about 25 s), whichever test builds it
            *([pytest.mark.slow] if env_id.startswith("movielens") else []),
        ],
    )
    # the retention id passes the same checks on a small returning shop (tests/envs/test_retention.py)
    for env_id in envs.ENV_IDS
    if env_id != "ecommerce-retention-v0"
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
    options = mode_options(mode)
    env = gym.make(env_id, **options)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, **options).unwrapped, warn=False)
    first = _rollout(gym.make(env_id, **options), seed=7, steps=60)
    second = _rollout(gym.make(env_id, **options), seed=7, steps=60)
    assert first == second
    assert first != _rollout(gym.make(env_id, **options), seed=8, steps=60)


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


# ----------------------------------------------------------------------- design promises
def test_greedy_ctr_ranking_is_expressible_in_every_mode() -> None:
    slates = []
    for mode in ACTION_MODES:
        env = RankingEnv(**mode_options(mode))  # type: ignore[arg-type]
        obs, _ = env.reset(seed=5)
        pctr = obs["candidate_features"][:, FEATURES.index("pctr")]
        if mode == "scores":
            action: Any = (2 * pctr / pctr.max() - 1).astype(np.float32)
        elif mode == "weights":
            action = np.eye(len(WEIGHTS), dtype=np.float32)[FEATURES.index("pctr")]
        elif mode == "menu":
            action = 0  # the menu's first entry: pCTR alone
        else:
            action = STRATEGIES.index("greedy_ctr")
        slates.append(env.step(action)[4]["slate"])
    assert all(np.array_equal(slates[0], s) for s in slates[1:])


def test_repeating_one_category_raises_boredom_and_leaving() -> None:
    """With the true shop: five items of the user's favourite category each step versus five
    different categories; the first bores users and sends more of them away."""
    from simulators.dynamics import SessionState, leave_probability
    from simulators.shop.config import ShopConfig
    from simulators.shop.world import ShopWorld

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
        ({"fairness_lambda": "0.5"}, "fairness_lambda must be float, got '0.5' (str)"),
        ({"slate_size": 2.5}, "slate_size must be int, got 2.5 (float)"),
        ({"colour": "red"}, "unknown env option(s) ['colour']"),
        ({"purchase_weight": float("nan")}, "purchase_weight must lie in"),
        ({"purchase_weight": 1e300}, "purchase_weight must lie in"),
        ({"history_length": 10**9}, "history_length must be <= 1000"),
        ({"n_candidates": 5000}, "n_candidates (5000) must be <= the catalog's"),
        ({"fairness_target": 1.5}, "fairness_target must lie in [0, 1]"),
        ({"fresh_candidates": 51}, "fresh_candidates must lie in [0, n_candidates]"),
    ],
)
def test_bad_options_are_clear(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
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
        ("weights", np.full(7, 1e30, dtype=np.float64), "meant in \\[-1, 1\\]"),
    ],
)
def test_bad_actions_are_clear(mode: str, action: Any, message: str) -> None:
    env = RankingEnv(action_mode=mode)
    env.reset(seed=0)
    with pytest.raises(ActionError, match=message):
        env.step(action)


@pytest.mark.parametrize(
    ("menu", "message"),
    [
        ((0.5,) * 6, "weight vectors of 7 numbers each"),
        ((0.5,) * 6 + (2.0,), "in [-1, 1]"),
        ((0.5,) * 6 + (float("nan"),), "in [-1, 1]"),
        (("a",) * 7, "action_menu must be a list of numbers"),
        ((0.0,) * 7 * 257, "at most 256 weight vectors"),
    ],
)
def test_bad_menus_are_clear(menu: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        gym.make("ecommerce-v0", action_mode="menu", action_menu=menu)


def test_a_menu_env_needs_a_menu_and_refuses_an_entry_it_lacks() -> None:
    with pytest.raises(ConfigError, match="action_menu: it is empty"):
        RankingEnv(action_mode="menu")
    env = RankingEnv(**mode_options("menu"))  # type: ignore[arg-type]
    env.reset(seed=0)
    with pytest.raises(ActionError, match=re.escape("must lie in [0, 3)")):
        env.step(3)


def test_a_menu_action_is_its_weight_vector() -> None:
    """Entry ``i`` of a menu env plays exactly what the ``weights`` env plays for ``action_menu[i]``:
    the same slates, rewards and sessions; a config.json's list reads back as the same menu."""
    options = mode_options("menu")
    assert RankingEnv(**{**options, "action_menu": list(MENU)}).config.action_menu == MENU  # type: ignore[arg-type]
    menu = np.asarray(MENU, dtype=np.float32).reshape(-1, len(WEIGHTS))
    by_entry, by_weights = (
        RankingVectorEnv(num_envs=4, **options),
        RankingVectorEnv(num_envs=4, action_mode="weights"),
    )
    by_entry.reset(seed=11)
    by_weights.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(40):
        entries = rng.integers(0, len(menu), 4)
        a, b = by_entry.step(entries), by_weights.step(menu[entries])
        np.testing.assert_array_equal(a[1], b[1])
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key])
        np.testing.assert_array_equal(a[4]["clicks"], b[4]["clicks"])


def test_render_ansi_shows_the_slate() -> None:
    env = RankingEnv(render_mode="ansi")
    env.reset(seed=0)
    slate = env.step(np.zeros(50, dtype=np.float32))[4]["slate"]
    text = env.render()
    assert text is not None and text.count("\n") == 6
    assert env.core.world.item_text[slate[0]].split(". ")[0] in text.splitlines()[1]


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


def test_ctr_warm_start_is_checked_before_any_fitting(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="ctr_warm_start starts the CTR model's training"):
        RankingEnv(ctr_warm_start=str(tmp_path), candidates="popularity")
    with pytest.raises(DataError, match="not a CTR model folder to warm-start from"):
        RankingEnv(data="shop:drift", ctr_warm_start=str(tmp_path / "nowhere"))


def test_context_reveals_breadth_and_the_response_to_repeats() -> None:
    """``context`` carries the history's normalised topic entropy and the session's clicks per
    repeated-topic slot, as :data:`envs.config.CONTEXT` defines them."""
    from envs.config import CONTEXT
    from simulators.fit.traits import history_breadth

    env = RankingEnv(action_mode="scores")
    obs, _ = env.reset(seed=4)
    core = env.core
    shown = clicks = 0.0
    exposure: set[int] = set()
    for _ in range(12):
        history = obs["history"][None, :].astype(np.int64)
        breadth = history_breadth(history, core.item_topic, core.world.n_topics)[0]
        assert obs["context"][CONTEXT.index("history_breadth")] == pytest.approx(
            np.nan_to_num(breadth), abs=1e-6
        )
        rate = obs["context"][CONTEXT.index("repeat_click_rate")]
        assert rate == pytest.approx(clicks / shown if shown else 0.0, abs=1e-6)
        obs, _, terminated, truncated, info = env.step(np.linspace(1, -1, 50).astype(np.float32))
        topics = core.item_topic[info["slate"]]
        repeat = np.array([t in exposure for t in topics])
        shown += repeat.sum()
        clicks += core.last_click[0][repeat].sum()
        exposure |= set(topics.tolist())
        if terminated or truncated:
            break
