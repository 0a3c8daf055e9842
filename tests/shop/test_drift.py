"""The shop's drift of tastes and catalog: off is today's shop bit for bit; on, each week's sessions
meet that week's tastes, new items launch after the logs known only by their text and attributes,
the true env answers (and offers the items on sale) at a chosen day, and the magnitudes are the
measured ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envs.config import EnvConfig
from envs.ranking import RankingEnv
from envs.world import build_world
from simulators.core.errors import ConfigError, DataError
from simulators.data.features import item_feature_matrix
from simulators.datasets import load_logs
from simulators.shop.config import ShopConfig, ShopDrift
from simulators.shop.files import write_shop
from simulators.shop.world import ShopWorld

SMALL = ShopConfig(n_users=400, n_items=240, n_sessions=1_500)


def test_drift_off_is_todays_shop() -> None:
    assert (
        ShopConfig().to_json() == ShopConfig(drift=ShopDrift(enabled=False, season_amplitude=9.0)).to_json()
    )
    assert "ShopDrift" not in ShopConfig().to_json() and '"drift"' not in ShopConfig().to_json()
    world = ShopWorld(SMALL)
    assert world.at(17.0) is world and not world.category_drift(17.0).any()
    again = ShopWorld(replace(SMALL, drift=ShopDrift(enabled=False))).simulate_logs()
    pd.testing.assert_frame_equal(world.simulate_logs().interactions, again.interactions)
    assert world.n_catalog == SMALL.n_items and "launch_day" not in again.items.columns
    assert again.on_sale(0.0).all()


def test_new_items_launch_after_the_logs_known_only_by_their_text() -> None:
    plain, world = ShopWorld(SMALL), ShopWorld(replace(SMALL, drift=ShopDrift(enabled=True)))
    n_new = round(ShopDrift().new_items_per_week * SMALL.n_items * ShopDrift().launch_horizon_weeks)
    assert n_new > 0 and world.n_catalog == SMALL.n_items + n_new
    launch = world.item_launch_day[SMALL.n_items :]
    assert (
        (launch > SMALL.days).all() and (launch <= SMALL.days + 7 * 13).all() and (np.diff(launch) >= 0).all()
    )
    # The logged catalog is the drift-free one; the new items come from a stream of their own.
    for name in ("item_category", "item_seller", "item_quality", "item_price", "prior_popularity"):
        np.testing.assert_array_equal(getattr(world, name)[: SMALL.n_items], getattr(plain, name))
    logs = world.simulate_logs()
    assert logs.n_items == world.n_catalog and logs.items["item_id"].is_unique
    assert logs.interactions["item_id"].max() < SMALL.n_items  # never shown before their launch
    texts = logs.items["text"].iloc[SMALL.n_items :]
    assert texts.str.len().min() > 20 and set(logs.items["category"].iloc[SMALL.n_items :]) <= set(
        logs.items["category"].iloc[: SMALL.n_items]
    )
    np.testing.assert_array_equal(logs.on_sale(), np.arange(world.n_catalog) < SMALL.n_items)
    np.testing.assert_array_equal(logs.on_sale(60.0), world.launched(60.0))
    assert (
        ShopWorld(replace(SMALL, drift=ShopDrift(enabled=True, launch_horizon_weeks=0))).n_catalog
        == SMALL.n_items
    )
    # When an item launches is not what it is: no model reads it as a feature.
    without = replace(logs, items=logs.items.drop(columns="launch_day"))
    np.testing.assert_array_equal(item_feature_matrix(logs, logs), item_feature_matrix(without, without))
    broken = replace(logs, items=logs.items.assign(launch_day=np.nan))
    with pytest.raises(DataError, match="launch_day must be a finite number"):
        broken.on_sale()


@pytest.mark.slow
def test_the_true_env_offers_the_items_on_sale_that_day(tmp_path: Path) -> None:
    """The CTR candidate generator scores new items by their text and attributes: none before their
    launch, each user's quota of them after (without it, popularity-led retrieval never offers
    them), and never one that has not launched by the env's day."""
    folder = tmp_path / "shop"
    write_shop(replace(SMALL, drift=ShopDrift(enabled=True)), folder)
    logs = load_logs(str(folder))
    before = build_world(EnvConfig(data=str(folder)))
    assert (before.candidates < SMALL.n_items).all()
    for day in (60.0, 120.0):
        world = build_world(EnvConfig(data=str(folder), simulator="true", true_day=day))
        assert logs.on_sale(day)[world.candidates].all()
        new = world.candidates >= SMALL.n_items
        assert (new.sum(axis=1) == EnvConfig().fresh_candidates).all()  # each user's quota of new launches
        assert all(len(set(row)) == world.candidates.shape[1] for row in world.candidates)
        pctr = world.candidate_features[..., 0]
        assert (np.diff(pctr, axis=1) <= 1e-6).all()  # still ranked by P(click), the new ones among the rest
        fitted = build_world(EnvConfig(data=str(folder), catalog_day=day))
        np.testing.assert_array_equal(
            fitted.candidates, world.candidates
        )  # either simulator: the catalog's day
    no_quota = build_world(
        EnvConfig(data=str(folder), candidates="popularity", catalog_day=120.0, fresh_candidates=0)
    )
    assert (no_quota.candidates < SMALL.n_items).all()  # popularity-led retrieval alone never offers them
    env = RankingEnv(data=str(folder), simulator="true", true_day=120.0)
    env.reset(seed=0)
    _, reward, *_ = env.step(np.arange(env.action_space.shape[0], dtype=np.float32))
    assert np.isfinite(reward)
    with pytest.raises(ConfigError, match="catalog_day"):
        EnvConfig(catalog_day=-1.0)


def test_drifting_tastes_follow_the_trend_and_the_season() -> None:
    world = ShopWorld(replace(SMALL, drift=ShopDrift(enabled=True)))
    assert not world.category_drift(0.0).any()  # day 0 is the shop without drift
    later = world.at(28.0)
    moved = later.user_category_pref - world.user_category_pref
    np.testing.assert_allclose(moved, np.broadcast_to(world.category_drift(28.0), moved.shape))
    assert later.day == 28.0 and world.day == 0.0  # a view: the world itself is left as it was
    assert 0.02 < np.abs(world.category_drift(28.0)).mean() < 1.0
    config = ShopConfig.from_json(replace(SMALL, drift=ShopDrift(enabled=True)).to_json())
    assert config.drift.enabled and config.drift == ShopDrift(enabled=True)


@pytest.mark.slow
def test_each_week_of_a_drifting_log_meets_that_weeks_tastes() -> None:
    """Categories whose interest rose by the last week get a larger click share there than in week 0."""
    config = replace(SMALL, n_sessions=6_000, drift=ShopDrift(enabled=True, season_amplitude=1.0))
    world = ShopWorld(config)
    logs = world.simulate_logs()
    table = logs.interactions
    week = (table["timestamp"] - table["timestamp"].min()) // (7 * 86_400)
    category = world.item_category[table["item_id"].to_numpy()]
    change = world.category_drift(24.5) - world.category_drift(3.5)
    up, down = change > np.quantile(change, 0.75), change < np.quantile(change, 0.25)
    shares = []
    for w in (0, int(week.max()) - 1):
        clicks = table["click"].to_numpy() * (week == w).to_numpy()
        total = np.bincount(category, weights=clicks, minlength=config.n_categories)
        shares.append(total / total.sum())
    assert shares[1][up].sum() - shares[0][up].sum() > shares[1][down].sum() - shares[0][down].sum()


def test_the_magnitudes_are_the_measured_ones() -> None:
    measured = json.loads((Path(__file__).parents[2] / "benchmarks/results/drift.json").read_text())
    drift = ShopDrift()
    assert drift.trend_sd_per_week == pytest.approx(measured["trend_sd_per_week"], abs=0.001)
    assert drift.season_amplitude == pytest.approx(measured["season_amplitude_rms"], abs=0.01)
    assert drift.new_items_per_week == pytest.approx(measured["new_items_share_per_week"], abs=0.0005)


def test_bad_drift_options_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="season_amplitude"):
        ShopDrift(season_amplitude=-1.0)
    with pytest.raises(ConfigError, match="season_days"):
        ShopDrift(season_days=0.0)
    with pytest.raises(ConfigError, match="true_day"):
        EnvConfig(true_day=3.0)  # the fitted simulator has no day
    with pytest.raises(ConfigError, match="true_day"):
        EnvConfig(simulator="true", true_day=float("nan"))
