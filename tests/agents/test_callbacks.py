"""agents.training.callbacks: checkpoints, the learning curve and best models are complete or absent.

A write that dies half-way (here: the save raises after writing part of the file) must leave
the previous file intact and no truncated file under the name ``--resume`` reads.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.training.callbacks import (
    AtomicCheckpointCallback,
    PairedEvalCallback,
    last_checkpoint,
    save_model_atomic,
)


class WriteDied(RuntimeError):
    """Stands for a process killed in the middle of a write."""


def cartpole() -> DummyVecEnv:
    return DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1"))])


def die_half_way(path: Any, *args: Any, **kwargs: Any) -> None:
    """A save that writes a truncated file under the name it was given, then dies."""
    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(".zip")
    target.write_bytes(b"PK\x03\x04 truncated")
    raise WriteDied(str(target))


def checkpoint_at(callback: AtomicCheckpointCallback, model: BaseAlgorithm, steps: int) -> None:
    assert callback.save_freq == 1  # every call saves
    model.num_timesteps = steps
    callback.on_step()


def visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("algorithm", [PPO, DQN])
def test_a_checkpoint_that_dies_half_way_leaves_the_last_complete_one(
    algorithm: type[PPO | DQN], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "checkpoints"  # the layout ``--resume`` reads
    model = algorithm("MlpPolicy", cartpole(), seed=0)
    callback = AtomicCheckpointCallback(1, str(folder), save_replay_buffer=True)
    callback.init_callback(model)
    checkpoint_at(callback, model, 10)
    expected = ["rl_model_10_steps.zip"] + (
        ["rl_model_replay_buffer_10_steps.pkl"] if algorithm is DQN else []
    )
    assert visible_files(folder) == sorted(expected)

    monkeypatch.setattr(model, "save", die_half_way)
    with pytest.raises(WriteDied):
        checkpoint_at(callback, model, 20)
    assert "rl_model_20_steps.zip" not in visible_files(folder)
    assert last_checkpoint(tmp_path) == (folder / "rl_model_10_steps.zip", 10)
    algorithm.load(folder / "rl_model_10_steps.zip")  # the survivor is a loadable model


def test_only_the_latest_replay_buffer_is_kept(tmp_path: Path) -> None:
    """Each buffer is as large as the replay memory (gigabytes in a long run): a new complete
    checkpoint removes the older buffers; the model files stay."""
    folder = tmp_path / "checkpoints"
    model = DQN("MlpPolicy", cartpole(), seed=0, buffer_size=100)
    callback = AtomicCheckpointCallback(1, str(folder), save_replay_buffer=True)
    callback.init_callback(model)
    for steps in (10, 20, 30):
        checkpoint_at(callback, model, steps)
    assert visible_files(folder) == sorted(
        ["rl_model_10_steps.zip", "rl_model_20_steps.zip", "rl_model_30_steps.zip",
         "rl_model_replay_buffer_30_steps.pkl"]
    )  # fmt: skip


def fixed_sessions(returns: list[float], lengths: list[int]) -> Any:
    """An ``evaluate`` for :class:`PairedEvalCallback`: the same sessions' returns every time."""
    return lambda model: (np.array(returns), np.array(lengths))


def curve(tmp_path: Path, evaluate: Any, eval_freq: int = 1) -> PairedEvalCallback:
    return PairedEvalCallback(
        evaluate, eval_freq, log_path=str(tmp_path / "eval"), best_model_save_path=str(tmp_path / "best")
    )


def test_evaluation_files_survive_a_write_that_dies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    callback = curve(tmp_path, fixed_sessions([1.0, 2.0], [3, 4]))
    model.set_logger(configure(None, []))
    callback.init_callback(model)
    callback.start_curve(model)
    callback.on_step()
    log = tmp_path / "eval" / "evaluations.npz"
    assert visible_files(tmp_path / "eval") == ["evaluations.npz"]
    assert visible_files(tmp_path / "best") == ["best_model.zip"]
    assert np.load(log)["timesteps"].shape == (2,)

    def savez_dies(handle: Any, **arrays: Any) -> None:
        handle.write(b"PK\x03\x04 truncated")
        raise WriteDied("evaluations.npz")

    monkeypatch.setattr(np, "savez", savez_dies)
    with pytest.raises(WriteDied):
        callback.on_step()
    monkeypatch.undo()
    assert np.load(log)["timesteps"].shape == (2,)  # the previous curve, intact
    assert zipfile.is_zipfile(tmp_path / "best" / "best_model.zip")
    assert visible_files(tmp_path / "eval") == ["evaluations.npz"]


def test_save_model_atomic_replaces_the_file_only_when_the_save_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    target = tmp_path / "model.zip"
    save_model_atomic(model, target)
    before = target.read_bytes()
    monkeypatch.setattr(model, "save", die_half_way)
    with pytest.raises(WriteDied):
        save_model_atomic(model, target)
    assert target.read_bytes() == before
    assert visible_files(tmp_path) == ["model.zip"] and not list(tmp_path.glob(".*"))


def test_resume_skips_a_truncated_checkpoint_left_by_an_older_version(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    save_model_atomic(model, folder / "rl_model_10_steps.zip")
    (folder / "rl_model_20_steps.zip").write_bytes(b"PK\x03\x04 truncated")
    (folder / "rl_model_x_steps.zip").write_bytes(b"not ours")
    with pytest.warns(UserWarning, match="rl_model_20_steps.zip: not a complete checkpoint"):
        assert last_checkpoint(tmp_path) == (folder / "rl_model_10_steps.zip", 10)
    (folder / "rl_model_10_steps.zip").unlink()
    with pytest.warns(UserWarning):
        assert last_checkpoint(tmp_path) is None


def test_restore_keeps_the_curve_up_to_the_checkpoint(tmp_path: Path) -> None:
    callback = curve(tmp_path, fixed_sessions([0.0], [1]))
    callback.restore(up_to=250)  # no curve yet: nothing to restore
    assert callback.evaluations_timesteps == [] and callback.best_mean_reward == -np.inf
    (tmp_path / "eval").mkdir()
    results = np.array([[5.0, 5.0], [1.0, 1.0], [2.0, 4.0], [9.0, 9.0]])
    np.savez(tmp_path / "eval" / "evaluations.npz", timesteps=[0, 100, 200, 300], results=results,
             ep_lengths=np.ones((4, 2)))  # fmt: skip
    callback.restore(up_to=250)  # the run resumes from step 250: the point at 300 will be redone
    assert callback.evaluations_timesteps == [0, 100, 200]
    assert callback.evaluations_results == results[:3].tolist()
    assert callback.best_mean_reward == 5.0 and callback.best_point == 0  # the start is a point to beat


def test_the_untrained_point_is_on_disk_before_training_starts(tmp_path: Path) -> None:
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    curve(tmp_path, fixed_sessions([1.0, 3.0], [10, 12])).start_curve(model)
    assert zipfile.is_zipfile(tmp_path / "best" / "best_model.zip")  # the start: the best point so far
    resumed = curve(tmp_path, fixed_sessions([0.0], [1]))  # as after a kill before the first periodic point
    resumed.restore(up_to=64)
    assert resumed.evaluations_timesteps == [0] and resumed.evaluations_results == [[1.0, 3.0]]
    assert resumed.evaluations_length == [[10, 12]] and resumed.best_mean_reward == 2.0


def scripted_sessions(means: list[float]) -> Any:
    """An ``evaluate`` whose successive points earn ``means`` (two sessions each)."""
    points = iter(means)
    return lambda model: (np.full(2, next(points)), np.array([3, 4]))


def test_a_run_that_only_got_worse_keeps_its_start(tmp_path: Path) -> None:
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    model.set_logger(configure(None, []))
    callback = curve(tmp_path, scripted_sessions([5.0, 4.0, 3.0]))
    callback.init_callback(model)
    callback.start_curve(model)
    start = {k: v.clone() for k, v in model.policy.state_dict().items()}
    callback.on_step()
    for parameter in model.policy.parameters():  # training moved the network
        parameter.data.add_(1.0)
    assert callback.finish(model) == 0  # the last point is below the start: the best point, the start
    kept = PPO.load(tmp_path / "best" / "best_model.zip")
    assert all(torch.equal(kept.policy.state_dict()[k], v) for k, v in start.items())
    assert np.load(tmp_path / "eval" / "evaluations.npz")["timesteps"].shape == (3,)


def test_a_run_that_ends_above_its_start_keeps_its_last_model_and_a_resume_remembers_the_best(
    tmp_path: Path,
) -> None:
    model = PPO("MlpPolicy", cartpole(), seed=0, n_steps=64)
    model.set_logger(configure(None, []))
    callback = curve(tmp_path, scripted_sessions([5.0, 7.0, 6.0]))
    callback.init_callback(model)
    callback.start_curve(model)
    model.num_timesteps = 64
    callback.on_step()
    model.num_timesteps = 128
    assert callback.finish(model) is None  # at or above the start: the model as training left it
    assert callback.best_point == 1  # (a better point in between is not chased: it may be noise)
    again = curve(tmp_path, scripted_sessions([]))
    again.restore(up_to=64)  # resuming from step 64: the points up to it
    assert again.best_mean_reward == 7.0 and again.best_point == 1
