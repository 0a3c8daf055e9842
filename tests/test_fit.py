"""Fitting a simulator from logs: position bias, fidelity on the shop, the CLI and its errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulators.core.metrics import (
    clustered_standard_error,
    expected_calibration_error,
    gini,
    ks_distance,
    roc_auc,
)
from simulators.data.click_models import position_bias_em
from simulators.data.steps import build_steps
from simulators.datasets import load_logs
from simulators.fit.cache import load_or_fit
from simulators.fit.config import FitConfig, ResponseNetConfig
from simulators.fit.pipeline import fit_simulator
from simulators.fit.simulator import FittedSimulator
from simulators.fit.train import topic_exposure
from simulators.shop.world import ShopConfig, write_shop
from tests.conftest import SMALL_SHOP, run_cli

FAST = FitConfig(
    text_encoder="hashing",
    net=replace(ResponseNetConfig(), optim=replace(ResponseNetConfig().optim, epochs=2)),
)


def test_position_bias_em_recovers_the_shops_truth() -> None:
    logs = load_logs("shop", config=replace(SMALL_SHOP, n_sessions=4000))
    theta = position_bias_em(build_steps(logs), logs.n_items)
    truth = np.arange(1, 6) ** -SMALL_SHOP.position_bias_power
    np.testing.assert_allclose(theta, truth, atol=0.06)


def test_topic_exposure_counts_earlier_steps_only() -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    steps = build_steps(logs)
    topics = logs.items["category"].factorize(sort=True)[0]
    views, _ = topic_exposure(steps, topics, retention=0.5)
    assert (views[steps.step == 0] == 0).all()
    assert (views[steps.step > 0] > 0).any()


def test_fit_on_a_small_shop_and_save_load(tmp_path: Path) -> None:
    logs = load_logs("shop", config=replace(SMALL_SHOP, n_sessions=3000))
    simulator, report = fit_simulator(logs, FAST)
    assert 0.5 < report["click_auc"] <= 1 and report["session_length_ks"] < 0.3
    assert simulator.click_logit.shape == (logs.n_users, logs.n_items)
    simulator.save(tmp_path)
    again = FittedSimulator.load(tmp_path)
    np.testing.assert_array_equal(again.click_logit, simulator.click_logit)
    assert again.dynamics == simulator.dynamics


def test_fit_is_deterministic_on_cpu() -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    first, report_a = fit_simulator(logs, FAST)
    second, report_b = fit_simulator(logs, FAST)
    np.testing.assert_array_equal(first.click_logit, second.click_logit)
    assert report_a["click_auc"] == report_b["click_auc"]


@pytest.mark.slow
def test_default_shop_fidelity() -> None:
    """The default simulator behind ecommerce-v0 against the shop's ground truth."""
    _, report = load_or_fit(load_logs("shop"))
    assert report["session_length_ks"] <= 0.10
    assert report["click_auc"] >= report["click_auc_ground_truth"] - 0.045  # measured gap: see README
    assert report["calibration_error"] < 0.01
    assert report["dynamics_source"]["leave"] == "fitted"


def test_fit_cli_writes_the_report(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    write_shop(replace(SMALL_SHOP, n_sessions=2000), shop)
    out = tmp_path / "fit"
    result = run_cli(
        "simulators.fit",
        "--data",
        str(shop),
        "--out",
        str(out),
        "--report",
        "--text-encoder",
        "hashing",
        "--epochs",
        "2",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "fidelity.json").read_text())
    for key in (
        "click_auc",
        "click_auc_ground_truth",
        "purchase_auc",
        "calibration_error",
        "session_length_ks",
    ):
        assert isinstance(report[key], float)
    assert "| click AUC (held-out) |" in (out / "fidelity.md").read_text()


def test_fit_cli_bad_data_is_one_line(tmp_path: Path) -> None:
    result = run_cli("simulators.fit", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "unknown dataset" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_metrics_against_known_answers() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))
    assert expected_calibration_error(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(0.0)
    assert ks_distance(np.arange(10), np.arange(10)) == 0.0
    assert ks_distance(np.zeros(5), np.ones(5)) == 1.0
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 1.0])) == pytest.approx(0.75)


def test_clustered_standard_error() -> None:
    x = np.random.default_rng(0).normal(size=50)
    iid = x.std(ddof=1) / np.sqrt(len(x))
    assert clustered_standard_error(x, np.arange(50)) == pytest.approx(iid)
    # Each value copied 4 times into its own cluster carries no more information than once.
    assert clustered_standard_error(np.repeat(x, 4), np.repeat(np.arange(50), 4)) == pytest.approx(iid)
    # The same 200 rows read as independent would claim half that error.
    assert np.repeat(x, 4).std(ddof=1) / np.sqrt(200) < 0.51 * iid
    assert np.isnan(clustered_standard_error(x, np.zeros(50)))
    with pytest.raises(ValueError, match="differ in length"):
        clustered_standard_error(x, np.arange(49))


def test_shop_config_unknown_without_a_folder() -> None:
    from simulators.core.errors import DataError
    from simulators.datasets.shop import shop_config_of
    from simulators.shop.world import ShopWorld

    logs = ShopWorld(replace(ShopConfig(), n_users=50, n_items=40, n_sessions=20)).simulate_logs()
    with pytest.raises(DataError, match="ground truth is unknown"):
        shop_config_of(logs)
