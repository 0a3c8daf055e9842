"""agents.ope.truth: the shop's ground truth and the number of sessions it runs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.ope.targets import PLPolicy, shop_policy
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def test_the_shop_truth_runs_as_many_sessions_as_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--truth-sessions`` sizes both parts of the truth: the independent log and the on-policy run."""
    import agents.ope.truth as truth_module

    asked: list[int] = []
    original = truth_module.true_session_value

    def recording(
        world: ShopWorld, target: PLPolicy, n_sessions: int, rng: np.random.Generator
    ) -> tuple[float, float]:
        asked.append(n_sessions)
        return original(world, target, n_sessions, rng)

    monkeypatch.setattr(truth_module, "true_session_value", recording)
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=200))
    truth = truth_module.ShopTruth.build(world, 300)
    assert truth.steps.n_sessions == 300
    value = truth.value(
        shop_policy("random", world, np.ones(200)), np.random.default_rng(0), np.random.default_rng(1)
    )
    assert asked == [300] and value["session"] > 0 and len(value["per_slot"]) == 5
