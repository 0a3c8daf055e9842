"""agents.ope.slates: slate estimators on the shop's logs against its exact ground truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.ope.estimators import IIPS, PBMDR, PBMIPS, CascadeDR, IndependentDR, SlateDM
from agents.ope.slates import slate_inputs
from agents.ope.targets import shop_logging_policy, shop_policy
from agents.ope.truth import true_step_value
from simulators.data.steps import build_steps
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random", "near-logging", "anti-popularity"])
def test_slate_estimators_recover_the_shops_ground_truth(name: str) -> None:
    """IIPS and the position-based estimators within 5% of the exact truth (PBM holds in the
    shop); Cascade-DR too where its prefix weights stay tame (not for the far-from-logging target)."""
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=4_000))
    logs = world.simulate_logs()
    target = shop_policy(name, world, logs.popularity())
    rng = np.random.default_rng(0)
    truth, _ = true_step_value(world, build_steps(world.simulate_logs(8_000, log_seed=5)), target, 256, rng)
    slates, _ = slate_inputs(build_steps(logs), shop_logging_policy(world), target, rng=rng)
    unbiased_under_pbm = (IIPS(), IndependentDR(), PBMIPS(), PBMDR())
    for estimator in (*unbiased_under_pbm, CascadeDR()) if name != "anti-popularity" else unbiased_under_pbm:
        assert estimator.value(slates) == pytest.approx(truth.sum(), rel=0.05), estimator.name
    assert SlateDM().value(slates) > 0
