"""SB3's checkpoint and evaluation callbacks, writing every file atomically.

SB3 writes checkpoints, ``evaluations.npz`` and ``best_model.zip`` in place, so a run killed
during a write leaves a truncated file that ``--resume`` then cannot read. These subclasses
write each file beside its target and rename it over the target once it is complete: a kill at
any instant leaves the previous version of every file intact.
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback

from simulators.core.storage import atomic_path


def _save_atomic(save: Callable[[Path], None], path: Path) -> None:
    """``save(path)``, atomically. SB3's savers append their extension to a name without it, so
    they write to a staged name ending in ``path``'s suffix, renamed into place when complete."""
    with atomic_path(path) as tmp:
        staged = tmp.with_suffix(path.suffix)
        try:
            save(staged)
            staged.replace(tmp)
        finally:
            staged.unlink(missing_ok=True)


def save_model_atomic(model: BaseAlgorithm, path: Path) -> None:
    """``model.save(path)``, atomically."""
    _save_atomic(model.save, path)


class AtomicCheckpointCallback(CheckpointCallback):
    """:class:`CheckpointCallback` whose files are complete or absent, never truncated.

    The replay buffer (DQN) is written before the model, so a model checkpoint on disk always
    has its buffer beside it: the model file marks a complete checkpoint.
    """

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq != 0:
            return True
        buffer = getattr(self.model, "replay_buffer", None)
        if self.save_replay_buffer and buffer is not None:
            path = Path(self._checkpoint_path("replay_buffer_", extension="pkl"))
            _save_atomic(self.model.save_replay_buffer, path)  # type: ignore[attr-defined]
        save_model_atomic(self.model, Path(self._checkpoint_path(extension="zip")))
        return True


CURVE_FILE = "evaluations.npz"
"""The learning curve's file in the evaluation folder (SB3's name)."""


class AtomicEvalCallback(EvalCallback):
    """:class:`EvalCallback` whose ``evaluations.npz`` and ``best_model.zip`` are never truncated.

    The parent writes into a staging name (``evaluations.partial.npz``, ``best/.staging/``);
    after each evaluation the finished files are renamed over their targets.
    """

    def __init__(self, eval_env: Any, *, log_path: str, best_model_save_path: str, **kwargs: Any) -> None:
        self.final_log = Path(log_path) / CURVE_FILE
        self.final_best = Path(best_model_save_path) / "best_model.zip"
        self.staging = Path(best_model_save_path) / ".staging"
        super().__init__(eval_env, log_path=log_path, best_model_save_path=str(self.staging), **kwargs)
        assert self.log_path is not None
        self.log_path = str(self.final_log.with_name("evaluations.partial"))  # np.savez adds .npz

    def start_curve(self, returns: list[float], lengths: list[int]) -> None:
        """Record the untrained policy's evaluation as the curve's point at step 0, on disk at once
        (a run killed before its first periodic evaluation keeps it)."""
        self.evaluations_timesteps = [0]
        self.evaluations_results = [list(returns)]
        self.evaluations_length = [list(lengths)]
        with atomic_path(self.final_log) as tmp, tmp.open("wb") as handle:
            np.savez(handle, timesteps=[0], results=[returns], ep_lengths=[lengths])

    def restore(self, up_to: int) -> None:
        """Resume the curve of an interrupted run: its evaluations at steps ``<= up_to`` (the
        checkpoint the run resumes from; later ones would be run again), and the best mean
        return among them, so a worse evaluation does not overwrite ``best_model.zip``."""
        if not self.final_log.is_file():
            return
        with np.load(self.final_log) as file:
            keep = file["timesteps"] <= up_to
            timesteps, results, lengths = (
                file["timesteps"][keep],
                file["results"][keep],
                file["ep_lengths"][keep],
            )
        self.evaluations_timesteps = timesteps.tolist()
        self.evaluations_results = results.tolist()
        self.evaluations_length = lengths.tolist()
        periodic = results[timesteps > 0]  # a curve's point at step 0 (the untrained policy) saves no model
        if len(periodic):
            self.best_mean_reward = float(periodic.mean(axis=1).max())

    def _on_step(self) -> bool:
        keep_going = super()._on_step()
        for staged, final in (
            (Path(f"{self.log_path}.npz"), self.final_log),
            (self.staging / "best_model.zip", self.final_best),
        ):
            if staged.is_file():
                os.replace(staged, final)
        return keep_going


def last_checkpoint(folder: Path, prefix: str = "rl_model") -> tuple[Path, int] | None:
    """The newest readable ``folder/checkpoints/{prefix}_{steps}_steps.zip`` and its step count;
    ``prefix`` names the run (:func:`agents.run_folder.checkpoint_prefix`), so another run's
    checkpoints are never picked.

    A checkpoint that is not a complete zip file (one written in place by an older version and
    cut by a kill) is skipped with a warning, so ``--resume`` falls back to the one before it.
    """
    found = []
    for path in (folder / "checkpoints").glob(f"{prefix}_*_steps.zip"):
        match = re.fullmatch(rf"{re.escape(prefix)}_(\d+)_steps\.zip", path.name)
        if match:
            found.append((int(match.group(1)), path))
    for steps, path in sorted(found, reverse=True):
        if zipfile.is_zipfile(path):
            return path, steps
        warnings.warn(f"skipping {path}: not a complete checkpoint (truncated zip file)", stacklevel=2)
    return None
