"""A trained SB3 agent as a RecGym policy: load a run folder and act on observations.

Off-policy evaluation reads an agent as a Plackett-Luce ranking over its scores
(:func:`agents.ope.targets.agent_policy`)."""

from __future__ import annotations

import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.policies.distilled import DISTILLED_RUN_FILES
from envs.config import DISCRETE_MODES, WEIGHTS, EnvConfig, known_options
from envs.core import discrete_actions
from simulators.core.errors import ConfigError

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"a2c": A2C, "dqn": DQN, "ppo": PPO}
"""Algorithm name -> SB3 class."""
RUN_FILES = ("config.json", "model.zip", "metrics.json", "learning_curve.png", "timing.json")
"""Files a training run writes at the top of its folder (a distillation's:
:data:`agents.policies.distilled.DISTILLED_RUN_FILES`)."""
RUN_FOLDERS = ("checkpoints", "eval", "best", "tb")
"""Sub-folders a training run writes."""
EXPORT_FILES = ("policy.onnx", "policy.check.json")
"""The run's ONNX export and its check (``agents.export``'s default names)."""


def shape_problem(model: BaseAlgorithm, options: dict[str, Any]) -> str | None:
    """Where a run's env options (its ``config.json``, perhaps edited) disagree with the shapes its
    model was trained on, in a few words (``None``: they agree)."""
    config = EnvConfig(**known_options(options))  # a value out of range is a ConfigError here
    observation, action = model.observation_space, model.action_space
    if isinstance(observation, spaces.Dict):
        for key, name, value in (("candidates", "n_candidates", config.n_candidates),
                                 ("history", "history_length", config.history_length)):  # fmt: skip
            shape = observation.spaces[key].shape if key in observation.spaces else None
            size = shape[0] if shape else None
            if size != value:
                return f"{name} is {value}, the model's observation has {size}"
    expected = {"scores": config.n_candidates, "weights": len(WEIGHTS)}.get(config.action_mode)
    if config.action_mode in DISCRETE_MODES:
        count = discrete_actions(config)
        if not isinstance(action, spaces.Discrete) or int(action.n) != count:
            return f"action_mode {config.action_mode} has {count} actions, the model acts on {action}"
    if expected is not None and (not isinstance(action, spaces.Box) or action.shape != (expected,)):
        return f"action_mode {config.action_mode} takes {expected} values, the model acts on {action}"
    return None


def run_files(folder: str | Path) -> list[Path]:
    """The existing files that make up a run folder (what a run wrote and what its export added):
    no command may write an output over them. Other files there (an evaluation's JSON, the serving
    log) are not the run's."""
    folder = Path(folder)
    if not folder.is_dir():
        return [folder] if folder.is_file() else []
    files = [
        folder / name
        for name in (*RUN_FILES, *EXPORT_FILES, *DISTILLED_RUN_FILES)
        if (folder / name).is_file()
    ]
    for name in RUN_FOLDERS:
        files += [path for path in (folder / name).rglob("*") if path.is_file()]
    return files


def copy_model(run: str | Path, out: Path) -> Path:
    """The files of ``run`` at its top (its model, config, metrics; not its checkpoints, logs or
    evaluations) copied to the folder ``out``, which they replace whole: a copy killed half-way
    is never read as a run (it is built beside ``out`` and renamed)."""
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in (*RUN_FILES, *EXPORT_FILES):
        if (Path(run) / name).is_file():
            shutil.copy2(Path(run) / name, partial / name)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


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
        options = config.get("env_options")
        if not isinstance(options, dict):
            raise ConfigError(f"{folder / 'config.json'}: env_options must be an object of env options")
        problem = shape_problem(model, options)
        if problem:
            raise ConfigError(f"{folder / 'config.json'} does not describe its model: {problem}")
        return cls(model, algorithm, config["env"], dict(options))
