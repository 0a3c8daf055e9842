"""agents.oracle: the oracle-adaptive reference picks per type on one set of sessions and is
measured on another; with one type it is the best single baseline."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.evaluation.oracle import captured_share, oracle_adaptive, user_types
from agents.evaluation.sessions import EvaluationResult
from simulators.core.errors import ConfigError
from simulators.shop.config import UserVariety
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def _result(returns: np.ndarray, users: np.ndarray) -> EvaluationResult:
    zeros = np.zeros(len(returns))
    return EvaluationResult(returns, zeros, zeros, zeros, zeros, {}, 5, users)


def _two_baselines(seed: int) -> dict[str, EvaluationResult]:
    """``a`` earns 2 on users < 50 and 1 above; ``b`` the reverse (plus noise)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 100, 4000)
    low = users < 50
    noise = rng.normal(0, 0.1, (2, len(users)))
    return {"a": _result(np.where(low, 2.0, 1.0) + noise[0], users),
            "b": _result(np.where(low, 1.0, 2.0) + noise[1], users)}  # fmt: skip


def test_the_oracle_picks_per_type_and_beats_every_single_baseline() -> None:
    types = (np.arange(100) >= 50).astype(np.int64)
    tuning, evaluation = _two_baselines(0), _two_baselines(1)
    oracle = oracle_adaptive(tuning, evaluation, types)
    assert oracle.choice == {0: "a", 1: "b"}
    assert oracle.returns.mean() == pytest.approx(2.0, abs=0.01)
    assert all(oracle.returns.mean() > r.returns.mean() + 0.4 for r in evaluation.values())
    one_type = oracle_adaptive(tuning, evaluation, np.zeros(100, dtype=np.int64))
    best = max(evaluation, key=lambda n: tuning[n].returns.mean())
    np.testing.assert_array_equal(one_type.returns, evaluation[best].returns)


def test_the_oracle_refuses_unpaired_sessions() -> None:
    tuning, evaluation = _two_baselines(0), _two_baselines(1)
    evaluation["b"] = replace(evaluation["b"], users=evaluation["b"].users[::-1].copy())
    with pytest.raises(ConfigError, match="same users"):
        oracle_adaptive(tuning, evaluation, np.zeros(100, dtype=np.int64))


def test_user_types_split_by_true_variety_and_patience() -> None:
    world = ShopWorld(
        replace(SMALL_SHOP, n_users=900, variety=UserVariety(variety_spread=0.5, patience_spread=0.5))
    )
    cells = user_types(world)
    assert set(np.unique(cells)) == set(range(9))
    assert np.bincount(cells).min() > 50
    homogeneous = ShopWorld(replace(SMALL_SHOP, variety=UserVariety(enabled=False)))
    assert not user_types(homogeneous).any()


def test_captured_share() -> None:
    assert captured_share(11.0, 10.0, 12.0) == pytest.approx(0.5)
    assert captured_share(11.0, 10.0, 10.0) is None
