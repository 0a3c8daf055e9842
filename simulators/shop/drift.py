"""How the shop's tastes move over the days (:class:`~simulators.shop.config.ShopDrift`): each
category's log interest follows a trend and a yearly season, from a stream of its own."""

from __future__ import annotations

import numpy as np

from simulators.shop.config import ShopConfig


def category_drift(config: ShopConfig, day: float) -> np.ndarray:
    """``(n_categories,)`` the change of every category's log interest at ``day`` (zeros when off)."""
    drift = config.drift
    if not drift.enabled:
        return np.zeros(config.n_categories)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xD7_1F]))
    slope = rng.normal(0.0, drift.trend_sd_per_week, config.n_categories)
    phase = rng.uniform(0.0, 2 * np.pi, config.n_categories)
    season = np.sin(2 * np.pi * day / drift.season_days + phase) - np.sin(phase)  # 0 at day 0
    return slope * day / 7.0 + drift.season_amplitude * season
