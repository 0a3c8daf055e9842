"""encoders.ctr: the multi-task CTR model: learnability, baselines it must beat, determinism, CLI errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from encoders.ctr.config import CTRConfig
from encoders.ctr.train import evaluate_ctr, load_ctr, load_or_train_ctr, resolve_tasks, train_ctr
from encoders.optimiser import OptimiserConfig
from simulators.core.errors import ConfigError, DataError
from simulators.core.metrics import roc_auc
from simulators.data.logs import LoggedData
from simulators.data.steps import build_steps
from simulators.datasets import load_logs
from tests.conftest import SMALL_SHOP, run_cli

FAST = CTRConfig(text_encoder="hashing", optim=OptimiserConfig(epochs=4))


def _signal_logs(n_users: int = 300, n_items: int = 40, seed: int = 0) -> LoggedData:
    """Users of two kinds click items of their kind (90%) and almost never others (2%): the
    ideal AUC is about 0.95, so a working model clears 0.9 and a broken one cannot."""
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(1500):
        user = int(rng.integers(n_users))
        for step in range(3):
            for position, item in enumerate(rng.choice(n_items, 4, replace=False)):
                match = (item % 2) == (user % 2)
                click = int(rng.random() < (0.9 if match else 0.02) / (1 + 0.1 * position))
                rows.append((user, int(item), session * 100 + step, session, position + 1, click))
    interactions = pd.DataFrame(
        rows, columns=["user_id", "item_id", "timestamp", "session_id", "position", "click"]
    )
    items = pd.DataFrame(
        {
            "item_id": range(n_items),
            "text": [("even" if i % 2 == 0 else "odd") + f" item {i}" for i in range(n_items)],
            "provider": "p",
        }
    )
    users = pd.DataFrame(
        {"user_id": range(n_users), "kind": [("even", "odd")[u % 2] for u in range(n_users)]}
    )
    return LoggedData(interactions, items, users, source="signal").validate()


def test_learns_a_known_signal() -> None:
    logs = _signal_logs()
    trained = train_ctr(logs, FAST)
    assert evaluate_ctr(trained, logs)["click"]["auc"] > 0.9


@pytest.mark.parametrize("architecture", ["mmoe", pytest.param("shared_bottom", marks=pytest.mark.slow)])
def test_beats_popularity_on_the_shop(architecture: str) -> None:
    logs = load_logs("shop", config=replace(SMALL_SHOP, n_sessions=3000))
    trained = train_ctr(logs, replace(FAST, architecture=architecture))
    scores = evaluate_ctr(trained, logs)
    test = build_steps(logs.split_by_time(0.1, 0.1).test, history_from=logs)
    popularity = logs.split_by_time(0.1, 0.1).train.popularity()[np.maximum(test.items, 0)]
    popularity_auc = roc_auc(test.clicks[test.slot_mask], popularity[test.slot_mask])
    assert scores["click"]["auc"] > popularity_auc + 0.02
    assert {"click", "purchase"} == set(scores)


def test_same_seed_same_metrics() -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    first = evaluate_ctr(train_ctr(logs, replace(FAST, optim=OptimiserConfig(epochs=2))), logs)
    second = evaluate_ctr(train_ctr(logs, replace(FAST, optim=OptimiserConfig(epochs=2))), logs)
    assert first == second


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    trained = train_ctr(logs, replace(FAST, optim=OptimiserConfig(epochs=1)))
    trained.save(tmp_path / "model")
    again = load_ctr(tmp_path / "model", logs, device="cpu")
    assert evaluate_ctr(again, logs) == evaluate_ctr(trained, logs)
    other = load_logs("shop", config=replace(SMALL_SHOP, n_items=SMALL_SHOP.n_items + 5))
    with pytest.raises(DataError, match="catalog"):
        load_ctr(tmp_path / "model", other, device="cpu")


def test_warm_start_begins_where_the_saved_model_ended(tmp_path: Path) -> None:
    """One epoch from last week's parameters ends no worse than those parameters did, and better
    than one epoch from random ones."""
    logs = _signal_logs()
    trained = train_ctr(logs, FAST)
    trained.save(tmp_path / "last-week")
    one_epoch = replace(FAST, optim=OptimiserConfig(epochs=1))
    fresh = train_ctr(logs, one_epoch)
    warm = train_ctr(logs, one_epoch, init=tmp_path / "last-week")
    assert (
        warm.history["valid_loss"][0]
        <= trained.history["valid_loss"][-1] + 1e-3
        < fresh.history["valid_loss"][0]
    )
    assert warm.history["warm_start"] == str(tmp_path / "last-week") and fresh.history["warm_start"] is None
    assert evaluate_ctr(warm, logs)["click"]["auc"] > 0.9
    # The cache keys the starting parameters: a warm-started model is not the fresh one's entry.
    cached_fresh = load_or_train_ctr(logs, one_epoch)
    cached_warm = load_or_train_ctr(logs, one_epoch, init=tmp_path / "last-week")
    assert (
        cached_warm.history["valid_loss"] == warm.history["valid_loss"] != cached_fresh.history["valid_loss"]
    )
    with pytest.raises(DataError, match="cannot warm-start the CTR model"):
        train_ctr(logs, replace(one_epoch, dim=16), init=tmp_path / "last-week")
    with pytest.raises(DataError, match="not a CTR model folder to warm-start from"):
        load_or_train_ctr(logs, one_epoch, init=tmp_path)


@pytest.mark.slow
def test_item_id_embedding_is_an_option() -> None:
    logs = _signal_logs(n_users=40)
    without = train_ctr(logs, replace(FAST, optim=OptimiserConfig(epochs=1))).model.state_dict()
    with_ids = train_ctr(
        logs, replace(FAST, optim=OptimiserConfig(epochs=1), item_id_embedding=True)
    ).model.state_dict()
    assert "item_tower.side.weight" in without and not any(
        key.startswith("item_tower.ids.") for key in without
    )
    assert with_ids["item_tower.ids.weight"].shape == (40, FAST.dim)


def test_tasks_follow_the_labels() -> None:
    movielens_like = _signal_logs()
    assert resolve_tasks(CTRConfig(), movielens_like) == ("click",)
    with pytest.raises(DataError, match="no label for task"):
        resolve_tasks(CTRConfig(tasks=("click", "purchase")), movielens_like)
    with pytest.raises(ConfigError, match="unknown task"):
        CTRConfig(tasks=("dwell",))


def test_cli_bad_inputs_are_one_line(tmp_path: Path) -> None:
    unknown = run_cli("encoders.ctr", "train", "--data", "nowhere", "--out", str(tmp_path / "m"))
    assert unknown.returncode == 2 and "unknown dataset 'nowhere'" in unknown.stderr
    (tmp_path / "empty").mkdir()
    not_a_model = run_cli(
        "encoders.ctr",
        "eval",
        "--model",
        str(tmp_path / "empty"),
        "--data",
        "obd:random/all",
        "--json",
        str(tmp_path / "e.json"),
    )
    assert not_a_model.returncode == 2 and "not a CTR model folder" in not_a_model.stderr
    for result in (unknown, not_a_model):
        assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "e.json").exists()
