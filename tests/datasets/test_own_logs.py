"""Own logs with the columns people have: the tabular loader fills in what is missing, says so
once, and the rest of RecGym (encoders, fairness, OPE) works from what is there."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.ope.own import evaluate_own, slot_propensities, user_folds
from encoders.text import catalog_encoder
from simulators.core.errors import ConfigError, DataError, DataWarning
from simulators.datasets import load_logs
from simulators.datasets.tabular import NO_PROVIDER, SCHEMA_FILE


def _clickstream(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """``user_id,item_id,timestamp,click``: 20 users, 30 items, a row a minute with hour-long pauses."""
    rng = np.random.default_rng(seed)
    minutes = np.cumsum(np.where(rng.random(n) < 0.05, 120, 1))
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 20, n),
            "item_id": rng.integers(0, 30, n),
            "timestamp": 1_700_000_000 + 60 * minutes,
            "click": (rng.random(n) < 0.2).astype(int),
        }
    )


def test_four_columns_load_and_every_fill_is_said_once(tmp_path: Path) -> None:
    _clickstream().to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.warns(DataWarning) as said:
        logs = load_logs(tmp_path)
    assert len(said) == 1  # one warning naming every fill
    message = str(said[0].message)
    for column in ("position", "session_id", "text", "provider", "items"):
        assert column in message
    assert (logs.interactions["position"] == 1).all()
    assert logs.interactions["session_id"].nunique() > 1
    assert logs.item_text == "ids" and logs.items["text"].str.startswith("item ").all()
    assert (logs.items["provider"] == NO_PROVIDER).all()
    assert catalog_encoder(logs, "minilm") == "hashing"
    assert len(logs.notes) == 5 and logs.summary()["notes"] == list(logs.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second load of the same folder says nothing again
        load_logs(tmp_path)


def test_repeated_user_item_time_rows_are_one_impression(tmp_path: Path) -> None:
    table = _clickstream(50)
    doubled = pd.concat([table, table.iloc[:3].assign(click=1)], ignore_index=True)
    doubled.to_csv(tmp_path / "interactions.csv", index=False)
    logs = load_logs(tmp_path)
    assert len(logs.interactions) == len(table.drop_duplicates(["user_id", "item_id", "timestamp"]))
    assert "merged" in " ".join(logs.notes)


def test_ratings_become_clicks_at_a_threshold(tmp_path: Path) -> None:
    table = _clickstream(60).drop(columns=["click"]).assign(rating=np.arange(60) % 5 + 1)
    table.to_csv(tmp_path / "interactions.csv", index=False)
    logs = load_logs(tmp_path)
    assert logs.interactions["click"].tolist() == (logs.interactions["rating"] >= 4).astype(int).tolist()
    assert load_logs(tmp_path, rating_threshold=5).interactions["click"].sum() == 12
    table.assign(rating=table["rating"] * 2).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataError, match="rating_threshold"):
        load_logs(tmp_path)  # a 1-10 scale: no default threshold
    (tmp_path / SCHEMA_FILE).write_text(json.dumps({"rating_threshold": 8}))
    assert load_logs(tmp_path).notes[0] == "click: rating >= 8"


def test_an_event_column_maps_onto_click_and_purchase(tmp_path: Path) -> None:
    table = _clickstream(40).drop(columns=["click"])
    table["type"] = np.array(["view", "cart", "purchase", "impression"])[np.arange(40) % 4]
    table.to_csv(tmp_path / "interactions.csv", index=False)
    logs = load_logs(tmp_path, column_map={"type": "event"})
    assert logs.interactions.groupby("event")["click"].max().to_dict() == {
        "cart": 1, "impression": 0, "purchase": 1, "view": 0
    }  # fmt: skip
    assert logs.interactions["purchase"].sum() == 10
    (tmp_path / SCHEMA_FILE).write_text(
        json.dumps({"column_map": {"type": "event"}, "click_events": ["view"]})
    )
    assert load_logs(tmp_path).interactions.groupby("event")["click"].max()["view"] == 1


def test_items_without_text_are_described_by_their_attributes(tmp_path: Path) -> None:
    _clickstream().to_csv(tmp_path / "interactions.csv", index=False)
    items = pd.DataFrame(
        {"item_id": range(30), "brand": [f"b{i % 4}" for i in range(30)], "seller": range(30)}
    )
    items.to_csv(tmp_path / "items.csv", index=False)
    logs = load_logs(tmp_path, column_map={"seller": "provider"})
    assert logs.item_text == "attributes"
    assert logs.items.set_index("item_id")["text"][5] == "brand: b1"
    assert logs.items["provider"].nunique() == 30


def test_what_cannot_be_filled_in_is_one_clear_error(tmp_path: Path) -> None:
    table = _clickstream(20)
    table.drop(columns=["click"]).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataError, match="no feedback column"):
        load_logs(tmp_path)
    table.drop(columns=["timestamp"]).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['timestamp'\]"):
        load_logs(tmp_path)
    table.assign(slate_id=0).to_csv(tmp_path / "interactions.csv", index=False)
    with pytest.raises(DataError, match="slate_id without position"):
        load_logs(tmp_path)
    table.to_csv(tmp_path / "interactions.csv", index=False)
    for content, match in (
        ("[1, 2]", "JSON object"),
        ('{"colum_map": {}}', "unknown option"),
        ("{", "readable"),
    ):
        (tmp_path / SCHEMA_FILE).write_text(content)
        with pytest.raises(ConfigError, match=match):
            load_logs(tmp_path)


def _obd_as_csv(folder: Path) -> pd.DataFrame:
    """OBD's random campaign re-exported as a plain CSV, without its propensity column."""
    logs = load_logs("obd:random/all")
    columns = ["user_id", "item_id", "timestamp", "session_id", "position", "click"]
    logs.interactions[columns].to_csv(folder / "interactions.csv", index=False)
    return logs.interactions


def test_estimated_propensities_recover_obd_random_logging(tmp_path: Path) -> None:
    """The uniform-random campaign's true propensity is 1/80 per (item, slot). Each estimate
    counts about m = 28 out-of-fold rows (10,000 rows * 2/3 over 80 items * 3 slots), so its mean
    absolute relative error is about sqrt(2 / (pi m)) = 0.15 (Poisson noise): the test allows 0.2,
    and the estimates must be unbiased (their mean within 2% of 1/80)."""
    original = _obd_as_csv(tmp_path)
    logs = load_logs(tmp_path)
    assert "propensity" not in logs.interactions.columns
    table = logs.interactions
    user = pd.Index(logs.users["user_id"]).get_indexer(table["user_id"])
    fold = user_folds(logs.n_users, 3, np.random.default_rng(0))[user]
    item = logs.item_rows(table["item_id"].to_numpy())
    slot = table["position"].to_numpy() - 1
    mu = slot_propensities(item, slot, fold, logs.n_items, 3, 3)
    np.testing.assert_allclose(mu.sum(axis=2), 1.0)
    estimated = mu[fold, slot, item]
    error = np.abs(estimated / original["propensity"].to_numpy() - 1)
    assert error.mean() < 0.2, error.mean()
    assert abs(estimated.mean() * 80 - 1) < 0.02


def test_ope_on_own_logs_marks_estimated_propensities_and_has_no_truth(tmp_path: Path) -> None:
    _obd_as_csv(tmp_path)
    report = evaluate_own(str(tmp_path), "random", None, 20, 3, 0)
    assert report["ground_truth"] is None and "online run" in str(report["ground_truth_why"])
    assert report["form"].startswith("bandit")  # type: ignore[union-attr]
    estimates = report["estimates"]
    assert isinstance(estimates, dict) and estimates["dm"]["propensities"] == "none (model only)"
    assert all(entry["propensities"] == "estimated" for name, entry in estimates.items() if name != "dm")
    # the target is the logger (uniform random): IPS with estimated propensities is near the logged mean
    naive = float(report["naive"])  # type: ignore[arg-type]
    lo, hi = estimates["ips"]["ci95"]
    assert lo - 0.002 <= naive <= hi + 0.002
    assert report["support"]["unsupported_target_mass"] == 0.0  # type: ignore[index]


def test_movielens_as_plain_csv_loads_like_the_movielens_loader(tmp_path: Path) -> None:
    try:
        movielens = load_logs("movielens")
    except DataError:
        pytest.skip("MovieLens-100K is not installed (the recbole wheel)")
    table = movielens.interactions[["user_id", "item_id", "rating", "timestamp"]]
    table.to_csv(tmp_path / "interactions.csv", index=False)
    logs = load_logs(tmp_path)
    assert len(logs.interactions) == len(table) and logs.n_items == movielens.n_items
    expected = (table["rating"] >= 4).mean()
    assert logs.interactions["click"].mean() == pytest.approx(expected)
