"""The return-gap model against known answers: session gaps and censoring on a hand-made log,
the Kaplan-Meier curve of a known survival, and the hazard fit recovering known coefficients from
simulated gaps with censoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.returns import main as returns_main
from simulators.core.errors import DataError
from simulators.fit.returns import (
    ReturnModel,
    design,
    fit_return_process,
    fit_returns,
    held_out_distance,
    kaplan_meier,
    session_gaps,
)
from simulators.retention import MIN_GAP_DAYS
from simulators.shop.config import ShopConfig, ShopReturns
from simulators.shop.world import ShopWorld

DAY = 86_400


def test_session_gaps_end_each_session_with_the_next_start_or_the_log_s_end() -> None:
    log = pd.DataFrame({
        "user_id": [1, 1, 1, 1, 2, 2],
        "session_id": [10, 10, 11, 11, 20, 20],
        "timestamp": [0, 3_600, 3 * DAY, 3 * DAY + 60, DAY, 2 * DAY],
        "item_id": [5, 5, 6, 7, 5, 6],
        "click": [1, 0, 1, 1, 0, 0],
    })  # fmt: skip
    sessions = session_gaps(log, topic=pd.Series({5: "a", 6: "a", 7: "b"})).set_index("session_id")
    assert sessions.loc[10, "observed"] and sessions.loc[10, "gap"] == pytest.approx(3 - 1 / 24)
    end = (3 * DAY + 60) / DAY
    assert not sessions.loc[11, "observed"] and sessions.loc[11, "gap"] == pytest.approx(
        1 / 24
    )  # ends the log
    assert not sessions.loc[20, "observed"] and sessions.loc[20, "gap"] == pytest.approx(end - 2)
    assert sessions.loc[10, "like_rate"] == 0.5 and sessions.loc[11, "topic_repeat"] == 0.5
    assert sessions.loc[10, "topic_repeat"] == 1.0 and sessions.loc[
        11, "log_sessions_before"
    ] == pytest.approx(np.log(2))
    with pytest.raises(DataError, match="click"):
        session_gaps(log.drop(columns="click"))


def test_kaplan_meier_follows_a_known_survival_under_censoring() -> None:
    rng = np.random.default_rng(0)
    gaps, censor = rng.exponential(5.0, 20_000), rng.uniform(0, 20, 20_000)
    at = np.array([1.0, 5.0, 10.0])
    curve = kaplan_meier(np.minimum(gaps, censor), gaps <= censor, at)
    assert curve == pytest.approx(np.exp(-at / 5.0), abs=0.015)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_hazard_fit_recovers_known_coefficients_from_censored_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6_000
    x = np.column_stack([rng.normal(size=n), rng.uniform(0, 1, n)])
    truth = ReturnModel(0.7, 6.0, ("a", "b"), (0.4, -0.8), (), n, n, 0.0)
    gaps = truth.sample(x, rng)
    censor = rng.uniform(0, 40, n)  # a third or so censored, as at a log's end
    model = fit_returns(np.minimum(gaps, censor), gaps <= censor, x, ("a", "b"))
    assert 0.2 < 1 - model.observed / n < 0.6
    estimates = [np.log(model.shape), np.log(model.scale), *model.beta]
    for estimate, true, se in zip(estimates, [np.log(0.7), np.log(6.0), 0.4, -0.8], model.se, strict=True):
        assert abs(estimate - true) < 4 * se, (estimate, true, se)
    assert all(0 < se < 0.1 for se in model.se)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_truncated_fit_recovers_a_model_with_a_shortest_gap(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 8_000
    x = np.column_stack([rng.normal(size=n), rng.uniform(0, 1, n)])
    truth = ReturnModel(0.5, 6.0, ("a", "b"), (0.4, -0.8), (), n, n, 0.0, min_gap=MIN_GAP_DAYS)
    gaps = truth.sample(x, rng)
    assert gaps.min() >= MIN_GAP_DAYS
    censor = MIN_GAP_DAYS + rng.uniform(0, 40, n)
    model = fit_returns(np.minimum(gaps, censor), gaps <= censor, x, ("a", "b"), MIN_GAP_DAYS)
    estimates = [np.log(model.shape), np.log(model.scale), *model.beta]
    for estimate, true, se in zip(estimates, [np.log(0.5), np.log(6.0), 0.4, -0.8], model.se, strict=True):
        assert abs(estimate - true) < 4 * se, (estimate, true, se)
    # ignoring the truncation biases the shape: the short gaps a Weibull expects are missing
    naive = fit_returns(np.minimum(gaps, censor), gaps <= censor, x, ("a", "b"))
    assert naive.shape - 0.5 > 4 * model.se[0] * 0.5
    with pytest.raises(DataError, match="shorter"):
        fit_returns(np.full(5, 0.01), np.ones(5, dtype=bool), np.zeros((5, 1)), ("a",), MIN_GAP_DAYS)


def test_the_fitted_process_of_a_returning_shop_predicts_held_out_users() -> None:
    config = ShopConfig(seed=4, n_users=3_000, n_items=300, n_sellers=30, returns=ShopReturns(enabled=True))
    world = ShopWorld(config)
    logs = world.simulate_logs()
    process = fit_return_process(logs, world.item_topic)
    assert process.min_gap == MIN_GAP_DAYS and process.user_offset.shape == (config.n_users,)
    # who returns often is kept: the fitted offsets follow the users' true activity
    seen = np.flatnonzero(process.user_offset != 0)
    assert np.corrcoef(process.user_offset[seen], np.log(world.user_activity[seen]))[0, 1] > 0.5
    sessions = session_gaps(logs.interactions, logs.items.set_index("item_id")["category"])
    held_out = held_out_distance(sessions, np.geomspace(MIN_GAP_DAYS, 60, 100))
    assert held_out["ks"] < 0.10 and held_out["held_out_sessions"] > 1_000, held_out


def test_the_fit_refuses_logs_with_no_return() -> None:
    with pytest.raises(DataError, match="observed return"):
        fit_returns(np.ones(5), np.zeros(5, dtype=bool), np.zeros((5, 1)), ("a",))


def test_design_puts_each_user_s_mean_beside_the_session_s_value() -> None:
    sessions = pd.DataFrame({"user_id": [1, 1, 2], "like_rate": [0.0, 1.0, 0.5], "log_length": [1.0, 1.0, 1.0],
                             "topic_repeat": [1.0, 1.0, 1.0], "log_sessions_before": [0.0, 1.0, 0.0]})  # fmt: skip
    x, names = design(sessions)
    assert len(names) == 8 and names[4] == "user_mean_like_rate"
    assert x[:, 4] == pytest.approx([0.0, 0.0, 0.0])  # both users average 0.5
    assert x[:, 0] == pytest.approx([-0.5, 0.5, 0.0])


def test_returns_benchmark_on_movielens(tmp_path: Path) -> None:
    out = tmp_path / "returns.json"
    returns_main(["--json", str(out)])
    report = json.loads(out.read_text())
    assert report["sessions"] == 2793 and 0 < report["observed_gaps"] < report["sessions"]
    back = report["return_within_days"]
    assert 0 < back["1"] < back["7"] < back["28"] < 1
    assert {e["covariate"] for e in report["within_user"]["effects"]} >= {"like_rate", "user_mean_like_rate"}
    assert 0 < report["held_out"]["ks"] < 0.10  # the fidelity bound, on users the fit never saw
    assert "truth" not in report
    assert (
        out.with_suffix(".png").stat().st_size > 0
        and "How users come back" in out.with_suffix(".md").read_text()
    )


def test_returns_benchmark_never_writes_over_its_input(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "interactions.json").write_text("{}")
    with pytest.raises(SystemExit):
        returns_main(["--data", str(logs), "--json", str(logs / "interactions.json")])
    assert (logs / "interactions.json").read_text() == "{}"
