"""agents.ope.targets: Plackett-Luce target marginals against enumeration and the shop's logging policy."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from agents.ope.targets import PLPolicy, shop_logging_policy
from simulators.data.steps import build_steps
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def _exact_marginals(p: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, len(p)))
    for perm in itertools.permutations(range(len(p)), k):
        probability, taken = 1.0, 0.0
        for item in perm:
            probability *= p[item] / (1 - taken)
            taken += p[item]
        for slot, item in enumerate(perm):
            out[slot, item] += probability
    return out


@pytest.mark.parametrize("support", [6, 600])  # Gumbel-top-k and sequential sampling
def test_rao_blackwellised_marginals_match_enumeration(support: int) -> None:
    rng = np.random.default_rng(0)
    logits = np.full(support, -30.0)
    logits[:6] = rng.normal(size=6)
    policy = PLPolicy("t", np.arange(support)[None], logits[None], support)
    estimated = policy.marginals(np.array([0]), 3, 50_000, rng)[0]
    p = np.exp(logits[:6]) / np.exp(logits[:6]).sum()
    np.testing.assert_allclose(estimated[:, :6], _exact_marginals(p, 3), atol=4e-3)
    np.testing.assert_allclose(estimated.sum(axis=1), 1.0, atol=1e-6)


def test_logging_policy_prefix_probability_is_the_logged_propensity() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=200))
    steps = build_steps(world.simulate_logs())
    logged = world.logging_policy.slate_probability(steps.items)
    prefix = shop_logging_policy(world).prefix_probabilities(steps.user, steps.items)
    np.testing.assert_allclose(prefix[:, -1], logged, rtol=1e-9)
