"""The benchmarks' backends: Ray tasks give the serial run's numbers, and bad flags are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.backend import Backend
from simulators.core.errors import ConfigError


def square_with_threads(x: int) -> tuple[int, int]:
    import torch

    return x * x, torch.get_num_threads()


def test_serial_trials_run_in_order_with_one_thread() -> None:
    assert Backend().map(square_with_threads, [(1,), (2,), (3,)]) == [(1, 1), (4, 1), (9, 1)]


def test_bad_backend_flags_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="--backend"):
        Backend("dask")
    with pytest.raises(ConfigError, match="--address"):
        Backend("serial", address="10.0.0.1:6379")
    with pytest.raises(ConfigError, match="--cpus"):
        Backend("ray", cpus=0)


@pytest.mark.slow
def test_ray_trials_give_the_serial_numbers(tmp_path: Path) -> None:
    """A tiny sweep of the policies benchmark (two PPO seeds) on a local Ray: the same metrics."""
    from benchmarks.policies import Plan, run_all

    plan = Plan(seeds=2, timesteps=512, eval_episodes=16, agents=("ppo-static",), tuning_sessions=8,
                tuning_generations=1, n_envs=4)  # fmt: skip
    serial = run_all(plan, tmp_path / "serial")
    spread = run_all(plan, tmp_path / "ray", Backend("ray", cpus=2))
    for mine, theirs in zip(serial["runs"]["ppo-static"], spread["runs"]["ppo-static"], strict=True):
        assert {**mine["policy"], "policy": ""} == {
            **theirs["policy"],
            "policy": "",
        }  # all but the run folder
        assert mine["baselines"] == theirs["baselines"]
    assert serial["curves"] == spread["curves"]
    assert Backend("ray", cpus=2).map(square_with_threads, [(2,), (3,), (4,)]) == [(4, 1), (9, 1), (16, 1)]
