"""The Gymnasium interface of RecGym: ``gym.make("ecommerce-v0")``, ``gym.make("movielens-v0")``,
``gym.make("ecommerce-retention-v0")`` and ``gym.make("movielens-retention-v0")`` (one user's month
of sessions: :mod:`envs.retention`).

Each id also has a natively batched twin: ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``.
Modules: ``config`` (options and vocabularies), ``candidates``, ``world``, ``engine`` (the
compiled step), ``fairness`` (the exposure ledger), ``core`` (batched sessions), ``ranking`` (the
single env), ``vector`` (the batched twin), ``sb3`` (SB3's VecEnv view). Imports the simulators
and encoders; no torch of its own (the CTR model loads it only when used).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from simulators.core.errors import ConfigError

ENV_IDS = ("ecommerce-v0", "movielens-v0", "ecommerce-retention-v0", "movielens-retention-v0")

_OPTIONS: dict[str, dict[str, Any]] = {
    "ecommerce-v0": {"data": "shop"},
    "movielens-v0": {"data": "movielens"},
    # one user's month: the shop whose users come back after gaps that depend on their last session
    "ecommerce-retention-v0": {"data": "shop:returns", "horizon_days": 28.0},
    # MovieLens-100K's users over a month: the return model fitted from their rating sessions' gaps
    "movielens-retention-v0": {"data": "movielens", "horizon_days": 28.0},
}

for _env_id, _options in _OPTIONS.items():
    if _env_id not in gym.registry:
        gym.register(
            id=_env_id,
            entry_point="envs.ranking:RankingEnv",
            vector_entry_point="envs.vector:RankingVectorEnv",
            kwargs=dict(_options),
            disable_env_checker=False,
        )


def env_options(env_id: str) -> dict[str, Any]:
    """The env options a registered env id stands for (``ecommerce-retention-v0`` ->
    ``{"data": "shop:returns", "horizon_days": 28.0}``)."""
    if env_id not in ENV_IDS:
        raise ConfigError(f"unknown env {env_id!r}; registered: {list(ENV_IDS)}")
    return dict(_OPTIONS[env_id])


def env_data(env_id: str) -> str:
    """The ``data`` option a registered env id stands for (``ecommerce-v0`` -> ``shop``)."""
    return str(env_options(env_id)["data"])
