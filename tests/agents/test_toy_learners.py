"""The learners on toy problems with a known best policy.

- DQN, a myopic trap: one strategy pays most now and drives the user away; the dominant one
  pays less per step and keeps the user. RecGym's DQN (ten-step targets over a Dict
  observation, :mod:`agents.training.replay`) must pick the dominant one. (This toy shows
  its state fully, so one-step targets pass it too; the shop, where they fail, is in
  :mod:`agents.training.replay`'s docstring.)
- PPO, two phases: the first two steps of a session reward ranking by ``similarity``, the last
  two by its opposite; the phase is in the context. Any fixed weight vector wins one phase and
  loses the other. PPO with RecGym's extractor and ``weights`` action must learn the switch.
- PPO, a user's month (the retention env's shape): repeats of a shown topic pay more now and
  make the user less likely to come back after the session; PPO must give up the repeats
  (14.0 a month) where ranking by what pays now (greedy) keeps about 4.4.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.training.networks import RankingExtractor, RankingPolicy
from agents.training.replay import DictNStepReplayBuffer
from envs.config import FEATURES
from envs.core import standardise

HORIZON = 10


class MyopicTrap(gym.Env[dict[str, np.ndarray], int]):
    """Action 0 (greedy) pays 1.0 and raises boredom by 1; the user leaves after a step with
    probability 0.25 x boredom. Action 1 (diverse) pays 0.7 and resets boredom. Always diverse
    earns 7.0 over the 10-step session; always greedy about 2.3."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"state": spaces.Box(0, HORIZON, (2,), np.float32)})
        self.action_space = spaces.Discrete(2)
        self.boredom, self.step_count = 0, 0

    def _obs(self) -> dict[str, np.ndarray]:
        return {"state": np.array([self.boredom, self.step_count], dtype=np.float32)}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.boredom, self.step_count = 0, 0
        return self._obs(), {}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        reward = 1.0 if action == 0 else 0.7
        self.boredom = self.boredom + 1 if action == 0 else 0
        self.step_count += 1
        left = bool(self.np_random.random() < 0.25 * self.boredom)
        return self._obs(), reward, left, self.step_count >= HORIZON and not left, {}


@pytest.fixture
def one_thread() -> Any:
    """Small networks: one torch thread (two fight over the cores with the other test worker)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_dqn_with_n_step_targets_escapes_the_myopic_trap(one_thread: Any) -> None:
    venv = DummyVecEnv([MyopicTrap for _ in range(4)])
    model = DQN(
        "MultiInputPolicy", venv, learning_rate=1e-3, buffer_size=10_000, learning_starts=500, batch_size=64,
        gamma=0.95, target_update_interval=250, exploration_fraction=0.3, seed=0, device="cpu",
        replay_buffer_class=DictNStepReplayBuffer, replay_buffer_kwargs={"n_steps": 10, "gamma": 0.95},
        policy_kwargs={"net_arch": [32]},
    )  # fmt: skip
    model.learn(6_000)
    env = MyopicTrap()
    choices = []
    for boredom in range(3):
        for step in range(HORIZON - 2):  # the last steps may rightly cash in
            env.boredom, env.step_count = boredom, step
            choices.append(int(model.predict(env._obs(), deterministic=True)[0]))
    assert np.mean(np.array(choices) == 1) >= 0.9


N_ITEMS, N, H = 30, 4, 3
SIMILARITY = FEATURES.index("similarity")


def toy_observation(
    rng: np.random.Generator, features: np.ndarray, context: list[float]
) -> dict[str, np.ndarray]:
    """A toy's observation in the env's ``ids`` layout: random history and candidates, the given
    candidate features and context, no user features."""
    return {
        "history": rng.integers(0, N_ITEMS, H),
        "history_mask": np.ones(H, np.int8),
        "candidates": rng.choice(N_ITEMS, N, replace=False),
        "candidate_features": features,
        "user_features": np.zeros(2, np.float32),
        "context": np.array(context, np.float32),
    }


class TwoPhases(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Four steps a session; reward 1 when the top item has the highest ``similarity`` (steps
    0-1) or the lowest (steps 2-3). The context holds the phase; the other features are 0."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "history": spaces.Box(-1, N_ITEMS - 1, (H,), np.int64),
                "history_mask": spaces.Box(0, 1, (H,), np.int8),
                "candidates": spaces.Box(0, N_ITEMS - 1, (N,), np.int64),
                "candidate_features": spaces.Box(-10, 10, (N, len(FEATURES)), np.float32),
                "user_features": spaces.Box(-10, 10, (2,), np.float32),
                "context": spaces.Box(-1, 5, (2,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (len(FEATURES),), np.float32)
        self.t = 0
        self.obs: dict[str, np.ndarray] = {}

    def draw(self) -> dict[str, np.ndarray]:
        rng = self.np_random
        late = float(self.t >= 2)
        features = np.zeros((N, len(FEATURES)), np.float32)
        features[:, SIMILARITY] = rng.normal(size=N)
        self.obs = toy_observation(rng, features, [late, 1.0 - late])
        return self.obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self.draw(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        features = self.obs["candidate_features"]
        top = int(np.argmax(standardise(features[None])[0] @ action))
        similarity = features[:, SIMILARITY]
        wanted = int(np.argmax(similarity) if self.t < 2 else np.argmin(similarity))
        self.t += 1
        return self.draw(), float(top == wanted), False, self.t >= 4, {}


def wins_at(model: PPO, step: int, episodes: int = 200) -> float:
    """The share of won steps at session step ``step`` over fresh sessions."""
    env, wins = TwoPhases(), []
    for episode in range(episodes):
        env.reset(seed=50_000 + episode)
        env.t = step
        action, _ = model.predict(env.draw(), deterministic=True)
        wins.append(env.step(action)[1])
    return float(np.mean(wins))


def train_two_phases(learning_rate: float) -> tuple[float, float]:
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32)
    venv = DummyVecEnv([TwoPhases for _ in range(8)])
    venv.seed(0)
    model = PPO(
        RankingPolicy, venv, learning_rate=learning_rate, n_steps=64, batch_size=128, n_epochs=8, gamma=0.0,
        seed=0, device="cpu", policy_kwargs={"features_extractor_class": RankingExtractor,
        "features_extractor_kwargs": {"item_table": table, "dim": 8, "hidden": 16},
        "net_arch": {"pi": [], "vf": [16]}, "log_std_init": -0.5},
    )  # fmt: skip
    model.learn(4_000)
    return wins_at(model, 0), wins_at(model, 3)


def test_ppo_learns_to_switch_between_phases(one_thread: Any) -> None:
    early, late = train_two_phases(3e-3)
    assert early > 0.9 and late > 0.9
    early, late = train_two_phases(0.0)  # the same pipeline, learning off: one phase is lost
    assert min(early, late) < 0.5


PCTR, REPEATS = FEATURES.index("pctr"), FEATURES.index("session_topic_exposure")
STEPS_PER_SESSION, MONTH = 4, 5


class ReturnTrap(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A user's month of up to five four-step sessions. Each step offers four candidates: items of
    a topic the user was shown before (``session_topic_exposure`` 1) pay 1.0 when ranked first,
    fresh ones 0.7 (``pctr`` says so, so greedy ranking takes the repeats). After a session the
    user comes back with probability ``exp(-0.6 x repeats shown first)``; the context holds the
    step, the sessions so far and the last session's repeats, as the retention env's does. Always
    fresh earns 14.0 a month; greedy (always repeats) about 4.4."""

    def __init__(self) -> None:
        self.observation_space = TwoPhases().observation_space
        self.action_space = spaces.Box(-1, 1, (len(FEATURES),), np.float32)
        self.t = self.sessions = self.repeats = self.last = 0
        self.obs: dict[str, np.ndarray] = {}

    def draw(self) -> dict[str, np.ndarray]:
        rng = self.np_random
        features = np.zeros((N, len(FEATURES)), np.float32)
        features[:, REPEATS] = rng.permutation([1.0, 1.0, 0.0, 0.0])
        features[:, PCTR] = np.where(features[:, REPEATS] > 0, 1.0, 0.7) + rng.normal(0, 0.02, N)
        self.obs = toy_observation(rng, features, [self.t / STEPS_PER_SESSION, self.sessions / MONTH])
        return self.obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.t = self.sessions = self.repeats = 0
        return self.draw(), {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        features = self.obs["candidate_features"]
        top = int(np.argmax(standardise(features[None])[0] @ action))
        repeat = bool(features[top, REPEATS] > 0)
        self.repeats += repeat
        self.t += 1
        reward, left = (1.0 if repeat else 0.7), False
        if self.t == STEPS_PER_SESSION:  # the session ends: does the user come back this month?
            self.sessions += 1
            left = self.sessions == MONTH or bool(self.np_random.random() >= np.exp(-0.6 * self.repeats))
            self.t = self.repeats = 0
        return self.draw(), reward, left, False, {}


def month_return(act: Any, episodes: int = 200) -> float:
    """Mean return of ``act(observation)`` over fresh months."""
    env, totals = ReturnTrap(), []
    for episode in range(episodes):
        obs, _ = env.reset(seed=60_000 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, done, _, _ = env.step(act(obs))
            total += reward
        totals.append(total)
    return float(np.mean(totals))


@pytest.mark.slow
def test_ppo_learns_to_keep_users_coming_back(one_thread: Any) -> None:
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 8)).astype(np.float32)
    venv = DummyVecEnv([ReturnTrap for _ in range(8)])
    venv.seed(0)
    model = PPO(
        RankingPolicy, venv, learning_rate=3e-3, n_steps=64, batch_size=128, n_epochs=8, gamma=0.97,
        seed=0, device="cpu", policy_kwargs={"features_extractor_class": RankingExtractor,
        "features_extractor_kwargs": {"item_table": table, "dim": 8, "hidden": 16},
        "net_arch": {"pi": [], "vf": [16]}, "log_std_init": -0.5},
    )  # fmt: skip
    greedy = np.zeros(len(FEATURES), np.float32)
    greedy[PCTR] = 1.0
    myopic = month_return(lambda obs: greedy)
    assert myopic < 6.0  # the trap: ranking by what pays now loses the user
    model.learn(12_000)
    learned = month_return(lambda obs: model.predict(obs, deterministic=True)[0])
    assert learned > 12.0, (learned, myopic)
