"""The main job resolves its world once: the logs load once and are fingerprinted once per run,
and every part (the fit, the CTR model, the candidates, the tuned re-rankers, the warm start, the
evaluation, the report) reads that one object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import simulators.data.logs as logs_module
from agents.training.train import main as train_main
from envs.config import EnvConfig
from envs.factory import make_vector_env
from envs.sb3 import make_sb3_env
from envs.world import build_world, forget_worlds
from simulators.data.logs import LoggedData
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP

TINY = ["--timesteps", "512", "--n-envs", "4", "--eval-episodes", "8", "--curve-episodes", "16", "--eval-freq", "256",
        "--tuning-sessions", "4", "--tuning-generations", "1", "--candidates", "popularity"]  # fmt: skip


@pytest.mark.slow
def test_the_main_job_loads_and_fingerprints_the_logs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {"loads": 0, "fingerprints": 0}
    validate, fingerprint = LoggedData.validate, logs_module.data_fingerprint

    def counted_validate(self: LoggedData) -> LoggedData:  # every loader validates what it read, once
        counts["loads"] += 1
        return validate(self)

    def counted_fingerprint(logs: LoggedData) -> Any:
        counts["fingerprints"] += 1
        return fingerprint(logs)

    data = str(shop_folder(SMALL_SHOP))
    for run in ("cold", "warm"):  # the first run fills the caches, the second reads them
        forget_worlds()
        counts.update(loads=0, fingerprints=0)
        monkeypatch.setattr(LoggedData, "validate", counted_validate)
        monkeypatch.setattr(logs_module, "data_fingerprint", counted_fingerprint)
        train_main(["ppo", *TINY, "--data", data, "--out", str(tmp_path / run)])
        monkeypatch.undo()
        assert counts == {"loads": 1, "fingerprints": 1}, (run, counts)


def test_the_env_factory_builds_every_env_from_one_world() -> None:
    config = EnvConfig(data=str(shop_folder(SMALL_SHOP)), candidates="popularity")
    vector = make_vector_env(config, 3)
    sb3 = make_sb3_env(config, 2, reset_seed=5)
    assert vector.world is build_world(config) and sb3.world is vector.world  # the world through a property
    assert vector.num_envs == 3 and sb3.num_envs == 2
