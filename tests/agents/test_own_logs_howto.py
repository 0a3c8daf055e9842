"""The README's own-logs how-to, run as written on a folder holding only
``interactions.csv`` with ``user_id,item_id,timestamp,click`` (the shop's first rows).

The commands are read from the README between its how-to markers; only the folder names are
replaced, and the training command gets a tiny budget (the how-to's defaults train for minutes).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from simulators.datasets import load_logs
from tests.conftest import REPO, SMALL_SHOP, run_cli

TINY_TRAINING = ["--timesteps", "2048", "--n-envs", "8", "--eval-episodes", "60", "--curve-episodes", "16", "--eval-freq", "1024",
                 "--tuning-sessions", "16", "--tuning-generations", "1"]  # fmt: skip


def howto_commands() -> list[list[str]]:
    """The commands of the README's own-logs how-to (between its markers), as argument lists."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- how-to: own logs.*?-->\s*```bash\n(.*?)```\s*<!-- end how-to -->", text, re.S)
    assert block, "the README lost its own-logs how-to markers"
    return [shlex.split(line) for line in block[1].strip().splitlines()]


def test_the_howto_is_three_commands_of_recgym() -> None:
    commands = howto_commands()
    assert len(commands) == 3
    assert [c[:3] for c in commands] == [["python", "-m", "agents.train"], ["python", "-m", "agents.evaluate"],
                                         ["python", "-m", "agents.ope"]]  # fmt: skip


@pytest.mark.slow
def test_the_own_logs_howto_runs_as_written(tmp_path: Path) -> None:
    logs = load_logs("shop", seed=SMALL_SHOP.seed, n_users=SMALL_SHOP.n_users, n_items=SMALL_SHOP.n_items,
                     n_sessions=SMALL_SHOP.n_sessions)  # fmt: skip
    folder = tmp_path / "my_logs"
    folder.mkdir()
    logs.interactions.iloc[:6000][["user_id", "item_id", "timestamp", "click"]].to_csv(
        folder / "interactions.csv", index=False
    )
    outputs = []
    for command in howto_commands():
        args = [
            a.replace("my_logs/", f"{folder}/").replace("runs/", f"{tmp_path}/runs/") for a in command[2:]
        ]
        if args[0] == "agents.train":
            args += TINY_TRAINING
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        outputs.append(result)
    train, _, ope = outputs
    assert "(best static)" in train.stdout and "no provider groups" in train.stdout
    assert "BERT is not used" in train.stderr  # the loader's one warning
    assert (
        "BERT not used" in train.stdout and "data: position: absent" in train.stdout
    )  # and the table's notes
    metrics = json.loads((tmp_path / "runs" / "mine-eval.json").read_text())
    assert metrics["provider_groups"] is False and metrics["episodes"] >= 1
    assert "| estimated |" in ope.stdout and "no ground truth" in ope.stdout
    report = json.loads((tmp_path / "runs" / "mine-ope.json").read_text())
    assert report["ground_truth"] is None and report["propensities"] == "estimated"
    # without provider groups the merit-based penalty is 0 (fairness off); a fixed share is refused
    from envs.ranking import RankingEnv
    from simulators.core.errors import ConfigError

    env = RankingEnv(data=str(folder), fairness_lambda=2.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["fairness_penalty"] == 0.0
    with pytest.raises(ConfigError, match="fixed protected share needs provider groups"):
        RankingEnv(data=str(folder), fairness_lambda=2.0, fairness_target=0.3)
