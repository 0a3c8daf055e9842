"""EnvConfig.pessimism: each step's reward minus kappa times the disagreement of the fit's ensemble
(MOPO's penalty), checked against the members' own probabilities; the sessions are unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.vector import RankingVectorEnv
from envs.world import build_world
from simulators.core.errors import ConfigError
from simulators.datasets.shop import shop_folder
from simulators.dynamics import SessionState
from tests.conftest import SMALL_SHOP

KAPPA = 2.0


def options(**more: Any) -> dict[str, Any]:
    """The small shop's world, popularity candidates, short sessions."""
    return {"data": str(shop_folder(SMALL_SHOP)), "candidates": "popularity", "max_steps": 5, **more}


def test_the_penalty_is_kappa_times_the_members_spread_and_the_sessions_are_unchanged() -> None:
    plain = RankingVectorEnv(num_envs=16, **options())
    careful = RankingVectorEnv(num_envs=16, **options(pessimism=KAPPA, pessimism_members=3))
    members = [build_world(EnvConfig(**options(fit_sample=k))) for k in (1, 2, 3)]
    plain.reset(seed=5)
    careful.reset(seed=5)
    rng = np.random.default_rng(0)
    charged = 0
    for _ in range(12):
        actions = rng.uniform(-1, 1, plain.action_space.shape).astype(np.float32)
        users, fresh = careful.core.user.copy(), careful.core.step_count == 0
        _, r_a, term_a, trunc_a, info_a = plain.step(actions)
        _, r_b, term_b, trunc_b, info_b = careful.step(actions)
        for name in ("clicks", "purchases", "engagement"):  # the members never touch the session
            np.testing.assert_array_equal(info_a[name], info_b[name])
        np.testing.assert_array_equal(term_a, term_b)
        np.testing.assert_array_equal(trunc_a, trunc_b)
        penalty = info_b["uncertainty_penalty"]
        assert (info_a["uncertainty_penalty"] == 0).all() and (penalty >= 0).all()
        np.testing.assert_allclose(r_b, r_a - penalty, atol=1e-12)
        charged += int((penalty > 0).sum())
        # A session's first step, its state fresh: each member's expected engagement from its own tables.
        rows = np.flatnonzero(fresh)
        if not len(rows):
            continue
        slate, clicked = careful.core.last_slate[rows], careful.core.last_click[rows] > 0
        state = SessionState.fresh(len(rows), members[0].n_topics)
        expected = []
        for world in members:
            sim = world.simulator
            p_click = sim.click_probability(users[rows], slate, state)
            p_buy = sim.purchase_probability(users[rows], slate, state)
            expected.append(p_click.sum(1) + careful.config.purchase_weight * (clicked * p_buy).sum(1))
        np.testing.assert_allclose(
            penalty[rows], KAPPA * np.std(expected, axis=0, ddof=1), rtol=1e-5, atol=1e-9
        )
    assert charged > 0


def test_pessimism_needs_the_plain_fit_and_a_real_ensemble() -> None:
    for bad, message in (({"pessimism": -1.0}, "pessimism must"), ({"pessimism_members": 1}, "pessimism_members"),
                         ({"pessimism": 1.0, "simulator": "true"}, "plain fitted simulator"),
                         ({"pessimism": 1.0, "fit_sample": 2}, "plain fitted simulator")):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            EnvConfig(**options(**bad))
