"""envs.sb3: the stable-baselines3 VecEnv adapter."""

from __future__ import annotations

import numpy as np

from envs.sb3 import SB3VecEnvAdapter
from envs.vector import RankingVectorEnv


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
