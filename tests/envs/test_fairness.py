"""envs.fairness: the exposure ledger, its penalty, shares and merit target, and the reward it shapes."""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import FEATURES
from envs.fairness import ExposureLedger, position_weights
from envs.ranking import RankingEnv
from simulators.core.errors import ConfigError


def test_reward_differs_by_exactly_lambda_times_penalty() -> None:
    plain, fair = RankingEnv(fairness_lambda=0.0), RankingEnv(fairness_lambda=2.5)
    obs, _ = plain.reset(seed=9)
    fair.reset(seed=9)
    saw_penalty = False
    for _ in range(40):  # protected items ranked last: their exposure falls short of the target
        protected = obs["candidate_features"][:, FEATURES.index("protected")]
        action = (np.linspace(0.5, -0.5, 50) - protected).astype(np.float32)
        obs, r0, t0, u0, i0 = plain.step(action)
        _, r1, _, _, i1 = fair.step(action)
        assert i0["engagement"] == i1["engagement"] == r0
        assert r0 - r1 == pytest.approx(2.5 * i1["fairness_penalty"], abs=1e-12)
        saw_penalty |= i1["fairness_penalty"] != 0
        if t0 or u0:
            obs, _ = plain.reset()
            fair.reset()
    assert saw_penalty


def test_ledger_spans_sessions_and_a_seed_clears_it() -> None:
    env = RankingEnv()
    env.reset(seed=1)
    action = np.zeros(50, dtype=np.float32)
    for _ in range(3):
        env.step(action)
    exposure = env.core.ledger.provider_exposure.sum()
    env.reset()
    assert env.core.ledger.provider_exposure.sum() == exposure
    np.testing.assert_allclose(env.core.ledger.shares().sum(), 1.0)
    env.reset(seed=1)
    assert env.core.ledger.provider_exposure.sum() == 0


def test_ledger_penalty_and_shares() -> None:
    ledger = ExposureLedger(n_rows=1, n_items=4, n_user_groups=2, target_share=0.5)
    rows = np.array([0])
    protected, tail = np.array([False, False, True, True]), np.zeros(4, dtype=bool)
    merit_total, merit_protected = np.array([4.0]), np.array([2.0])
    none_protected = ledger.record(rows, np.array([[0, 1]]), protected, tail, merit_total, merit_protected)
    assert none_protected[0] == pytest.approx(0.5)  # half of the step's exposure was owed and went missing
    all_protected = ledger.record(rows, np.array([[2, 3]]), protected, tail, merit_total, merit_protected)
    assert all_protected[0] == pytest.approx(-0.5)  # and this slate closes that gap
    np.testing.assert_allclose(ledger.shares().sum(), 1.0)
    np.testing.assert_allclose(ledger.shares()[1], 0.5)
    w = position_weights(2)
    exposure = np.sort([w[0], w[1], w[0], w[1]])
    expected_gini = ((2 * np.arange(1, 5) - 5) @ exposure) / (4 * exposure.sum())
    assert ledger.metrics()["exposure_gini"] == pytest.approx(expected_gini)
    with pytest.raises(ConfigError):
        ExposureLedger(1, 4, 1, target_share=1.5)


def test_merit_target_follows_the_relevance_offered() -> None:
    ledger = ExposureLedger(n_rows=1, n_items=4, n_user_groups=1)
    protected, tail = np.array([False, False, True, True]), np.zeros(4, dtype=bool)
    ledger.record(np.array([0]), np.array([[0, 1]]), protected, tail, np.array([4.0]), np.array([1.0]))
    assert ledger.target(np.array([0]))[0] == pytest.approx(0.25)


def test_user_side_penalty_is_the_change_in_the_group_gap_times_sessions() -> None:
    ledger = ExposureLedger(1, 3, n_user_groups=2)
    first = ledger.record_session(np.array([0]), np.array([0]), np.array([4.0]))
    assert first.tolist() == [0.0]  # one group with sessions: no gap yet
    second = ledger.record_session(np.array([0]), np.array([1]), np.array([1.0]))
    assert second.tolist() == [
        0.0
    ]  # a group's first session only starts its mean (gap 0 -> 3 is not charged)
    third = ledger.record_session(np.array([0]), np.array([0]), np.array([2.0]))
    assert third.tolist() == [
        pytest.approx((2.0 - 3.0) * 3)
    ]  # group 0's mean 4 -> 3: gap 3 -> 2, three sessions
    ledger.record_session(np.array([0]), np.array([0]), np.array([6.0]))  # group 0 back to mean 4, gap 3
    closing = ledger.record_session(np.array([0, 0]), np.array([1, 1]), np.array([4.0, 4.0]))
    # each against the same before-state (gap 3, five sessions after): group 1's mean 2.5 -> gap 1.5
    assert closing.tolist() == [pytest.approx((1.5 - 3.0) * 5)] * 2
    assert ledger.metrics()["user_group_gap"] == pytest.approx(4.0 - 3.0)


def test_user_side_reward_differs_by_exactly_its_lambda_times_penalty() -> None:
    plain, fair = RankingEnv(), RankingEnv(user_fairness_lambda=1.5)
    plain.reset(seed=4)
    fair.reset(seed=4)
    ended = 0
    rng = np.random.default_rng(0)
    for _ in range(300):
        action = rng.uniform(-1, 1, 50).astype(np.float32)
        _, r0, t0, u0, i0 = plain.step(action)
        _, r1, _, _, i1 = fair.step(action)
        assert i0["user_fairness_penalty"] == i1["user_fairness_penalty"]
        assert r0 - r1 == pytest.approx(1.5 * i1["user_fairness_penalty"], abs=1e-12)
        if t0 or u0:
            ended += 1
            plain.reset()
            fair.reset()
    assert ended >= 5


def test_fairness_penalties_need_their_groups() -> None:
    with pytest.raises(ConfigError, match="user_fairness_lambda must be"):
        RankingEnv(user_fairness_lambda=-1.0)
