"""A run folder belongs to one run: locked while it trains, refused to a second run unless told
to replace it, and resumed only from its own checkpoints."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from agents.training.callbacks import last_checkpoint
from agents.training.run_folder import checkpoint_prefix, own_run_folder
from simulators.core.errors import ConfigError
from tests.conftest import run_cli


def test_a_new_run_gets_an_id_and_a_second_process_is_refused(tmp_path: Path) -> None:
    with own_run_folder(tmp_path / "run", resume=False, overwrite=False) as run_id:
        assert run_id and len(run_id) == 12
        with pytest.raises(ConfigError, match="another run is using this folder"):
            with own_run_folder(tmp_path / "run", resume=False, overwrite=False):
                pass
    with own_run_folder(tmp_path / "run", resume=False, overwrite=False) as again:  # released
        assert again != run_id


def test_another_runs_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"run_id": "old"}))
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"holds another run \(old\); pass --overwrite"):
        with own_run_folder(tmp_path, resume=False, overwrite=False):
            pass
    assert (tmp_path / "config.json").is_file()
    with own_run_folder(tmp_path, resume=False, overwrite=True):
        assert not (tmp_path / "config.json").exists() and not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"  # not a run's file
    with pytest.raises(ConfigError, match="no run to resume"):
        with own_run_folder(tmp_path, resume=True, overwrite=False):
            pass


def test_resume_reads_only_its_own_checkpoints(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name in ("run-other_4096_steps.zip", "run-mine_1024_steps.zip", "rl_model_8192_steps.zip"):
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("data", "x")
            archive.writestr("policy.pth", "x")  # the members every SB3 model archive holds
    assert last_checkpoint(tmp_path, checkpoint_prefix("mine")) == (folder / "run-mine_1024_steps.zip", 1024)
    assert last_checkpoint(tmp_path, checkpoint_prefix("none-of-these")) is None


@pytest.mark.slow
def test_a_second_training_run_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    args = ["agents.train", "ppo", "--timesteps", "512", "--n-envs", "4", "--eval-episodes", "8",
            "--curve-episodes", "16", "--eval-freq", "512", "--checkpoint-freq", "256", "--tuning-sessions", "8",
            "--tuning-generations", "1", "--out", str(tmp_path / "run")]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    run_id = json.loads((tmp_path / "run" / "config.json").read_text())["run_id"]
    assert any(p.name.startswith(f"run-{run_id}_") for p in (tmp_path / "run" / "checkpoints").iterdir())
    second = run_cli(*args)
    assert (
        second.returncode == 2 and "holds another run" in second.stderr and "Traceback" not in second.stderr
    )
    third = run_cli(*args, "--overwrite")
    assert third.returncode == 0, third.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["run_id"] != run_id
