"""A trained SB3 agent as a RecGym policy: load a run folder and act on observations.

Off-policy evaluation reads an agent as a Plackett-Luce ranking over its scores
(:func:`agents.ope.targets.agent_policy`)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from envs.config import EnvConfig, known_options
from simulators.core.errors import ConfigError

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"a2c": A2C, "dqn": DQN, "ppo": PPO}
"""Algorithm name -> SB3 class."""


@dataclass
class TrainedAgent:
    """An SB3 model plus the env options it was trained with."""

    model: BaseAlgorithm
    algorithm: str
    env_id: str
    env_options: dict[str, Any]
    """Options of the env it acts in (``action_mode``, ``fairness_lambda``, ...)."""

    @property
    def env_config(self) -> EnvConfig:
        """The env it acts in (its recorded options that are :class:`EnvConfig` fields)."""
        return EnvConfig(**known_options(self.env_options))

    @property
    def action_mode(self) -> str:
        """The env action mode this agent's actions are for."""
        return str(self.env_options.get("action_mode", "scores"))

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Deterministic (mean or greedy) batched actions."""
        del rng
        actions, _ = self.model.predict(observation, deterministic=True)
        return np.asarray(actions)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> TrainedAgent:
        """From a run folder (``model.zip`` + ``config.json``) or a ``model.zip`` inside one."""
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such run folder (write one with python -m agents.train)")
        folder = path if path.is_dir() else path.parent
        model_file = folder / "model.zip" if path.is_dir() else path
        try:
            config = json.loads((folder / "config.json").read_text())
            algorithm = config["algorithm"]
            model_class = ALGORITHMS[algorithm]
            if not zipfile.is_zipfile(model_file):
                raise ValueError(f"{model_file} is not a zip archive")
            model = model_class.load(model_file, device=device)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile) as err:
            raise ConfigError(f"{path}: not a RecGym agent (a run folder of agents.train): {err}") from None
        return cls(model, algorithm, config["env"], dict(config["env_options"]))
