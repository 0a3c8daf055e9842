"""Stable-Baselines3 view of the native vector env (imports torch, so it lives apart)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecMonitor
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from envs.config import EnvConfig
from envs.factory import make_vector_env
from envs.vector import RankingVectorEnv
from envs.world import RankingWorld


def make_sb3_env(config: EnvConfig, num_envs: int, reset_seed: int | None = None) -> VecMonitor:
    """The batched env of ``config`` behind SB3's ``VecEnv`` interface, episode statistics kept
    by ``VecMonitor``; ``reset_seed`` seeds every reset (an evaluation env meets the same users
    each time). Its world is ``venv.world`` (SB3's wrappers pass the attribute through)."""
    return VecMonitor(SB3VecEnvAdapter(make_vector_env(config, num_envs), reset_seed=reset_seed))


class SB3VecEnvAdapter(VecEnv):
    """Stable-Baselines3 ``VecEnv`` view of a :class:`RankingVectorEnv` (no subprocesses).

    Args:
        env: the native vector env.
        reset_seed: seed every ``reset()`` with this, so each evaluation meets the same users
            (for evaluation envs); ``None`` = only the seed given to :meth:`seed`.
    """

    def __init__(self, env: RankingVectorEnv, reset_seed: int | None = None):
        self.env = env
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None
        self._seed: int | None = None
        self.reset_seed = reset_seed

    @property
    def world(self) -> RankingWorld:
        """The world the sessions run in."""
        return self.env.world

    def reset(self) -> dict[str, np.ndarray]:
        """Reset every env (with the seed given to :meth:`seed`, else ``reset_seed``)."""
        obs, _ = self.env.reset(seed=self._seed if self._seed is not None else self.reset_seed)
        self._seed = None
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step and convert to SB3's conventions (``terminal_observation``, ``TimeLimit.truncated``)."""
        assert self._actions is not None, "step_async first"
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            final = info["final_obs"]
            infos[i]["terminal_observation"] = (
                final[i] if isinstance(final, np.ndarray) else {k: v[i] for k, v in final.items()}
            )
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        for name in ("clicks", "purchases", "engagement", "fairness_penalty", "user_fairness_penalty",
                     "uncertainty_penalty"):  # fmt: skip
            for index, value in enumerate(info[name]):
                infos[index][name] = float(value)
        return obs, reward.astype(np.float32), dones, infos

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the next reset."""
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def close(self) -> None:
        """Nothing to release."""

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """Attributes of the underlying env (the same for every index)."""
        return [getattr(self.env, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the underlying env."""
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        """Call a method of the underlying env once per index."""
        return [getattr(self.env, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        """Never wrapped."""
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> list[np.ndarray]:
        """No images."""
        return []
