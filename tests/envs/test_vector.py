"""envs.vector: the native vector env against single envs, and gym.make_vec."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from envs.config import FEATURES
from envs.ranking import RankingEnv
from envs.vector import RankingVectorEnv


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


def test_make_vec_uses_the_native_vector_env() -> None:
    vector = gym.make_vec("ecommerce-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vector.unwrapped, RankingVectorEnv)
    obs, _ = vector.reset(seed=0)
    assert obs["candidate_features"].shape == (4, 50, len(FEATURES))
    assert vector.action_space.shape == (4, 50)
