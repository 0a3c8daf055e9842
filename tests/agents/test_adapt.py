"""agents.adapt: a tiny weekly loop writes its table, JSON and plot, and resumes after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.studies.adapt.loop import AdaptConfig, ab_test
from agents.studies.backend import Backend
from tests.conftest import run_cli

TINY = ["--weeks", "1", "--initial-timesteps", "1024", "--finetune-timesteps", "512", "--sessions-per-week", "60",
        "--eval-sessions", "32", "--n-envs", "4", "--tuning-sessions", "8", "--tuning-generations", "1",
        "--train-eval-episodes", "16"]  # fmt: skip


@pytest.mark.slow
def test_a_tiny_adapt_run_writes_its_weeks_and_resumes_after_a_kill(tmp_path: Path) -> None:
    out = tmp_path / "adapt"
    first = run_cli("agents.adapt", "--out", str(out), *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((out / "adapt.json").read_text())
    assert [w["week"] for w in report["weeks"]] == [0, 1]
    week = report["weeks"][1]
    assert {"frozen", "adapted", "static", "adapted_minus_frozen"} <= set(week["ab"])
    assert week["served"]["sessions"] == 60 and week["day"] > week["deploy_day"] > 30
    assert (out / "adaptation.png").stat().st_size > 0 and "| 1 |" in (out / "adapt.md").read_text()
    served = json.loads((out / "week-01" / "policy" / "config.json").read_text())
    assert served["fine_tuned_on"].endswith("week-01/data") and served["env_options"]["data"] == "shop:drift"
    # The week's CTR model started from last week's (the logs' one for week 1) and is kept for the next.
    assert (
        served["ctr_warm_start"].endswith("week-00/ctr") and served["env_options"]["ctr_warm_start"] is None
    )
    kept = json.loads((out / "week-01" / "ctr" / "config.json").read_text())
    assert (
        kept["history"]["warm_start"].endswith("week-00/ctr")
        and (out / "week-00" / "ctr" / "model.pt").is_file()
    )
    # The A/B arms as Ray tasks give the serial run's numbers.
    config = AdaptConfig(**json.loads((out / "config.json").read_text()))
    arms = {"frozen": out / "week-00" / "policy", "adapted": out / "week-01" / "policy"}
    on_ray = ab_test(arms, config, 1, week["day"], Backend("ray", cpus=2))
    for name in ("frozen", "adapted", "adapted_minus_frozen"):
        assert on_ray[name] == week["ab"][name], name
    # A kill during week 1: its done.json never written, its folders half there. The resume redoes week 1 only.
    (out / "week-01" / "done.json").unlink()
    (out / "adapt.json").unlink()
    week0 = (out / "week-00" / "done.json").stat().st_mtime_ns
    again = run_cli("agents.adapt", "--out", str(out), *TINY, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (out / "week-00" / "done.json").stat().st_mtime_ns == week0
    assert json.loads((out / "adapt.json").read_text())["weeks"][1]["served"]["sessions"] == 60
    refused = run_cli("agents.adapt", "--out", str(out), *TINY)  # a new run on a folder that holds one
    assert refused.returncode == 2 and "--resume" in refused.stderr


@pytest.mark.slow
def test_seeds_run_as_ray_trials_and_pool(tmp_path: Path) -> None:
    out = tmp_path / "seeds"
    done = run_cli(
        "agents.adapt", "--out", str(out), *TINY, "--seeds", "2", "--backend", "ray", "--cpus", "2"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "adapt.json").read_text())
    assert report["seeds"] == [0, 1] and report["pooled"]["seeds"] == 2
    week = report["pooled"]["weeks"][1]["ab"]
    for seed, run in zip(report["seeds"], report["runs"], strict=True):
        mine = json.loads((out / f"seed-{seed}" / "week-01" / "done.json").read_text())["ab"]
        assert run[1]["ab"] == mine
    by_seed = [run[1]["ab"]["adapted_minus_frozen"]["mean"] for run in report["runs"]]
    assert week["adapted_minus_frozen"]["by_seed"] == by_seed
    assert week["adapted_minus_frozen"]["mean"] == pytest.approx(sum(by_seed) / 2)
    low, high = week["adapted_minus_frozen"]["ci95"]
    assert low <= min(by_seed) <= max(by_seed) <= high  # t(1) is wide: the interval holds both seeds
    assert "mean of 2 seeds" in (out / "adapt.md").read_text() and (out / "adaptation.png").is_file()


def test_adapt_refuses_bad_options_before_any_work(tmp_path: Path) -> None:
    for flags, message in ((["--data", "movielens"], "true shop"), (["--weeks", "0"], "--weeks"),
                           (["--temperature", "0.001"], "--temperature"), (["--seeds", "0"], "--seeds"),
                           (["--backend", "ray", "--cpus", "0"], "--cpus")):  # fmt: skip
        bad = run_cli("agents.adapt", "--out", str(tmp_path / "x"), *flags)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr[-500:]
        assert not (tmp_path / "x").exists()
