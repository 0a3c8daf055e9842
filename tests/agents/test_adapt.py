"""agents.adapt: a tiny weekly loop of two seeds writes its tables, JSON and plots, pools the seeds,
and resumes after a kill."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from agents.studies.adapt.__main__ import main as adapt_main
from agents.studies.adapt.__main__ import parser as adapt_parser
from agents.studies.adapt.__main__ import resumed
from agents.studies.adapt.loop import AdaptConfig, ab_test, check_folder, choose, deployed_next, refit_data
from agents.studies.backend import Backend
from simulators.core.cli import config_kwargs
from simulators.datasets import load_logs
from simulators.datasets.shop import shop_folder
from simulators.shop.config import ShopDrift
from tests.conftest import SMALL_SHOP, run_cli

TINY = ["--weeks", "1", "--initial-timesteps", "1024", "--finetune-timesteps", "512", "--sessions-per-week", "60",
        "--eval-sessions", "32", "--n-envs", "4", "--tuning-sessions", "8", "--tuning-generations", "1",
        "--train-eval-episodes", "16", "--canary-sessions", "16", "--guard-looks", "2"]  # fmt: skip


SEEDS = ["--seeds", "2", "--backend", "ray", "--cpus", "2"]


def small_drifting_shop() -> Path:
    """The unit tests' small shop with drifting tastes (a folder with its ground truth): the
    loop's every step in seconds, where ``shop:drift`` builds its world for minutes."""
    return shop_folder(replace(SMALL_SHOP, drift=ShopDrift(enabled=True)))


@pytest.mark.slow
def test_a_tiny_adapt_run_of_two_seeds_writes_its_weeks_pools_them_and_resumes_after_a_kill(
    tmp_path: Path,
) -> None:
    out, data = tmp_path / "adapt", str(small_drifting_shop())
    flags = [*TINY, *SEEDS, "--data", data]
    first = run_cli("agents.adapt", "--out", str(out), *flags)
    assert first.returncode == 0, first.stderr[-3000:]
    # Each seed's loop: its weeks, table, plot, and what its week-1 policy was fine-tuned from.
    seed = out / "seed-0"
    report = json.loads((seed / "adapt.json").read_text())
    assert [w["week"] for w in report["weeks"]] == [0, 1]
    week = report["weeks"][1]
    assert {
        "frozen",
        "adapted",
        "deployed",
        "static",
        "adapted_minus_frozen",
        "deployed_minus_frozen",
    } <= set(week["ab"])
    # The guard's canary decided what week 2 would serve: the candidate it shipped or the policy kept.
    guard = week["guard"]
    assert (
        guard["guard"] == "canary"
        and guard["canary_sessions"] == 16
        and guard["decision"] in ("ship", "keep")
    )
    assert week["deployed"] == ("week-01/policy" if guard["shipped"] == "adapted" else "week-00/policy")
    if guard["decision"] == "keep":
        assert week["ab"]["deployed_minus_frozen"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert week["served"]["sessions"] == 60 and week["day"] > week["deploy_day"] > 30
    assert (seed / "adaptation.png").stat().st_size > 0 and "| 1 |" in (seed / "adapt.md").read_text()
    served = json.loads((seed / "week-01" / "policy" / "config.json").read_text())
    assert served["fine_tuned_on"].endswith("week-01/data") and served["env_options"]["data"] == data
    # The week's CTR model started from last week's (the logs' one for week 1) and is kept for the next.
    assert (
        served["ctr_warm_start"].endswith("week-00/ctr") and served["env_options"]["ctr_warm_start"] is None
    )
    kept = json.loads((seed / "week-01" / "ctr" / "config.json").read_text())
    assert (
        kept["history"]["warm_start"].endswith("week-00/ctr")
        and (seed / "week-00" / "ctr" / "model.pt").is_file()
    )
    # The A/B arms as Ray tasks give the serial run's numbers.
    config = AdaptConfig(**json.loads((seed / "config.json").read_text()))
    arms = {"frozen": seed / "week-00" / "policy", "adapted": seed / "week-01" / "policy"}
    on_ray = ab_test(arms, config, 1, week["day"], Backend("ray", cpus=2))
    for name in ("frozen", "adapted", "adapted_minus_frozen"):
        assert on_ray[name] == week["ab"][name], name
    # The seeds ran as trials (the second on Ray) and are pooled: each seed's A/B as its own run wrote it.
    pooled = json.loads((out / "adapt.json").read_text())
    assert pooled["seeds"] == [0, 1] and pooled["pooled"]["seeds"] == 2
    for number, run in zip(pooled["seeds"], pooled["runs"], strict=True):
        mine = json.loads((out / f"seed-{number}" / "week-01" / "done.json").read_text())["ab"]
        assert run[1]["ab"] == mine
    difference = pooled["pooled"]["weeks"][1]["ab"]["adapted_minus_frozen"]
    by_seed = [run[1]["ab"]["adapted_minus_frozen"]["mean"] for run in pooled["runs"]]
    assert difference["by_seed"] == by_seed and difference["mean"] == pytest.approx(sum(by_seed) / 2)
    low, high = difference["ci95"]
    assert low <= min(by_seed) <= max(by_seed) <= high  # t(1) is wide: the interval holds both seeds
    assert "mean of 2 seeds" in (out / "adapt.md").read_text() and (out / "adaptation.png").is_file()
    # A kill during the second seed's week 1: its done.json never written, its folders half there.
    # The resume redoes that week only.
    killed = json.loads((out / "seed-1" / "week-01" / "done.json").read_text())
    (out / "seed-1" / "week-01" / "done.json").unlink()
    (out / "adapt.json").unlink()
    week0 = (out / "seed-1" / "week-00" / "done.json").stat().st_mtime_ns
    again = run_cli("agents.adapt", "--out", str(out), *flags, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "seed-1" / "week-00" / "done.json").stat().st_mtime_ns == week0
    redone = json.loads((out / "adapt.json").read_text())["runs"][1][1]
    assert redone["served"]["sessions"] == 60
    # The redone week decides as the killed one did (the same canary, the same bounds).
    assert redone["guard"] == killed["guard"] and redone["deployed"] == killed["deployed"]
    refused = run_cli("agents.adapt", "--out", str(out), *flags)  # a new run on a folder holding one
    assert refused.returncode == 2 and "--resume" in refused.stderr
    # A loop that starts from a trained run, with that same run planted as a candidate: the copy
    # is never shipped (every paired difference in its canary is 0), and the week-0 A/B shows it.
    start = out / "seed-0" / "week-00" / "policy"
    mine = tmp_path / "mine"
    planted_flags = [*TINY, "--data", data, "--policy", str(start), "--candidates", str(start)]
    before = {path: path.stat().st_mtime_ns for path in start.rglob("*")}
    planted = run_cli("agents.adapt", "--out", str(mine), *planted_flags)
    assert planted.returncode == 0, planted.stderr[-3000:]
    # The run it starts from is an input: its fine-tunes log in their own folders, never in its.
    assert {path: path.stat().st_mtime_ns for path in start.rglob("*")} == before
    week0, week1 = json.loads((mine / "adapt.json").read_text())["weeks"]
    assert week0["ab"]["planted-1"] == week0["ab"]["frozen"]  # the same policy on the same users
    assert (mine / "week-00" / "policy" / "model.zip").read_bytes() == (start / "model.zip").read_bytes()
    assert not (mine / "week-00" / "policy" / "checkpoints").exists()
    guard = week1["guard"]
    assert guard["shipped"] != "planted-1" and guard["candidates"]["planted-1"].endswith("planted/planted-1")
    assert all(look["candidates"]["planted-1"]["mean"] == 0.0 for look in guard["looks"])
    assert all(look["candidates"]["planted-1"]["lower"] == 0.0 for look in guard["looks"])
    assert "`planted-1` (a planted candidate)" in (mine / "adapt.md").read_text()
    # Resumable with its own flags (the candidates a tuple on the command line, a list in JSON), and
    # from a config.json written before an option existed (its default then holds).
    saved = json.loads((mine / "config.json").read_text())
    del saved["guard_alpha"]  # not among the flags: its default is what the run had
    (mine / "config.json").write_text(json.dumps(saved))
    given = config_kwargs(adapt_parser().parse_args(["--out", str(mine), *planted_flags]), AdaptConfig)
    check_folder(resumed(given), mine, resume=True)
    # --refit-logs pooled: the starting logs beside the served week's, in their shared columns.
    refit = refit_data(mine, 1, 2, load_logs(data)) / "interactions"
    logs, served = pd.read_parquet(refit / "logs.parquet"), pd.read_parquet(refit / "w01-part-000000.parquet")
    assert list(logs.columns) == list(served.columns) and served["session_id"].nunique() == 60
    assert len(logs) == len(pd.read_parquet(Path(data) / "interactions.parquet"))
    assert (
        logs["session_id"].str.startswith("logs-").all()
        and not served["session_id"].str.startswith("logs-").any()
    )


def test_adapt_refuses_bad_options_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags, message in ((["--data", "movielens"], "true shop"), (["--weeks", "0"], "--weeks"),
                           (["--temperature", "0.001"], "--temperature"), (["--seeds", "0"], "--seeds"),
                           (["--backend", "ray", "--cpus", "0"], "--cpus"), (["--guard", "trust"], "--guard"),
                           (["--canary-sessions", "3"], "--canary-sessions"), (["--guard-alpha", "0.7"], "--guard-alpha"),
                           (["--guard", "none", "--candidates", str(tmp_path)], "--candidates"),
                           (["--policy", str(tmp_path / "nowhere")], "--policy")):  # fmt: skip
        with pytest.raises(SystemExit) as exit_code:
            adapt_main(["--out", str(tmp_path / "x"), *flags])
        assert exit_code.value.code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()
    bad = run_cli("agents.adapt", "--out", str(tmp_path / "x"), "--weeks", "0")  # the command itself
    assert bad.returncode == 2 and "--weeks" in bad.stderr and "Traceback" not in bad.stderr


def test_the_unguarded_loop_ships_every_candidate_and_old_records_deploy_their_fine_tuned_policy(
    tmp_path: Path,
) -> None:
    config = AdaptConfig(out=str(tmp_path / "x"), data=str(small_drifting_shop()), guard="none")
    record, deployed = choose(tmp_path / "a", {"adapted": tmp_path / "b"}, config, 1, 40.0, Backend())
    assert deployed == tmp_path / "b" and record == {
        "guard": "none",
        "decision": "ship",
        "shipped": "adapted",
        "sessions": 0,
    }
    # A week written before the guard names no deployed policy: it served its fine-tuned one.
    assert deployed_next(tmp_path, {"week": 2}) == tmp_path / "week-02" / "policy"
    assert (
        deployed_next(tmp_path, {"week": 2, "deployed": "week-00/policy"}) == tmp_path / "week-00" / "policy"
    )
