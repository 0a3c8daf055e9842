"""agents.ope (the CLI): a run on a shop folder and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_ope_cli_on_a_shop_folder(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    made = run_cli(
        "simulators.shop", "--out", str(shop), "--users", "200", "--items", "100", "--sessions", "300"
    )
    assert made.returncode == 0, made.stderr[-2000:]
    out = tmp_path / "ope.json"
    result = run_cli("agents.ope", "--policy", "random", "--logs", str(shop), "--bootstrap", "5",
                     "--truth-sessions", "500", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"iips", "rips", "cascade_dr", "dm"} <= set(report["estimates"]) and report["ground_truth"] > 0
    assert {"pdis", "wpdis", "wdr"} <= set(report["sessions"]["estimates"])
    assert report["truth_sessions"] == 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "ctr", "--logs", "obd:random/all"], "OBD logs take --policy"),
        (["--policy", "obd-bts", "--logs", "obd:random/all", "--estimators", "magic"], "unknown estimator"),
        (["--policy", "obd-bts", "--logs", "nowhere/at/all"], "unknown dataset"),
        (["--policy", "obd-bts", "--logs", "obd:random/all", "--folds", "1"], "--folds"),
        (["--policy", "best-fixed", "--logs", "shop"], "on shop logs the target is one of ['logging'"),
        (
            ["--policy", "obd-bts", "--logs", "obd:random/all", "--folds", "100000000"],
            "--folds must lie in [2, 50]",
        ),
    ],
)
def test_ope_cli_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("agents.ope", *args, "--json", str(tmp_path / "x.json"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
