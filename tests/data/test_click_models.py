"""simulators.data.click_models: position-based EM against the shop's true examination and relevance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulators.core.errors import ConfigError
from simulators.data.click_models import pbm_em, position_bias_em
from simulators.data.steps import build_steps
from simulators.datasets import load_logs
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def test_position_bias_em_recovers_the_shops_truth() -> None:
    logs = load_logs("shop", config=replace(SMALL_SHOP, n_sessions=4000))
    theta = position_bias_em(build_steps(logs), logs.n_items)
    truth = np.arange(1, 6) ** -SMALL_SHOP.position_bias_power
    np.testing.assert_allclose(theta, truth, atol=0.06)


def test_segment_pbm_shrinks_each_segment_to_the_pooled_relevance() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=200))
    steps = build_steps(world.simulate_logs())
    gender = world.user_gender.astype(np.int64)
    theta, pooled = pbm_em(steps, 200)
    assert pooled.shape == (1, 200) and theta[0] == 1.0
    np.testing.assert_allclose(pbm_em(steps, 200, prior=1e-3)[1], pooled, rtol=1e-9)  # moot with one segment
    _, split = pbm_em(steps, 200, gender)
    assert split.shape == (2, 200) and not np.allclose(split[0], split[1])
    _, shrunk = pbm_em(steps, 200, gender, prior=1e9)
    np.testing.assert_allclose(shrunk, np.repeat(pooled, 2, axis=0), rtol=1e-6)
    with pytest.raises(ConfigError, match="prior"):
        pbm_em(steps, 200, gender, prior=0.0)


def test_pbm_em_predicts_the_logged_clicks_per_slot_and_finds_the_true_examination() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=3_000))
    steps = build_steps(world.simulate_logs())
    segment = world.user_gender.astype(np.int64)
    theta, gamma = pbm_em(steps, 200, segment)
    predicted = (theta * gamma[segment[steps.user][:, None], steps.items]).sum(axis=0)
    np.testing.assert_allclose(predicted, steps.clicks.sum(axis=0), rtol=1e-9)
    assert theta[0] == 1.0
    np.testing.assert_allclose(theta, world.position_bias[: len(theta)], atol=0.025)  # EM alone: 0.049 off
