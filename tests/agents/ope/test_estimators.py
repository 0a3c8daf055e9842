"""agents.ope.estimators: hand-computed values, known answers, invariants and invalid input."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.ope.estimators import (
    DM,
    DR,
    IIPS,
    IPS,
    PBMDR,
    PBMIPS,
    PDIS,
    RIPS,
    SNDR,
    SNIPS,
    WDR,
    WPDIS,
    CascadeDR,
    IndependentDR,
    SlateIPS,
    SwitchDR,
    effective_sample_size,
    estimate,
)
from agents.ope.inputs import BanditInputs, SessionInputs, SlateInputs, bootstrap_index
from simulators.core.errors import DataError

REWARD = np.array([1.0, 0.0, 1.0, 0.0])
PSCORE = np.array([0.5, 0.25, 0.2, 0.8])
TARGET = np.array([0.25, 0.5, 0.4, 0.4])  # w = [0.5, 2, 2, 0.5]
Q_LOGGED = np.array([0.6, 0.2, 0.5, 0.1])
Q_TARGET = np.array([0.4, 0.3, 0.6, 0.2])


def _bandit(**changes: Any) -> BanditInputs:
    return BanditInputs(**{"reward": REWARD, "pscore": PSCORE, "target_prob": TARGET,
                           "q_logged": Q_LOGGED, "q_target": Q_TARGET, **changes})  # fmt: skip


def test_bandit_estimators_match_hand_computed_values() -> None:
    data = _bandit()
    assert IPS().value(data) == pytest.approx((0.5 + 2.0) / 4)
    assert SNIPS().value(data) == pytest.approx(2.5 / 5.0)
    assert IPS(clip=1.0).value(data) == pytest.approx((0.5 + 1.0) / 4)
    assert DM().value(data) == pytest.approx(1.5 / 4)
    corrections = np.array([0.5 * 0.4, 2 * -0.2, 2 * 0.5, 0.5 * -0.1])  # w (r - q)
    assert DR().value(data) == pytest.approx(1.5 / 4 + corrections.sum() / 4)
    assert SNDR().value(data) == pytest.approx(1.5 / 4 + corrections.sum() / 5.0)
    assert SwitchDR(tau=1.0).value(data) == pytest.approx(1.5 / 4 + (0.2 - 0.05) / 4)
    assert effective_sample_size(data.w) == pytest.approx(5.0**2 / 8.5)


def test_switch_dr_is_dr_at_infinity_and_dm_at_zero() -> None:
    data = _bandit()
    assert SwitchDR(tau=np.inf).value(data) == pytest.approx(DR().value(data))
    assert SwitchDR(tau=0.0).value(data) == pytest.approx(DM().value(data))


def test_on_policy_ips_is_the_sample_mean_exactly() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, 500)
    reward = rng.binomial(1, 0.3, 500).astype(float)
    data = BanditInputs(reward, p, p)
    assert IPS().value(data) == reward.mean()
    assert SNIPS().value(data) == pytest.approx(reward.mean())


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_snips_stays_within_the_reward_range(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    reward = rng.normal(size=n)
    data = BanditInputs(reward, rng.uniform(0.01, 1, n), rng.uniform(1e-3, 1, n))
    assert reward.min() - 1e-9 <= SNIPS().value(data) <= reward.max() + 1e-9


def test_from_action_dist_reads_the_target_and_the_model() -> None:
    dist = np.array([[0.2, 0.8], [0.5, 0.5]])
    q = np.array([[1.0, 0.0], [0.5, 1.5]])
    data = BanditInputs.from_action_dist(
        np.array([1.0, 0.0]), np.array([1, 0]), np.array([0.5, 0.5]), dist, q
    )
    np.testing.assert_allclose(data.target_prob, [0.8, 0.5])
    np.testing.assert_allclose(data.q_logged, [0.0, 0.5])
    np.testing.assert_allclose(data.q_target, [0.2, 1.0])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _bandit(pscore=PSCORE[:3]), "pscore must have shape"),
        (lambda: _bandit(pscore=np.array([0.5, 0.0, 0.2, 0.8])), r"pscore must lie in \(0, 1\]"),
        (lambda: _bandit(pscore=np.array([0.5, -0.1, 0.2, 0.8])), r"pscore must lie in \(0, 1\]"),
        (lambda: _bandit(pscore=np.array([0.5, 1.5, 0.2, 0.8])), r"pscore must lie in \(0, 1\]"),
        (lambda: _bandit(reward=np.array([1.0, np.nan, 0.0, 1.0])), "reward holds NaN"),
        (lambda: _bandit(target_prob=np.array([0.2, 1.2, 0.1, 0.1])), r"target_prob must lie in \[0, 1\]"),
        (lambda: _bandit(q_logged=np.ones(3)), "q_logged must have shape"),
        (lambda: BanditInputs.from_action_dist(REWARD, np.array([0, 1, 0, 1]), PSCORE, np.full((4, 2), 0.4)),
         "rows must sum to 1"),
        (lambda: BanditInputs.from_action_dist(REWARD, np.array([0, 1, 0, 2]), PSCORE, np.full((4, 2), 0.5)),
         "actions must be integers"),
        (lambda: BanditInputs.from_action_dist(REWARD, np.array([0, 1, 0]), PSCORE[:3], np.full((4, 2), 0.5)),
         "action_dist must be"),
        (lambda: DR().value(_bandit(q_logged=None)), "needs a reward model"),
        (lambda: IPS(clip=0.0), "clip must be > 0"),
        (lambda: SwitchDR(tau=-1.0), "tau must be >= 0"),
        (lambda: SlateInputs(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 3)), np.ones((2, 3))),
         "target_prefix must have shape"),
        (lambda: SessionInputs(np.ones((2, 3)), np.ones((2, 3)), -np.ones((2, 3))), "step_ratio must be >= 0"),
        (lambda: estimate(IPS(), _bandit(), n_bootstrap=-1), "bootstrap"),
        (lambda: _bandit(cluster=np.array([0.5, 1.0, 2.0, 3.0])), "cluster must be"),
        (lambda: IndependentDR().value(replace(_slates(), q_target=None)), "needs a reward model"),
        (lambda: PBMDR().value(replace(_slates(), q_logged=None)), "needs a reward model"),
        (lambda: PBMIPS().value(replace(_slates(), pscore_exposure=None, target_exposure=None)),
         "needs the exposures"),
        (lambda: replace(_slates(), target_exposure=None), "come together"),
        (lambda: replace(_slates(), pscore_exposure=np.zeros((2, 2))), "pscore_exposure must be > 0"),
        (lambda: replace(_slates(), target_exposure=-np.ones((2, 2))), "target_exposure must be >= 0"),
        (lambda: replace(_slates(), target_exposure=np.ones((2, 3))), "target_exposure must have shape"),
    ],
)  # fmt: skip
def test_invalid_inputs_raise_a_clear_error(make: Any, message: str) -> None:
    with pytest.raises(DataError, match=message):
        make()


def _slates() -> SlateInputs:
    reward = np.array([[1.0, 0.0], [0.0, 1.0]])
    pscore_prefix = np.array([[0.5, 0.25], [0.5, 0.1]])
    target_prefix = np.array([[0.25, 0.25], [1.0, 0.2]])  # w = [[.5, 1], [2, 2]]
    pscore_marginal = np.array([[0.5, 0.5], [0.5, 0.2]])
    target_marginal = np.array([[0.25, 0.5], [1.0, 0.1]])  # w = [[.5, 1], [2, .5]]
    q_logged = np.array([[0.4, 0.2], [0.3, 0.5]])
    q_next = np.array([[0.3, 0.1], [0.6, 0.4]])
    q_target = np.array([[0.2, 0.3], [0.5, 0.1]])
    pscore_exposure = np.array([[0.8, 0.5], [0.4, 0.25]])
    target_exposure = np.array([[0.4, 1.0], [1.2, 0.25]])  # ratio = [[.5, 2], [3, 1]]
    return SlateInputs(
        reward, pscore_prefix, target_prefix, pscore_marginal, target_marginal, q_logged, q_next, q_target,
        None, pscore_exposure, target_exposure,
    )  # fmt: skip


def test_slate_estimators_match_hand_computed_values() -> None:
    data = _slates()
    assert IIPS().value(data) == pytest.approx((0.5 * 1 + 0.5 * 1) / 2)
    assert RIPS().value(data) == pytest.approx((0.5 * 1 + 2 * 1) / 2)
    assert SlateIPS().value(data) == pytest.approx((1 * 1 + 2 * 1) / 2)
    first = 0.5 * (1 - 0.4) + 1 * 0.3 + 1 * (0 - 0.2) + 0.5 * 0.1
    second = 2 * (0 - 0.3) + 1 * 0.6 + 2 * (1 - 0.5) + 2 * 0.4
    assert CascadeDR().value(data) == pytest.approx((first + second) / 2)
    first = 0.2 + 0.5 * (1 - 0.4) + 0.3 + 1 * (0 - 0.2)
    second = 0.5 + 2 * (0 - 0.3) + 0.1 + 0.5 * (1 - 0.5)
    assert IndependentDR().value(data) == pytest.approx((first + second) / 2)
    assert PBMIPS().value(data) == pytest.approx((0.5 * 1 + 1 * 1) / 2)
    first = 0.2 + 0.5 * (1 - 0.4) + 0.3 + 2 * (0 - 0.2)
    second = 0.5 + 3 * (0 - 0.3) + 0.1 + 1 * (1 - 0.5)
    assert PBMDR().value(data) == pytest.approx((first + second) / 2)


def test_cluster_bootstrap_draws_whole_sessions() -> None:
    cluster = np.array([7, 3, 7, 9, 3, 7, 5])
    for seed in range(20):
        rows = bootstrap_index(len(cluster), cluster, np.random.default_rng(seed))
        drawn = cluster[rows]
        for session in np.unique(drawn):  # a drawn session comes with all its rows, in whole copies
            copies = np.sum(drawn == session) / np.sum(cluster == session)
            assert copies == int(copies) and copies >= 1
        assert (
            sum(np.sum(drawn == c) / np.sum(cluster == c) for c in np.unique(drawn)) == 4
        )  # 4 sessions drawn
    np.testing.assert_array_equal(
        bootstrap_index(7, cluster, np.random.default_rng(1)),
        bootstrap_index(7, cluster, np.random.default_rng(1)),
    )


def test_cascade_dr_with_a_perfect_model_and_on_policy_is_the_mean() -> None:
    rng = np.random.default_rng(1)
    reward = rng.binomial(1, 0.3, (300, 3)).astype(float)
    p = rng.uniform(0.1, 1, (300, 3))
    zero = np.zeros_like(reward)
    data = SlateInputs(reward, p, p, p, p, zero, zero, zero, None, p, p)
    mean = reward.sum(axis=1).mean()
    for estimator in (IIPS(), RIPS(), SlateIPS(), CascadeDR(), IndependentDR(), PBMIPS(), PBMDR()):
        assert estimator.value(data) == pytest.approx(mean)


def test_session_estimators_hand_computed_and_on_policy() -> None:
    reward = np.array([[1.0, 1.0], [0.0, 2.0]])
    mask = np.ones((2, 2))
    ratio = np.array([[2.0, 0.5], [0.5, 2.0]])  # rho = [[2, 1], [0.5, 1]]
    data = SessionInputs(reward, mask, ratio, np.zeros((2, 2)), np.zeros((2, 2)))
    assert PDIS().value(data) == pytest.approx(((2 * 1 + 1 * 1) + (0 + 1 * 2)) / 2)
    assert WPDIS().value(data) == pytest.approx(2 / 2.5 + (1 + 2) / 2)
    assert WDR().value(data) == pytest.approx(WPDIS().value(data))  # zero model: WDR = WPDIS
    on_policy = SessionInputs(reward, np.array([[1.0, 1.0], [1.0, 0.0]]), np.ones((2, 2)))
    assert PDIS().value(on_policy) == pytest.approx((2 + 0) / 2)


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(2)
    data = BanditInputs(
        rng.binomial(1, 0.4, 400).astype(float), np.full(400, 0.5), rng.uniform(0.2, 0.8, 400)
    )
    first = estimate(IPS(), data, 50, np.random.default_rng(0))
    second = estimate(IPS(), data, 50, np.random.default_rng(0))
    assert first == second
    assert first.ci95[0] < first.value < first.ci95[1]
    assert 0 < first.ess <= 400


@pytest.mark.slow
def test_bootstrap_intervals_cover_the_truth_95_percent_of_the_time() -> None:
    """IPS on 1,000 logs of a bandit with a known value, 30 resamples each (the benchmark's
    budget). Percentile intervals cover about 0.91 here; the normal interval about 0.94."""
    pscores = np.array([0.1, 0.5, 0.9])
    truth = float(np.mean(0.5 / pscores)) * 0.3  # target probability 0.5, click rate 0.3
    covered = 0
    for seed in range(1000):
        rng = np.random.default_rng(seed)
        data = BanditInputs(
            rng.binomial(1, 0.3, 300).astype(float), rng.choice(pscores, 300), np.full(300, 0.5)
        )
        lo, hi = estimate(IPS(), data, 30, rng).ci95
        covered += lo <= truth <= hi
    assert 0.925 <= covered / 1000 <= 0.975
