"""The one way code builds an environment from an :class:`~envs.config.EnvConfig`: training,
evaluation, warm starts, export checks, OPE targets and studies all call :func:`make_vector_env`
(and SB3 code :func:`envs.sb3.make_sb3_env`, which wraps it), in the spirit of SB3's
``make_vec_env``. ``gym.make`` and ``gym.make_vec`` reach the same classes through the registry."""

from __future__ import annotations

from dataclasses import asdict

from envs.config import EnvConfig
from envs.vector import RankingVectorEnv


def make_vector_env(
    config: EnvConfig, num_envs: int, *, shared_ledger: bool = True, copy: bool = True
) -> RankingVectorEnv:
    """``num_envs`` parallel sessions of the env ``config`` describes (its world built, or read
    from this process's memo, once); the world is ``env.world``."""
    return RankingVectorEnv(num_envs=num_envs, shared_ledger=shared_ledger, copy=copy, **asdict(config))
