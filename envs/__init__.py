"""The Gymnasium interface of RecGym: ``gym.make("ecommerce-v0")``, ``gym.make("movielens-v0")``.

Each id also has a natively batched twin: ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
Modules: ``config`` (options and vocabularies), ``candidates``, ``world``, ``engine`` (the
compiled step), ``fairness`` (the exposure ledger), ``core`` (batched sessions), ``ranking`` (the
single env), ``vector`` (the batched twin), ``sb3`` (SB3's VecEnv view). Imports the simulators
and encoders; no torch of its own (the CTR model loads it only when used).
"""

from __future__ import annotations

import gymnasium as gym

from simulators.core.errors import ConfigError

ENV_IDS = ("ecommerce-v0", "movielens-v0")

_DATA = {"ecommerce-v0": "shop", "movielens-v0": "movielens"}

for _env_id, _data in _DATA.items():
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point="envs.ranking:RankingEnv",
            vector_entry_point="envs.vector:RankingVectorEnv",
            kwargs={"data": _data},
            disable_env_checker=False,
        )


def env_data(env_id: str) -> str:
    """The ``data`` option a registered env id stands for (``ecommerce-v0`` -> ``shop``)."""
    if env_id not in ENV_IDS:
        raise ConfigError(f"unknown env {env_id!r}; registered: {list(ENV_IDS)}")
    return _DATA[env_id]
