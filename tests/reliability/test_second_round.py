"""Reliability, second round, class by class: no command writes over its own input (and writability
is tried, not trusted); own logs are never misread in silence; damaged checkpoints and edited run
configs are caught; composite commands check their flags before any work. (Served slates through
a SIGKILL and the first serve of a run: ``tests/agents/test_serve.py``.)"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from agents.training.callbacks import last_checkpoint
from simulators.core.errors import ConfigError, DataError, DataWarning
from simulators.core.storage import cache_dir, check_output_file, check_output_folder
from simulators.datasets import load_logs
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP, TINY, copy_run, run_cli


def one_line_exit_2(result: object, *needles: str) -> None:
    """A refused command: exit code 2, one line on stderr naming the problem, no traceback."""
    stderr = getattr(result, "stderr", "")
    assert getattr(result, "returncode", None) == 2, stderr[-1500:]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr[-1500:]
    for needle in needles:
        assert needle in stderr, (needle, stderr)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_ppo_run: Path) -> Path:
    """A tiny PPO run on the shop (a private copy)."""
    return copy_run(tiny_ppo_run, tmp_path_factory.mktemp("second-round") / "ppo")


# ------------------------------------------------------------- 1. an output written over an input
@pytest.mark.slow
def test_no_command_writes_over_its_own_input(run: Path, tmp_path: Path) -> None:
    before = {name: (run / name).read_bytes() for name in ("config.json", "model.zip")}
    data = tmp_path / "logs"
    data.mkdir()
    pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "timestamp": [10, 20], "click": [1, 0]}).to_csv(
        data / "interactions.csv", index=False
    )
    refused = [
        run_cli("agents.evaluate", "--policy", str(run), "--episodes", "4", "--json", str(run / "config.json")),
        run_cli("agents.export", str(run), "--onnx", str(run / "model.zip")),
        run_cli("agents.ope", "--policy", "ctr", "--data", str(data), "--json", str(data / "interactions.csv")),
        run_cli("agents.ope", "--policy", str(run), "--data", "shop", "--json", str(run / "metrics.json")),
        run_cli("agents.train", "ppo", *TINY, "--data", str(shop_folder(SMALL_SHOP)), "--out", str(shop_folder(SMALL_SHOP))),
    ]  # fmt: skip
    for result in refused:
        one_line_exit_2(result, "one of the command's inputs")
    assert {name: (run / name).read_bytes() for name in before} == before
    assert (data / "interactions.csv").read_text().startswith("user_id")
    beside = run_cli(
        "agents.evaluate", "--policy", str(run), "--episodes", "4", "--json", str(run / "eval.json")
    )
    assert (
        beside.returncode == 0 and (run / "eval.json").is_file()
    )  # a new file beside the run's stays allowed
    again = run_cli(
        "agents.evaluate", "--policy", str(run), "--episodes", "4", "--json", str(run / "eval.json")
    )
    assert again.returncode == 0  # and so does replacing that output


def test_writability_is_tried_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = Path("/proc/self/recgym.json")
    with pytest.raises(ConfigError, match="cannot write in"):
        check_output_file(proc, "--json")  # root may "access" /proc, and writing there still fails
    with pytest.raises(ConfigError, match="cannot write in"):
        check_output_folder(Path("/proc/self/recgym-run"), "--out")
    a_file = tmp_path / "cache-file"
    a_file.write_text("x")
    monkeypatch.setenv("RECGYM_CACHE", str(a_file))
    with pytest.raises(ConfigError, match=r"\$RECGYM_CACHE .*cannot be the cache folder"):
        cache_dir("simulators")
    monkeypatch.setenv("RECGYM_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "simulators").write_text("an entry replaced by a file")
    assert cache_dir("simulators").is_dir()  # reported in one line and made a folder again


def test_a_cli_refuses_an_unwritable_output_before_any_work(tmp_path: Path) -> None:
    result = run_cli("agents.evaluate", "--policy", "ctr", "--json", "/proc/self/eval.json")
    one_line_exit_2(result, "--json", "cannot write in")


# ---------------------------------------------------------------- 2. own logs read wrongly
def _write(folder: Path, text: str, name: str = "interactions.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def test_own_logs_are_never_misread_in_silence(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"duplicate column name\(s\) \['click'\] in the header"):
        load_logs(_write(tmp_path / "dup", "user_id,item_id,timestamp,click,click\n1,1,10,1,0\n"))
    both = _write(tmp_path / "both", "user_id,item_id,timestamp,click\n1,1,10,1\n")
    pd.read_csv(both / "interactions.csv").to_parquet(both / "interactions.parquet")
    with pytest.raises(DataError, match=r"the interactions table is there 2 times"):
        load_logs(both)
    millis = "user_id,item_id,timestamp,click\n" + "".join(
        f"1,{i % 3 + 1},{1_700_000_000_000 + 60_000 * i},1\n" for i in range(20)
    )  # a row a minute: one session, in milliseconds
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", DataWarning)
        logs = load_logs(_write(tmp_path / "ms", millis))
    assert logs.interactions["session_id"].nunique() == 1  # read as seconds it would be 20 sessions
    assert any("read as milliseconds" in str(w.message) for w in said) and any(
        "milliseconds" in n for n in logs.notes
    )
    mixed = _write(
        tmp_path / "mixed",
        "user_id,item_id,timestamp,click\n1,1,1700000000,1\n1,2,2023-11-14,0\n1,3,1700000100,1\n",
    )
    with pytest.raises(DataError, match=r"mixes numbers and dates .* at row 1: '2023-11-14'"):
        load_logs(mixed)
    slates = "user_id,item_id,timestamp,session_id,position,click,purchase\n" + "".join(
        f"1,{p},10,7,{p},{int(p == 3)},{int(p in (3, 12))}\n" for p in range(1, 13)
    )  # twelve positions, and a purchase at 12 without a click
    long = load_logs(_write(tmp_path / "long", slates))
    assert any("2 row(s) below position 10" in note for note in long.notes)
    assert any("1 purchase(s) without a click counted as clicks" in note for note in long.notes)
    row = long.interactions[long.interactions["position"] == 12].iloc[0]
    assert row["click"] == 1 and row["purchase"] == 1
    back = "user_id,item_id,timestamp,session_id,click\n1,1,30,7,1\n1,2,10,7,0\n"
    reordered = load_logs(_write(tmp_path / "back", back))  # sorted by time, and said, naming the row
    assert reordered.interactions["item_id"].tolist() == [2, 1]
    assert any("1 row(s) come earlier" in n and "row 1 of session 7 (10 s, after 30 s at row 0)" in n
               for n in reordered.notes)  # fmt: skip


# ------------------------------------------- 4. damaged checkpoints and edited run configs
@pytest.mark.slow
def test_damaged_checkpoints_and_edited_configs_are_caught(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
    checkpoints = sorted((copy / "checkpoints").glob("run-*_steps.zip"))
    assert checkpoints
    prefix = checkpoints[0].name.rsplit("_", 2)[0]
    newest = copy / "checkpoints" / f"{prefix}_99999_steps.zip"
    with zipfile.ZipFile(newest, "w"):
        pass  # a valid zip, empty
    with pytest.warns(UserWarning, match="no data, policy.pth in the archive"):
        found = last_checkpoint(copy, prefix)
    assert found is not None and found[0] != newest
    flipped = bytearray(checkpoints[-1].read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    newest.write_bytes(bytes(flipped))
    with pytest.warns(UserWarning, match="not a complete checkpoint"):
        assert last_checkpoint(copy, prefix) != (newest, 99999)
    config = json.loads((copy / "config.json").read_text())
    config["env_options"]["n_candidates"] = 40
    (copy / "config.json").write_text(json.dumps(config))
    evaluated = run_cli(
        "agents.evaluate", "--policy", str(copy), "--episodes", "4", "--json", str(tmp_path / "e.json")
    )
    one_line_exit_2(evaluated, "n_candidates is 40, the model's observation has 50")
    del config["run_id"]
    config["env_options"]["n_candidates"] = 50
    (copy / "config.json").write_text(json.dumps(config))
    one_line_exit_2(run_cli("agents.train", "ppo", "--resume", str(copy)), "names no run_id")
    one_line_exit_2(
        run_cli("agents.train", "ppo", "--resume", str(run), "--out", str(tmp_path / "b")), "--out"
    )
    one_line_exit_2(run_cli("agents.train", "ppo", "--resume", str(run), "--seed", "5"), "--seed")
    one_line_exit_2(
        run_cli("agents.adapt", "--out", str(tmp_path / "empty"), "--resume"), "nothing to resume"
    )


# -------------------------------------------------------------- 5. checks that came late
def test_composite_commands_check_their_flags_before_any_work(tmp_path: Path) -> None:
    late = run_cli("agents.adapt", "--out", str(tmp_path / "a"), "--initial-timesteps", "100")
    one_line_exit_2(late, "--initial-timesteps (100) is less than one rollout")
    one_line_exit_2(
        run_cli("benchmarks.ope_accuracy", "--json", str(tmp_path / "o.json"), "--quick", "--sizes", "0"),
        "--sizes",
    )
    one_line_exit_2(
        run_cli("agents.train", "ppo", "--timesteps", "99999999999999999999", "--out", str(tmp_path / "t")),
        "--timesteps",
    )
    one_line_exit_2(
        run_cli(
            "agents.evaluate",
            "--policy",
            "ctr",
            "--episodes",
            "99999999999",
            "--json",
            str(tmp_path / "e.json"),
        ),
        "--episodes",
    )
    assert not any(tmp_path.iterdir())  # nothing written
