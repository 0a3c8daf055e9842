"""simulators.fit: fitting a simulator from logs, fidelity on the shop, the CLI and its errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulators.core.errors import ConfigError, DataWarning
from simulators.data.steps import StepTable, build_steps
from simulators.datasets import load_logs
from simulators.fit.cache import load_or_fit
from simulators.fit.config import FitConfig, ResponseNetConfig
from simulators.fit.pipeline import fit_simulator
from simulators.fit.simulator import FittedSimulator
from simulators.fit.train import topic_exposure
from simulators.shop.files import write_shop
from tests.conftest import SMALL_SHOP, run_cli

FAST = FitConfig(
    text_encoder="hashing",
    net=replace(ResponseNetConfig(), optim=replace(ResponseNetConfig().optim, epochs=2)),
)


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


def test_a_fit_on_too_little_data_says_so() -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    with pytest.warns(DataWarning, match=r"the fit could hold out only \d+ steps \(fewer than 1,000"):
        _, report = fit_simulator(logs, FAST)
    assert report["test_steps"] < 1_000 and "log more" in report["warnings"][0]


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
    assert report["traits_correlation"]["leave_offset"] > 0.4  # patience is recovered (0.58 measured)
    # the truth's visits differ only by their user: no session spread, first visits like later ones
    assert report["dynamics"]["leave_session_sd"] < 0.2
    assert abs(report["dynamics"]["leave_first_session"]) < 0.3


@pytest.mark.slow
def test_movielens_session_lengths() -> None:
    """MovieLens-100K's sessions: a user's first visit (signing up) runs long, later ones short,
    and visits differ beyond their user; with both in the leave hazard the held-out (latest)
    sessions' lengths are within the issue's KS bound (0.28 with neither, 0.15 without the first
    visit's term)."""
    _, report = load_or_fit(load_logs("movielens"))
    assert report["session_length_ks"] <= 0.10
    assert report["dynamics"]["leave_first_session"] < -1.0  # first visits are patient
    assert report["dynamics"]["leave_session_sd"] > 0.5


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
        "session_length_ks_at_env_cap",
    ):
        assert isinstance(report[key], float)
    assert "| click AUC (held-out) |" in (out / "fidelity.md").read_text()


def test_fit_cli_bad_data_is_one_line(tmp_path: Path) -> None:
    result = run_cli("simulators.fit", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "unknown dataset" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_cross_fitting_scores_each_training_session_once_with_a_network_that_never_saw_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole-session fit's extra click parts are the folds of the training sessions: each
    session in exactly one fold, its logits from a network trained on the other folds' rows only."""
    import simulators.fit.train as train_module

    with pytest.raises(ConfigError, match="cross_fit_folds"):
        FitConfig(cross_fit_folds=1)  # one fold would train on nothing
    logs = load_logs("shop", config=SMALL_SHOP)
    config = replace(FAST, cross_fit_folds=3)
    trained_on: list[int] = []
    parts: list[list[tuple[np.ndarray, StepTable]]] = []
    real_train, real_fit = train_module.train_response_net, train_module.fit_session_dynamics

    def recording_train(net, train, valid, cfg):
        trained_on.append(len(train["user"]))
        return real_train(net, train, valid, cfg)

    def recording_fit(*args, **kwargs):
        parts.append(list(args[-1]))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_response_net", recording_train)
    monkeypatch.setattr(train_module, "fit_session_dynamics", recording_fit)
    with pytest.warns(DataWarning):  # a small shop holds out few steps
        fit_simulator(logs, config)
    split = logs.split_by_time(config.valid_fraction, config.test_fraction)
    train = build_steps(split.train, config.history_length, history_from=logs)
    (folds,) = parts
    assert len(folds) == 3 and len(trained_on) == 4  # the main network, then one per fold
    fold_rows = [len(static) for static, _ in folds]
    assert sum(fold_rows) == len(train.user)  # every training step in exactly one fold
    assert sum(steps.n_sessions for _, steps in folds) == train.n_sessions
    assert trained_on[1:] == [len(train.user) - rows for rows in fold_rows]  # never its own fold
    assert all(np.isfinite(static).all() for static, _ in folds)
