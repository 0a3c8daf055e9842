"""agents.networks: the ranking extractor's contracts and a learning test with a known best policy."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.training.networks import RankingExtractor, RankingPolicy
from envs.config import FEATURES
from envs.core import standardise

N_ITEMS, N, H = 40, 8, 4


class HiddenSignalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A one-step ranking bandit with the ``ids`` observation layout: reward 1 when the top
    item is the candidate with the highest ``similarity`` feature; ``pctr`` is pure noise.
    The best ``weights`` policy puts its weight on ``similarity`` (return 1); random ~1/N."""

    def __init__(self) -> None:
        feature_box = spaces.Box(-10, 10, (N, len(FEATURES)), np.float32)
        self.observation_space = spaces.Dict(
            {
                "history": spaces.Box(-1, N_ITEMS - 1, (H,), np.int64),
                "history_mask": spaces.Box(0, 1, (H,), np.int8),
                "candidates": spaces.Box(0, N_ITEMS - 1, (N,), np.int64),
                "candidate_features": feature_box,
                "user_features": spaces.Box(-10, 10, (2,), np.float32),
                "context": spaces.Box(-1, 5, (4,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (len(FEATURES),), np.float32)
        self._obs: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        features = rng.normal(size=(N, len(FEATURES))).astype(np.float32)
        self._obs = {
            "history": rng.integers(0, N_ITEMS, H),
            "history_mask": np.ones(H, dtype=np.int8),
            "candidates": rng.choice(N_ITEMS, N, replace=False),
            "candidate_features": features,
            "user_features": np.zeros(2, dtype=np.float32),
            "context": np.zeros(4, dtype=np.float32),
        }
        return self._obs, {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        features = self._obs["candidate_features"][None]
        top = int(np.argmax(standardise(features)[0] @ action))
        best = int(np.argmax(features[0, :, FEATURES.index("similarity")]))
        return self._obs, float(top == best), True, False, {}


def _train_toy(learning_rate: float) -> float:
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    venv = DummyVecEnv([HiddenSignalEnv for _ in range(8)])
    venv.seed(0)
    model = PPO(
        RankingPolicy, venv, learning_rate=learning_rate, n_steps=64, batch_size=128, n_epochs=8, seed=0,
        device="cpu", policy_kwargs={"features_extractor_class": RankingExtractor,
        "features_extractor_kwargs": {"item_table": table, "dim": 8, "hidden": 16},
        "net_arch": {"pi": [], "vf": [16]}, "log_std_init": -0.5},
    )  # fmt: skip
    model.learn(6_000)
    env = HiddenSignalEnv()
    wins = []
    for episode in range(200):
        obs, _ = env.reset(seed=10_000 + episode)
        action, _ = model.predict(obs, deterministic=True)
        wins.append(env.step(action)[1])
    return float(np.mean(wins))


@pytest.mark.slow
def test_ppo_learns_the_hidden_signal_and_a_frozen_learner_does_not() -> None:
    assert _train_toy(3e-3) > 0.6  # random ranking: 1/8
    assert _train_toy(0.0) < 0.4  # the same pipeline with learning switched off


def test_candidate_scores_are_permutation_equivariant() -> None:
    env = HiddenSignalEnv()
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    extractor = RankingExtractor(env.observation_space, table, dim=8, hidden=16)
    obs, _ = env.reset(seed=0)
    batch = {k: torch.as_tensor(np.asarray(v)[None]).float() for k, v in obs.items()}
    order = torch.randperm(N, generator=torch.Generator().manual_seed(1))
    shuffled = dict(batch, candidates=batch["candidates"][:, order],
                    candidate_features=batch["candidate_features"][:, order])  # fmt: skip
    with torch.no_grad():
        scores, state = extractor(batch).split([N, 16], dim=1)
        scores2, state2 = extractor(shuffled).split([N, 16], dim=1)
    torch.testing.assert_close(scores2, scores[:, order])
    torch.testing.assert_close(state2, state)


def _batch(env: HiddenSignalEnv, seeds: range) -> dict[str, torch.Tensor]:
    rows = [env.reset(seed=s)[0] for s in seeds]
    return {k: torch.as_tensor(np.stack([r[k] for r in rows])).float() for k in rows[0]}


def test_frozen_towers_compute_what_the_towers_compute_and_follow_a_load() -> None:
    """The frozen path looks the catalog up in cached tables: the same output as running the
    towers; loading new tower weights (a warm start) refreshes the tables."""
    env = HiddenSignalEnv()
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    torch.manual_seed(0)
    live = RankingExtractor(env.observation_space, table, dim=8, hidden=16)
    frozen = RankingExtractor(env.observation_space, table, dim=8, hidden=16, frozen_towers=True)
    frozen.load_state_dict(live.state_dict())
    batch = _batch(env, range(6))
    with torch.no_grad():
        torch.testing.assert_close(frozen(batch), live(batch))
        # a warm start writes the towers in place: the cached tables must not serve stale vectors
        torch.manual_seed(1)
        other = RankingExtractor(env.observation_space, table, dim=8, hidden=16)
        for model in (live, frozen):
            model.user_tower.load_state_dict(other.user_tower.state_dict())
            model.item_tower.text.load_state_dict(other.item_tower.text.state_dict())
        torch.testing.assert_close(frozen(batch), live(batch))
    assert not any(p.requires_grad for p in frozen.user_tower.parameters())
    assert not any(p.requires_grad for p in frozen.item_tower.parameters())


def test_ppo_with_frozen_towers_trains_the_scorer_and_leaves_the_towers() -> None:
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    venv = DummyVecEnv([HiddenSignalEnv for _ in range(4)])
    model = PPO(
        RankingPolicy, venv, n_steps=32, batch_size=64, n_epochs=2, seed=0, device="cpu",
        policy_kwargs={"features_extractor_class": RankingExtractor,
                       "features_extractor_kwargs": {"item_table": table, "dim": 8, "hidden": 16,
                                                     "frozen_towers": True},
                       "net_arch": {"pi": [], "vf": [16]}},
    )  # fmt: skip
    extractor = model.policy.features_extractor
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    model.learn(256)
    after = extractor.state_dict()
    towers = [k for k in before if k.startswith(("user_tower.", "item_tower."))]
    rest = [k for k in before if k not in towers]
    assert towers and rest
    assert all(torch.equal(before[k], after[k]) for k in towers)
    assert any(not torch.equal(before[k], after[k]) for k in rest)
