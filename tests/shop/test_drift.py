"""The shop's drift of tastes: off is today's shop bit for bit; on, each week's sessions meet that
week's tastes, the true env answers at a chosen day, and the magnitudes are the measured ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from envs.config import EnvConfig
from simulators.core.errors import ConfigError
from simulators.shop.world import ShopConfig, ShopDrift, ShopWorld

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


def test_bad_drift_options_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="season_amplitude"):
        ShopDrift(season_amplitude=-1.0)
    with pytest.raises(ConfigError, match="season_days"):
        ShopDrift(season_days=0.0)
    with pytest.raises(ConfigError, match="true_day"):
        EnvConfig(true_day=3.0)  # the fitted simulator has no day
    with pytest.raises(ConfigError, match="true_day"):
        EnvConfig(simulator="true", true_day=float("nan"))
