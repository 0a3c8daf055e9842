"""benchmarks: smoke runs of the benchmark CLIs on tiny budgets (their figures are measured, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.evaluation.tuning import TuningBudget, load_or_tune
from benchmarks.identification import (
    ERROR_ROWS,
    LAGS,
    calibrated_error,
    net_click_effect,
    shuffled_in_users,
    user_topic_means,
)
from benchmarks.identification import main as identification_main
from benchmarks.log_size import main as log_size_main
from benchmarks.ope_accuracy import click_noise_floor
from benchmarks.td_signal import SignalPlan, noise_at
from benchmarks.temperature import main
from envs.config import EnvConfig
from envs.factory import make_vector_env
from simulators.datasets import resolve_data
from simulators.datasets.shop import shop_folder
from simulators.dynamics import DynamicsParams, SessionState, advance
from simulators.fit.cache import load_or_fit
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP, run_cli


@pytest.mark.slow
def test_policies_benchmark_writes_json_markdown_and_curves(tmp_path: Path) -> None:
    out = tmp_path / "policies.json"
    result = run_cli("benchmarks.policies", "--json", str(out), "--quick", "--timesteps", "512", "--n-envs", "4",
                     "--eval-episodes", "16", "--tuning-sessions", "8")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"ppo-cold", "ppo-warm", "dqn-cold", "dqn-warm", "ctr", "popularity", "random", "best-fixed",
            "tuned-weights", "mmr"} <= set(report["summary"])  # fmt: skip
    assert report["plan"]["timesteps"] == 512 and report["plan"]["seeds"] == 1  # --quick, and the flags given
    assert report["warm_start"]["ppo_warm_initial_return"] == pytest.approx(
        report["summary"]["ctr"]["return_mean"]
    )
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".md").is_file()
    best = report["summary"]["best_static"]
    assert (
        "minus_best_static" in report["summary"]["ppo-cold"]
        and report["fitted_ceiling"]["planner"]["decisions"] > 0
    )
    true = report["true_shop"]["table"]
    assert {"planner:true", "planner:fitted"} <= set(true) and true[report["true_shop"]["best_static"]]
    assert "share_of_ceiling" in true["ppo-cold"] and best in report["summary"]


@pytest.mark.slow
def test_ope_accuracy_obd_track(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    result = run_cli("benchmarks.ope_accuracy", "--json", str(out), "--quick", "--skip-shop")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["obd"]
    assert {(r["logs"], r["target"]) for r in rows} == {("random", "bts"), ("bts", "random")}
    assert all(r["mean_relative_error"] >= 0 for r in rows)


def test_click_noise_floor_is_the_estimates_spread() -> None:
    # One item, always in the only slot: the binomial relative SD sqrt((1 - g) / (g n)).
    clicks = np.zeros((400, 1), dtype=np.int8)
    clicks[:100] = 1
    floor = click_noise_floor(np.zeros((400, 1), dtype=np.int64), clicks, np.ones(1), np.array([1.0, 0.0]))
    assert floor == pytest.approx(np.sqrt(0.75 / (0.25 * 400)))
    # Position-based clicks on random slates: the floor matches the spread of the estimate
    # V = sum_i a_i gamma_i over many logs.
    rng = np.random.default_rng(0)
    theta, gamma, weight = np.array([1.0, 0.5]), np.array([0.6, 0.3, 0.1]), np.array([1.0, 0.5, 0.0])
    values, floors = [], []
    for _ in range(2_000):
        items = np.argsort(rng.random((300, 3)), axis=1)[:, :2]
        clicks = (rng.random((300, 2)) < theta * gamma[items]).astype(np.int8)
        exposure = np.bincount(items.ravel(), weights=np.tile(theta, 300), minlength=3)
        values.append(weight @ (np.bincount(items.ravel(), weights=clicks.ravel(), minlength=3) / exposure))
        floors.append(click_noise_floor(items, clicks, theta, weight))
    assert np.std(values) / np.mean(values) == pytest.approx(np.mean(floors), rel=0.08)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_check_without_a_gpu_says_so(tmp_path: Path) -> None:
    result = run_cli("benchmarks.gpu_check", "--json", str(tmp_path / "gpu.json"))
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr


def test_heterogeneity_figures_move_with_the_spreads() -> None:
    """The calibration's figures respond to the knob each one sets: breadth sd to the variety
    spread, the session ICC to the patience spread (so the grid search can find them)."""
    from dataclasses import replace

    from benchmarks.heterogeneity import shop_figures
    from simulators.shop.config import ShopConfig, UserVariety

    base = ShopConfig(n_users=1500, n_items=300, n_sellers=40, n_sessions=6000, seed=2)
    flat = shop_figures(replace(base, variety=UserVariety(enabled=False)))
    broad = shop_figures(replace(base, variety=UserVariety(variety_spread=0.8, patience_spread=0.0)))
    patient = shop_figures(replace(base, variety=UserVariety(variety_spread=0.0, patience_spread=1.2)))
    assert broad["breadth_sd"] > flat["breadth_sd"] + 0.03
    assert patient["session_icc"] > flat["session_icc"] + 0.1
    assert abs(flat["session_icc"]) < 0.06  # homogeneous users: no stable between-user share


@pytest.mark.slow
def test_headroom_benchmark_measures_the_ceiling_at_two_caps(tmp_path: Path) -> None:
    out = tmp_path / "headroom.json"
    result = run_cli("benchmarks.headroom", "--json", str(out), "--quick", "--sessions", "24", "--fitted-sessions",
                     "16", "--cap-sessions", "64")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    long_cap = report["cap_shares"]["long_cap"]
    assert [block["cap"] for block in report["caps"]] == [20, long_cap] and long_cap > 20
    assert (
        report["cap_shares"]["at_cap"][str(long_cap)]["true"] < 0.05 + 1e-9
    )  # binds for under 5% (measured there)
    for block in report["caps"]:
        rows = block["rows"]
        assert {"planner:true @ true", "planner:fitted @ true", "planner:fitted @ fitted"} <= set(rows)
        ceiling = rows["planner:true @ true"]
        gap = ceiling["return_mean"] - rows["tuned-weights @ true"]["return_mean"]
        assert ceiling["minus_tuned_weights"]["mean"] == pytest.approx(gap)
        assert ceiling["planner"]["decisions"] > 0
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".md").is_file()


@pytest.mark.slow
def test_distill_benchmark_plays_each_distilled_planner_beside_its_planner(tmp_path: Path) -> None:
    out = tmp_path / "distill.json"
    result = run_cli("benchmarks.distill", "--json", str(out), "--quick", "--data", str(shop_folder(SMALL_SHOP)),
                     "--thresholds", "0", "1", "--max-steps", "30")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    fitted, true = report["worlds"]["fitted"]["rows"], report["worlds"]["true"]["rows"]
    assert set(fitted) == {"tuned-weights", "best-fixed", "planner:fitted", "distilled:fitted (threshold 0)",
                           "distilled:fitted (threshold 1)"}  # fmt: skip
    assert {"planner:true", "distilled:true (threshold 0)", "distilled:fitted (threshold 1)"} <= set(true)
    for world in ("fitted", "true"):
        rows, best = report["worlds"][world]["rows"], report["worlds"][world]["best_static"]
        assert rows[best]["return_mean"] == max(
            rows[s]["return_mean"] for s in ("tuned-weights", "best-fixed")
        )
        for name, row in rows.items():
            for column, reference in (("minus_tuned_weights", "tuned-weights"), ("minus_best_static", best)):
                diff, gap = row[column], row["return_mean"] - rows[reference]["return_mean"]
                assert diff is None if name == reference else diff["mean"] == pytest.approx(gap)
    assert report["plan"]["max_steps"] == 30 and "session cap 30" in out.with_suffix(".md").read_text()
    assert all(
        0 <= row["deviation_rate"] <= 1
        for name, row in true.items()
        if name.startswith(("planner", "distilled"))
    )
    assert [h["played_by"] for h in report["labelling"]["true"]] == ["planner", "distilled"]
    assert (
        out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        and "share of its planner" in out.with_suffix(".md").read_text()
    )


def test_report_markdown_turns_scalars_records_and_grids_into_tables() -> None:
    from benchmarks.tables import report_markdown

    report = {
        "cpus": 2,
        "ratio": 0.60612,
        "steps": [{"command": ["python", "-m", "x"], "seconds": 1.5}, {"command": ["y"], "seconds": 2.0}],
        "grid": {"0.1": {"icc": 0.01, "sd": 0.07}, "0.2": {"icc": 0.02, "sd": 0.08}},
        "loop": {"truth": 1.679, "estimates": {"dm": {"value": 1.67, "ci95": [1.6, 1.7]}}},
        "long": list(range(40)),
    }
    text = report_markdown("A study", report)
    assert text.startswith("# A study\n")
    assert "| cpus | 2 |" in text and "| ratio | 0.6061 |" in text
    assert "| command | seconds |" in text and "| [python, -m, x] | 1.5 |" in text
    assert "| key | icc | sd |" in text and "| 0.2 | 0.02 | 0.08 |" in text
    assert "## loop" in text and "| dm | 1.67 | [1.6, 1.7] |" in text
    assert "(40 in all)" in text


@pytest.mark.slow
def test_train_speed_times_each_learner_beside_the_env(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    result = run_cli("benchmarks.train_speed", "--algorithms", "ppo", "ppo-frozen-towers", "--n-envs", "2",
                     "--timesteps", "256", "--tuning-sessions", "8", "--tuning-generations", "1", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["learner"] for r in rows] == ["env", "ppo", "ppo-frozen-towers"]
    assert all(r["n_envs"] == 2 and r["steps"] >= 256 and r["steps_per_s"] > 0 for r in rows)
    assert all(0 < r["share_of_env"] < 1 for r in rows[1:])  # learning is slower than the env alone
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    bad = run_cli("benchmarks.train_speed", "--n-envs", "0", "--json", str(tmp_path / "bad.json"))
    assert bad.returncode == 2 and "--n-envs" in bad.stderr and not (tmp_path / "bad.json").exists()


def test_counterfactual_fidelity_scores_the_fit_against_the_truth(tmp_path: Path) -> None:
    out = tmp_path / "counterfactual.json"
    result = run_cli("benchmarks.counterfactual", "--json", str(out), "--quick", "--sessions", "24")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["policies_played"] >= 30 and report["distinct"] <= report["policies_played"]
    fit = report["scores"]["fit"]["all"]
    assert set(report["scores"]) == {"fit"} and fit["policies"] == report["distinct"]  # --quick: no swaps
    assert -1 <= fit["spearman"] <= 1 and fit["advantage_rmse"] > 0
    row = report["policies"]["tuned-weights"]
    assert row["truth"]["advantage"] == 0 and row["fit"]["advantage"] == 0  # the reference
    assert (
        out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        and "Spearman" in out.with_suffix(".md").read_text()
    )
    for flags, message in ((["--near", "0"], "--near"), (["--fit-sample", "1"], "--ensemble 0 --no-halves")):
        bad = run_cli("benchmarks.counterfactual", *flags, "--json", str(tmp_path / "bad.json"))
        assert bad.returncode == 2 and message in bad.stderr and not (tmp_path / "bad.json").exists()


@pytest.mark.slow
def test_counterfactual_fidelity_of_logs_without_a_truth_scores_the_two_halves(tmp_path: Path) -> None:
    from simulators.datasets import load_logs
    from tests.conftest import SMALL_SHOP

    logs = load_logs("shop", seed=SMALL_SHOP.seed, n_users=SMALL_SHOP.n_users, n_items=SMALL_SHOP.n_items,
                     n_sessions=SMALL_SHOP.n_sessions)  # fmt: skip
    folder = tmp_path / "my_logs"  # the shop's rows as anyone's logs: no ground truth
    folder.mkdir()
    logs.interactions[["user_id", "item_id", "timestamp", "session_id", "position", "click"]].to_csv(
        folder / "interactions.csv", index=False
    )
    out = tmp_path / "halves.json"
    refused = run_cli("benchmarks.counterfactual", "--data", str(folder), "--quick", "--json", str(out))
    assert refused.returncode == 2 and "--halves" in refused.stderr and not out.exists()
    result = run_cli("benchmarks.counterfactual", "--data", str(folder), "--quick", "--halves",
                     "--sessions", "16", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["has_truth"] is False and report["scores"] == {}
    agreement = report["halves"]["agreement"]
    assert set(agreement) == {"half 1 on half 2", "half 2 on half 1"}
    one, two = agreement["half 1 on half 2"]["all"], agreement["half 2 on half 1"]["all"]
    assert one["spearman"] == pytest.approx(two["spearman"])  # rank agreement is symmetric
    held = report["halves"]["held_out"]
    # The two halves split the users: each half's own sessions are the other's held-out ones.
    assert held["half 1"]["own half"]["sessions"] == held["half 2"]["other half"]["sessions"]
    assert held["half 2"]["own half"]["sessions"] == held["half 1"]["other half"]["sessions"]
    sessions = held["half 1"]["own half"]["sessions"] + held["half 1"]["other half"]["sessions"]
    assert sessions == logs.interactions["session_id"].nunique()
    assert all(0.0 <= part["click_auc"] <= 1.0 for parts in held.values() for part in parts.values())
    row = report["policies"]["tuned-weights"]
    assert set(row) >= {"fit", "half 1", "half 2"} and "truth" not in row
    assert "Two halves" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_temperature_benchmark_serves_the_same_users_at_each_temperature(
    tmp_path: Path, tiny_ppo_run: Path
) -> None:
    out = tmp_path / "temperature.json"
    main(["--run", str(tiny_ppo_run), "--json", str(out), "--sessions", "24", "--temperatures", "1", "0"])
    rows = json.loads(out.read_text())["rows"]
    greedy, sampled = rows  # sorted by temperature
    assert greedy["temperature"] == 0 and greedy["minus_temperature_0"] == {"mean": 0.0, "ci95": [0.0, 0.0]}
    assert greedy["first_slot_probability"] == 1.0 and 0 < sampled["first_slot_probability"] < 1
    assert sampled["engagement"] == pytest.approx(sampled["clicks"] + sampled["purchases"])
    assert "What exploring costs" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):  # a bad temperature is refused before any serving
        main(["--run", str(tiny_ppo_run), "--json", str(tmp_path / "x.json"), "--temperatures", "0.01"])
    assert not (tmp_path / "x.json").exists()
    metrics = (tiny_ppo_run / "metrics.json").read_bytes()
    with pytest.raises(SystemExit):  # nor written over the run it serves
        main(["--run", str(tiny_ppo_run), "--json", str(tiny_ppo_run / "metrics.json"), "--sessions", "2"])
    assert (tiny_ppo_run / "metrics.json").read_bytes() == metrics


def test_td_signal_noise_is_the_dice_s_and_the_cli_writes_signal_and_noise(tmp_path: Path) -> None:
    """Futures of a state on its own dice are one future (no spread); on fresh dice they spread."""
    data = str(shop_folder(SMALL_SHOP))
    env = EnvConfig(data=data, action_mode="discrete")
    base = load_or_tune("best-fixed", env, TuningBudget(sessions=8, cem_generations=1))
    venv = make_vector_env(env, 4)
    venv.reset(seed=3)
    venv.step(np.asarray(base.act(venv.core.observe_ids(), np.random.default_rng(0))))
    plan = SignalPlan(data=data, n_steps=5)
    rng = np.random.default_rng(1)
    own = noise_at(venv.core, base, plan, np.repeat(venv.core.key, 6), rng)
    fresh = noise_at(venv.core, base, plan, np.arange(1, 25, dtype=np.uint64), rng)
    assert own.shape == fresh.shape == (4, 6)
    assert (own.std(axis=1) == 0).all() and (fresh.std(axis=1) > 0).any()
    out = tmp_path / "td.json"
    result = run_cli("benchmarks.td_signal", "--json", str(out), "--quick", "--data", data)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["states"] == 16 * 2 == len(report["distributions"]["within_state_sd"])
    assert report["noise"]["within_state_sd"]["median"] > 0
    assert (
        out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
        and "signal" in out.with_suffix(".md").read_text()
    )


def test_a_clicks_net_effect_is_the_engines_drift_minus_boredom() -> None:
    """``net_click_effect`` against the engine's own dynamics: a slate clicked and the same slate
    only seen, then empty slates; the clicked topic's drift minus weighted boredom differs by it."""
    params = DynamicsParams()
    clicked, seen = SessionState.fresh(1, 3), SessionState.fresh(1, 3)
    slate = np.array([[1, 2]])
    advance(params, clicked, slate, np.array([[1.0, 0.0]]))
    advance(params, seen, slate, np.zeros((1, 2)))
    for lag in range(1, 11):
        if lag in LAGS:
            pull = [s.interest_drift[0, 1] - params.boredom_weight * s.boredom[0, 1] for s in (clicked, seen)]
            assert pull[0] - pull[1] == pytest.approx(net_click_effect(params, lag), abs=1e-4)
        for state in (clicked, seen):
            advance(params, state, slate, np.zeros((1, 2)), shown=np.zeros((1, 2), dtype=bool))


@pytest.mark.slow
def test_identification_benchmark_fits_each_case_beside_the_truth(tmp_path: Path) -> None:
    out = tmp_path / "identification.json"
    identification_main(["--json", str(out), "--data", str(shop_folder(SMALL_SHOP))])
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert list(rows) == [
        "truth",
        "traits known",
        "scales known",
        "scales unknown",
        "nothing known",
        "production fit",
    ]
    assert rows["truth"]["boredom_per_click"] == pytest.approx(0.45 * 0.6)  # in click-logit units
    assert all("net_click_effect_lag10" in r for r in rows.values()) and out.with_suffix(".md").is_file()
    # the network's error taken apart: each row's per-(user, topic) error is what it says
    errors = report["errors"]
    assert list(errors) == list(ERROR_ROWS)
    spread = {name: errors[name]["user_topic_error_sd"] for name in ERROR_ROWS}
    assert spread["truth"] == 0 and spread["error within user-topic"] == pytest.approx(0, abs=1e-6)
    own = spread["user-topic error, each fold's own"]
    assert own == pytest.approx(spread["network"], abs=1e-4) and own > 0  # the network's per (user, topic)
    assert 0 < spread["user-topic error"] <= own  # averaged over both folds
    assert spread["normal user-topic error"] == pytest.approx(spread["user-topic error"], rel=0.2)
    assert all("net_click_effect_lag1" in errors[name] for name in ERROR_ROWS)
    with pytest.raises(SystemExit) as refused:  # logs without a truth: nothing to compare with
        identification_main(["--json", str(tmp_path / "x.json"), "--data", "movielens"])
    assert refused.value.code == 2


def test_the_error_tables_shuffle_within_users_and_calibrate_before_taking_the_error() -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(30, 6))
    seen = rng.random((30, 6)) < 0.6
    shuffled = shuffled_in_users(table, seen, np.random.default_rng(1))
    np.testing.assert_array_equal(shuffled[~seen], table[~seen])  # unseen topics untouched
    for user in range(30):  # each user's own errors, among their own seen topics
        np.testing.assert_array_equal(np.sort(shuffled[user, seen[user]]), np.sort(table[user, seen[user]]))
    assert not np.array_equal(shuffled, table)
    # the error a calibration cannot undo: a network off by scale and offset alone has none
    true = rng.normal(size=(50, 5))
    shown = rng.random((50, 5)) < 0.8
    np.testing.assert_allclose(calibrated_error(0.5 * true - 1.0, true, shown), 0.0, atol=1e-9)
    means = user_topic_means(
        np.ones((2, 2)), np.array([0, 1]), np.array([[0, -1], [1, 2]]), np.array([0, 0, 1]), 2
    )
    np.testing.assert_array_equal(means, [[1.0, 0.0], [1.0, 1.0]])  # per user and topic, empty slots left out


@pytest.mark.slow
def test_log_size_benchmark_fits_each_size_and_pairs_both_planners_with_the_base(tmp_path: Path) -> None:
    """Two sizes of the small shop (2 and 4 sessions per user): each row's fit is the cached
    production fit of that shop's logs, its truth the shop's, each planner's gain its paired
    difference to tuned-weights on the same sessions, and the share planner:fitted's of planner:true's."""
    out = tmp_path / "log_size.json"
    folder = shop_folder(SMALL_SHOP)
    log_size_main(["--json", str(out), "--data", str(folder), "--users", "300", "100", "--sessions", "600", "400",
                   "--eval-sessions", "6", "--rollouts", "2"])  # fmt: skip
    report = json.loads(out.read_text())
    first, second = report["sizes"]
    assert (first["sessions_per_user"], second["sessions_per_user"]) == (2, 4)
    _, fitted = load_or_fit(resolve_data(str(folder)).logs)  # the small shop itself: the cached fit
    assert first["net_click_effect"] == [
        net_click_effect(DynamicsParams(**fitted["dynamics"]), lag) for lag in LAGS
    ]
    truth = [net_click_effect(ShopWorld(SMALL_SHOP).dynamics, lag) for lag in LAGS]
    assert first["net_click_effect_truth"] == second["net_click_effect_truth"] == truth
    for size in (first, second):
        gains = size["minus_tuned_weights"]
        for model in ("planner:fitted", "planner:true"):  # paired on the same sessions: the means' difference
            expected = gains[model]["return_mean"] - size["tuned_weights_return"]
            assert gains[model]["mean"] == pytest.approx(expected, abs=1e-9) and gains[model]["n"] == 6
        ceiling = gains["planner:true"]
        share = gains["planner:fitted"]["mean"] / ceiling["mean"] if ceiling["ci95"][0] > 0 else None
        assert size["share_of_ceiling"] == (share if share is None else pytest.approx(share))
    assert out.with_suffix(".md").is_file() and out.with_suffix(".png").is_file()
    for bad in (["--users", "300", "--sessions", "600", "1200"], ["--data", "movielens"]):
        with pytest.raises(SystemExit) as refused:
            log_size_main(["--json", str(tmp_path / "x.json"), *bad])
        assert refused.value.code == 2
