"""The retention env (``ecommerce-retention-v0``, ``horizon_days > 0``): the registered id through
both checkers, determinism and pickling; episodes that span a user's sessions; gaps drawn from
the world's return model (a known answer); the same users for every policy; bad input."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import httpx
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from agents.evaluation.sessions import run_sessions
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import make_baseline
from agents.serve.logbook import Logbook
from agents.serve.ranker import Ranker
from agents.serve.service import Service
from agents.serve.traffic import start_server
from envs.config import ACTION_MODES, CONTEXT, RETURN_CONTEXT, EnvConfig
from envs.ranking import RankingEnv
from envs.retention import SECONDS_PER_DAY, SECONDS_PER_STEP, VisibleVisits
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError
from simulators.datasets.shop import shop_folder
from simulators.datasets.tabular import read_table
from simulators.retention import MIN_GAP_DAYS
from simulators.shop.config import ShopReturns
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP, TINY, mode_options, run_cli

RETURNING = replace(SMALL_SHOP, returns=ShopReturns(enabled=True))
"""The small shop whose users come back."""
SMALL = {"candidates": "popularity"}
"""No CTR model to train: the tests' worlds build in seconds."""


@pytest.fixture(scope="module")
def data() -> str:
    return str(shop_folder(RETURNING))


def _trace(env: gym.Env, seed: int, steps: int) -> tuple[list[Any], int]:
    """Rewards, flags, the context and returns of ``steps`` seeded random steps; returns seen."""
    env.action_space.seed(0)
    env.reset(seed=seed)
    trace, returns = [], 0
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((reward, terminated, truncated, obs["context"].tobytes(), info["gap_days"]))
        returns += int(info["returned"])
        if terminated or truncated:
            env.reset()
    return trace, returns


@pytest.mark.parametrize("mode", ACTION_MODES)
def test_registered_retention_env_passes_checkers_and_is_deterministic(data: str, mode: str) -> None:
    env = gym.make("ecommerce-retention-v0", data=data, **mode_options(mode), **SMALL)
    assert env.unwrapped.config.horizon_days == 28.0 and "ecommerce-retention-v0" in envs.ENV_IDS
    assert env.observation_space["context"].shape == (len(CONTEXT) + len(RETURN_CONTEXT),)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(
        gym.make("ecommerce-retention-v0", data=data, **mode_options(mode), **SMALL).unwrapped, warn=False
    )
    first, returns = _trace(
        gym.make("ecommerce-retention-v0", data=data, **mode_options(mode), **SMALL), 7, 150
    )
    second, _ = _trace(gym.make("ecommerce-retention-v0", data=data, **mode_options(mode), **SMALL), 7, 150)
    assert first == second and returns > 0  # episodes span sessions
    assert (
        first
        != _trace(gym.make("ecommerce-retention-v0", data=data, **mode_options(mode), **SMALL), 8, 150)[0]
    )


def test_pickle_round_trip_after_a_return_continues_identically(data: str) -> None:
    env = RankingEnv(data=data, horizon_days=28.0, **SMALL)
    env.reset(seed=3)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    returned = False
    while not returned:
        _, _, terminated, _, info = env.step(action)
        returned = bool(info["returned"])
        if terminated:
            env.reset()
    copy = pickle.loads(pickle.dumps(env))
    for _ in range(40):
        a, b = env.step(action), copy.step(action)
        assert a[1:4] == b[1:4] and np.array_equal(a[0]["context"], b[0]["context"])
        if a[2]:
            env.reset()
            copy.reset()


def test_the_vector_env_meets_the_single_env_s_users_and_dice(data: str) -> None:
    vector = RankingVectorEnv(3, data=data, horizon_days=28.0, **SMALL)
    singles = [RankingEnv(data=data, horizon_days=28.0, **SMALL) for _ in range(3)]
    vector.reset(seed=11)
    for i, env in enumerate(singles):
        env.reset(seed=11 + i)
    action = np.zeros(vector.single_action_space.shape, dtype=np.float32)
    for _ in range(120):
        _, reward, terminated, truncated, info = vector.step(np.stack([action] * 3))
        assert not truncated.any()
        for i, env in enumerate(singles):
            _, r, term, _, single_info = env.step(action)
            assert (r, term, single_info["returned"]) == (
                reward[i],
                terminated[i],
                float(info["returned"][i]),
            )
            if term:
                env.reset()


def test_an_episode_is_one_user_s_sessions_until_they_stay_away(data: str) -> None:
    env = RankingVectorEnv(8, data=data, horizon_days=28.0, **SMALL)
    plain = RankingVectorEnv(8, data=data, horizon_days=28.0, return_bonus=2.5, **SMALL)
    obs, _ = env.reset(seed=1)
    plain.reset(seed=1)
    action = np.zeros((8, *env.single_action_space.shape), dtype=np.float32)
    sessions, ended = np.zeros(8), 0
    log_sessions = list(CONTEXT + RETURN_CONTEXT).index("log_sessions")
    for _ in range(400):
        user = env.core.user.copy()
        obs, reward, terminated, truncated, info = env.step(action)
        _, bonus_reward, _, _, _ = plain.step(action)
        back = info["returned"]
        assert np.allclose(
            bonus_reward - reward, 2.5 * back
        )  # the return bonus, exactly where users came back
        assert np.array_equal(env.core.user[back], user[back])  # the same user, the next session
        assert (info["gap_days"][back] >= MIN_GAP_DAYS).all() and (env.core.clock.day[back] < 28).all()
        sessions[back] += 1
        assert np.allclose(obs["context"][back, log_sessions], np.log1p(sessions[back]))
        assert not truncated.any()
        ended += int(terminated.sum())
        sessions[terminated] = 0
    assert ended > 10 and sessions.max() >= 1


def test_the_gaps_follow_the_return_model(tmp_path: Path) -> None:
    # exponential gaps past the hour, no covariate effect: (gap - 1 h) x the user's hazard ratio has mean `scale`
    exponential = ShopReturns(enabled=True, shape=1.0, scale_days=5.0, beta=(0.0, 0.0, 0.0, 0.0))
    folder = shop_folder(replace(SMALL_SHOP, seed=5, returns=exponential))
    env = RankingVectorEnv(64, data=str(folder), simulator="true", horizon_days=28.0, **SMALL)
    offset = ShopWorld(replace(SMALL_SHOP, seed=5, returns=exponential)).return_process().user_offset
    env.reset(seed=0)
    action = np.zeros((64, *env.single_action_space.shape), dtype=np.float32)
    scaled = []
    for _ in range(600):
        user = env.core.user.copy()
        _, _, _, _, info = env.step(action)
        ended = info["gap_days"] > 0
        scaled.extend((info["gap_days"][ended] - MIN_GAP_DAYS) * np.exp(offset[user[ended]]))
    scaled_gaps = np.array(scaled)
    assert len(scaled_gaps) > 1_000
    mean, se = scaled_gaps.mean(), scaled_gaps.std() / np.sqrt(len(scaled_gaps))
    assert abs(mean - 5.0) < 4 * se, (mean, se)


def test_every_policy_meets_the_same_users(data: str) -> None:
    config = EnvConfig(data=data, horizon_days=28.0, action_mode="discrete", **SMALL)
    first = run_sessions(make_baseline("random"), config, 24, seed=2, progress=False)
    second = run_sessions(make_baseline("popularity"), config, 24, seed=2, progress=False)
    assert np.array_equal(first.users, second.users) and np.array_equal(first.keys, second.keys)
    assert not np.array_equal(first.lengths, second.lengths)  # other slates, other months
    assert first.sessions is not None and first.sessions.min() >= 1 and first.gaps is not None
    assert len(first.gaps) == first.sessions.sum()  # every session's end drew a gap


def test_bad_retention_options_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="horizon_days"):
        EnvConfig(horizon_days=-1.0)
    with pytest.raises(ConfigError, match="horizon_days"):
        EnvConfig(horizon_days=float("nan"))
    with pytest.raises(ConfigError, match="needs horizon_days"):
        EnvConfig(return_bonus=1.0)
    with pytest.raises(ConfigError, match="needs horizon_days"):
        EnvConfig(return_effects=False)


def test_the_return_effects_switch_keeps_only_the_users_and_their_sessions_so_far(data: str) -> None:
    on = RankingVectorEnv(2, data=data, simulator="true", horizon_days=28.0, **SMALL).core.clock
    off = RankingVectorEnv(
        2, data=data, simulator="true", horizon_days=28.0, return_effects=False, **SMALL
    ).core.clock
    assert on is not None and off is not None and on.process.beta[:3].any()
    assert not off.process.beta[:3].any() and off.process.beta[3] == on.process.beta[3]
    assert (
        np.array_equal(off.process.user_offset, on.process.user_offset)
        and off.process.scale == on.process.scale
    )


@pytest.fixture(scope="module")
def retention_run(data: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PPO agent trained on the small returning shop's retention env by the CLI."""
    out = tmp_path_factory.mktemp("retention") / "run"
    result = run_cli(
        "agents.train", "ppo", "--env", "ecommerce-retention-v0", "--data", data, "--candidates", "popularity",
        *TINY, "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "per user-month (paired" in result.stdout  # an episode is a user's month, and the report says so
    return out


@pytest.mark.slow
def test_train_cli_on_the_retention_env(retention_run: Path) -> None:
    config = json.loads((retention_run / "config.json").read_text())
    assert config["env_options"]["horizon_days"] == 28.0
    metrics = json.loads((retention_run / "metrics.json").read_text())
    assert metrics["paired"]["reference"] and np.isfinite(metrics["policy"]["return_mean"])
    retention = metrics["policy"]["retention"]
    assert (
        retention["sessions_per_user"] >= 1 and 0 <= retention["return_day1"] <= retention["return_day7"] <= 1
    )


def test_the_serving_path_s_visits_give_the_env_s_return_context(data: str) -> None:
    """:class:`VisibleVisits` fed the times of the env's slates (its clock's days, 30 s a step)
    and the clicks of its sessions reads the context the env gives, session after session."""
    env = RankingVectorEnv(4, data=data, horizon_days=28.0, **SMALL)
    obs, _ = env.reset(seed=3)
    clock = env.core.clock
    assert clock is not None
    action = np.zeros((4, *env.single_action_space.shape), dtype=np.float32)
    visits = [VisibleVisits(28.0) for _ in range(4)]
    sessions = [SimpleNamespace(step=0, clicks=0.0, history=np.zeros(0)) for _ in range(4)]
    offset = np.zeros(4)  # seconds: each slot's next episode starts long after its last one
    returns = 0
    for _ in range(300):
        for i in range(4):
            now = offset[i] + clock.day[i] * SECONDS_PER_DAY + SECONDS_PER_STEP * env.core.step_count[i]
            visits[i].visit(float(now), sessions[i])
            np.testing.assert_allclose(visits[i].context()[0], obs["context"][i, -4:], atol=1e-5)
        obs, _, terminated, _, info = env.step(action)
        for i in range(4):
            sessions[i].step += 1
            sessions[i].clicks += float(info["clicks"][i])
            if info["returned"][i] or terminated[i]:
                sessions[i] = SimpleNamespace(step=0, clicks=0.0, history=np.zeros(0))
            if terminated[i]:
                offset[i] += 1_000 * SECONDS_PER_DAY
        returns += int(info["returned"].sum())
    assert returns >= 10


@pytest.mark.slow
def test_greedy_serving_of_a_retention_agent_shows_what_it_shows_in_the_env(retention_run: Path) -> None:
    """Named sessions at the env's times, fed its clicks, get the env's own slates over a user's
    month: the served observation carries the user's visits and history across sessions."""
    ranker = Ranker(retention_run, "torch")
    seen: list[dict[str, np.ndarray]] = []  # the observations the served policy was given
    act = ranker.policy.act
    ranker.policy.act = lambda obs, rng: seen.append(obs) or act(obs, rng)
    agent = TrainedAgent.load(retention_run, device="cpu")
    env = RankingVectorEnv(1, **{k: v for k, v in agent.env_options.items() if k != "render_mode"})
    observation, _ = env.reset(seed=5)
    core, rng, clock = env.core, np.random.default_rng(0), env.core.clock
    assert clock is not None
    sessions, returned, offset = 0, 0, 0.0
    for _ in range(120):
        user = int(core.user[0])
        now = offset + clock.day[0] * SECONDS_PER_DAY + SECONDS_PER_STEP * core.step_count[0]
        ranked = ranker.rank(ranker.user_ids[user].item(), session_id=f"s{sessions}", now=float(now))
        np.testing.assert_allclose(seen[-1]["context"][0, -4:], observation["context"][0, -4:], atol=1e-5)
        np.testing.assert_array_equal(seen[-1]["history"], observation["history"])
        observation, _, terminated, _, info = env.step(agent.act(observation, rng))
        np.testing.assert_array_equal(ranked.items, core.last_slate[0])
        ranker.feedback(ranked, core.last_click[0].astype(np.int64))
        if info["returned"][0] or terminated[0]:
            sessions += 1
            returned += int(info["returned"][0])
        if terminated[0]:  # the env's next episode is a new user-month from the logs
            ranker.visits.pop(user, None)
            offset += 1_000 * SECONDS_PER_DAY
    assert returned >= 2


@pytest.mark.slow
def test_a_restarted_server_recalls_its_users_visits_from_its_log(
    retention_run: Path, tmp_path: Path
) -> None:
    ranker = Ranker(retention_run, "torch")
    book = Logbook(tmp_path / "served", ranker.logs, flush_rows=1, feedback_timeout_s=60.0)
    service = Service(ranker, book)
    users = ranker.user_ids[:3].tolist()
    for visit in range(3):
        for user in users:
            for _ in range(2):
                answer = service.rank(user, session_id=f"{user}-{visit}")
                assert service.feedback(answer["event_id"], [1] + [0] * (len(answer["slate"]) - 1)) is None
        service.rank(users[0])  # a session of one slate, never reported
    book.close()
    again = Ranker(retention_run, "torch")
    assert again.recall(read_table(tmp_path / "served" / "interactions")) == 3 * (3 * 2 + 1)
    fields = ("start", "session_start", "last_seen", "sessions", "since_last", "last_clicks_per_step")
    for user in map(ranker.user_of, users):
        live, recalled = ranker.visits[user], again.visits[user]
        assert [getattr(recalled, f) for f in fields] == pytest.approx([getattr(live, f) for f in fields])
        assert live.current is not None and recalled.current is not None
        np.testing.assert_array_equal(recalled.current.history, live.current.history)
    assert ranker.visits[ranker.user_of(users[1])].sessions == 2  # two sessions before the third
    assert list(again.sessions) == list(ranker.sessions)
    # the server does the same at its start, on the log it appends to
    process, url = start_server(retention_run, tmp_path / "served", "--backend", "torch")
    try:
        response = httpx.post(f"{url}/rank", json={"user_id": users[0], "session_id": "later"}, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.mark.slow
def test_retention_benchmark_plays_every_policy_in_every_world(data: str, tmp_path: Path) -> None:
    out = tmp_path / "retention.json"
    result = run_cli(
        "benchmarks.retention", "--json", str(out), "--out", str(tmp_path / "runs"), "--data", data,
        "--candidates", "popularity", "--seeds", "1", "--users", "32", "--timesteps", "512", "--n-envs", "4",
        "--train-eval-episodes", "16", "--tuning-sessions", "8", "--tuning-generations", "1",
        "--planner-users", "8", "--planner-rollouts", "2", "--planner-depth", "6",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["worlds"]) == {"true", "fitted", "true, no return effects"}
    for rows in report["worlds"].values():
        assert {
            "tuned-weights",
            "best-fixed",
            "tuned-weights (per session)",
            "ctr",
            "ppo-s1",
            "ppo (1 seeds)",
        } == set(rows)
        assert (
            rows["ctr"]["minus_tuned-weights"]["n"] == 32 and rows["tuned-weights"]["sessions_per_user"] >= 1
        )
    again = run_cli(
        "benchmarks.retention", "--json", str(tmp_path / "again.json"), "--out", str(tmp_path / "runs")
    )
    assert again.returncode == 2 and "one study per folder" in again.stderr  # refused before any work
    assert set(report["ceiling"]) == {"true", "true, no return effects"}
    for rows in report["ceiling"].values():
        assert (
            rows["planner:true (month)"]["minus_tuned-weights"]["n"] == 8
            and "month minus per session" in rows
        )
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".md").is_file()
