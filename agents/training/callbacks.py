"""The training run's callbacks: checkpoints (SB3's, written atomically) and the learning curve
evaluated on fixed sessions (paired at every point).

SB3 writes checkpoints in place, so a run killed during a write leaves a truncated file that
``--resume`` then cannot read. These callbacks write each file beside its target and rename it
over the target once it is complete: a kill at any instant leaves the previous version of every
file intact.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

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
    has its buffer beside it: the model file marks a complete checkpoint. Only the latest
    checkpoint's buffer is kept (each is as large as the buffer, gigabytes for a long run; a
    resume starts from the latest checkpoint); the older buffers are removed once the new
    checkpoint is complete.
    """

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq != 0:
            return True
        buffer = getattr(self.model, "replay_buffer", None)
        if self.save_replay_buffer and buffer is not None:
            path = Path(self._checkpoint_path("replay_buffer_", extension="pkl"))
            _save_atomic(self.model.save_replay_buffer, path)  # type: ignore[attr-defined]
        save_model_atomic(self.model, Path(self._checkpoint_path(extension="zip")))
        if self.save_replay_buffer and buffer is not None:
            for old in Path(self.save_path).glob(f"{self.name_prefix}_replay_buffer_*_steps.pkl"):
                if old != path:
                    old.unlink(missing_ok=True)
        return True


CURVE_FILE = "evaluations.npz"
"""The learning curve's file in the evaluation folder (SB3's name)."""


class PairedEvalCallback(BaseCallback):
    """The learning curve on fixed sessions: every ``eval_freq`` calls (and once before training),
    ``evaluate(model)`` plays the same evaluation sessions (the same users and session keys at
    every point, and for the references), and the per-session returns join ``evaluations.npz``
    (``timesteps (P,)``, ``results (P, E)`` in session order, ``ep_lengths (P, E)``), so any two
    points, or a point and a reference, compare paired. The model whose sessions earned most so
    far (the best point, paired against every other on the same sessions) is ``best_model.zip``;
    the starting point counts, so a run that ends below its start keeps the best point (:meth:`finish`).
    Every file is written atomically.

    Args:
        evaluate: plays the evaluation sessions with a model: ``(returns (E,), lengths (E,))``.
        eval_freq: calls of the callback between evaluations.
        log_path: folder of ``evaluations.npz``.
        best_model_save_path: folder of ``best_model.zip``.
    """

    def __init__(
        self, evaluate: Callable[[Any], tuple[np.ndarray, np.ndarray]], eval_freq: int, *, log_path: str,
        best_model_save_path: str,
    ) -> None:  # fmt: skip
        super().__init__(verbose=0)
        self.evaluate, self.eval_freq = evaluate, eval_freq
        self.final_log = Path(log_path) / CURVE_FILE
        self.final_best = Path(best_model_save_path) / "best_model.zip"
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[list[float]] = []
        self.evaluations_length: list[list[int]] = []
        self.best_mean_reward = -np.inf
        self.best_point = -1
        """Index of the best point so far in the curve (0: the start; -1: none yet)."""

    def start_curve(self, model: Any) -> None:
        """Evaluate the untrained (warm-started) model as the curve's point at step 0, on disk at
        once (a run killed before its first periodic evaluation keeps it); it is the best point
        until a later one earns more on the same sessions."""
        self.evaluations_timesteps, self.evaluations_results, self.evaluations_length = [], [], []
        self.best_mean_reward = -np.inf
        self._record(model, 0)

    def restore(self, up_to: int) -> None:
        """Resume the curve of an interrupted run: its evaluations at steps ``<= up_to`` (the
        checkpoint the run resumes from; later ones would be run again), and the best point
        among them, so a worse evaluation does not overwrite ``best_model.zip``."""
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
        if len(results):
            self.best_point = int(np.argmax(results.mean(axis=1)))
            self.best_mean_reward = float(results[self.best_point].mean())

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self._record(self.model, int(self.num_timesteps))
        return True

    def finish(self, model: Any) -> int | None:
        """The curve's last point: ``model`` as training left it (always evaluated: SB3 updates
        the network after the callbacks of its last step, so a point at the same step may hold
        other parameters). ``None`` when it earned at least what the start earned on the curve's
        sessions (keep it: picking the best of many noisy points would chase noise); else the
        step of the best point (``best_model.zip``, the start or a point above it), so a run
        never ends below where it began."""
        self._record(model, int(model.num_timesteps))
        results = self.evaluations_results
        if float(np.mean(results[-1])) >= float(np.mean(results[0])):
            return None
        return int(self.evaluations_timesteps[self.best_point])

    def _record(self, model: Any, steps: int) -> None:
        returns, lengths = self.evaluate(model)
        self.evaluations_timesteps.append(steps)
        self.evaluations_results.append([float(r) for r in returns])
        self.evaluations_length.append([int(n) for n in lengths])
        with atomic_path(self.final_log) as tmp, tmp.open("wb") as handle:
            np.savez(
                handle, timesteps=np.array(self.evaluations_timesteps),
                results=np.array(self.evaluations_results), ep_lengths=np.array(self.evaluations_length),
            )  # fmt: skip
        mean = float(np.mean(returns))
        if mean > self.best_mean_reward:
            self.best_mean_reward, self.best_point = mean, len(self.evaluations_timesteps) - 1
            save_model_atomic(model, self.final_best)


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
        problem = checkpoint_problem(path)
        if problem is None:
            return path, steps
        warnings.warn(f"skipping {path}: not a complete checkpoint ({problem})", stacklevel=2)
    return None


SB3_MEMBERS = ("data", "policy.pth")
"""What every SB3 model archive holds (its settings and its network's parameters)."""


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a saved SB3 model, in a few words (``None``: a whole archive with its
    settings and parameters, every member's checksum intact)."""
    if not zipfile.is_zipfile(path):
        return "truncated zip file"
    try:
        with zipfile.ZipFile(path) as archive:
            missing = [name for name in SB3_MEMBERS if name not in archive.namelist()]
            if missing:
                return f"no {', '.join(missing)} in the archive"
            broken = archive.testzip()
            if broken is not None:
                return f"{broken} fails its checksum"
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError) as err:
        return f"unreadable ({err})"
    return None
