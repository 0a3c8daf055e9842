"""The benchmarks' backends: Ray tasks give the serial run's numbers, and bad flags are clear errors."""

from __future__ import annotations

import pytest

from agents.studies.backend import Backend
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
def test_ray_trials_give_the_serial_numbers() -> None:
    """A tiny sweep of the policies benchmark (two PPO seeds, then every true-shop play) serial and
    on a local Ray, as ``benchmarks.ray_scaling`` measures it: the same numbers."""
    from benchmarks.policies import Plan
    from benchmarks.ray_scaling import QUICK, measure

    report = measure(Plan(**{**QUICK, "agents": ("ppo-static",)}), cpus=2)
    assert report["identical_summary"] and report["identical_true_shop"] and report["identical_curves"]
    assert report["training_trials"] == 2 and report["serial_seconds"] > 0 and report["ray_seconds"] > 0
    assert Backend("ray", cpus=2).map(square_with_threads, [(2,), (3,), (4,)]) == [(4, 1), (9, 1), (16, 1)]
