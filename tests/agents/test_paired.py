"""Paired comparisons: the mean of per-session differences with its interval, the CUPED
adjustment that keeps the mean and removes the part of the spread the covariates explain, and the
refusal to pair other sessions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.evaluation.paired import paired_difference, share_of_ceiling
from agents.evaluation.sessions import EvaluationResult
from simulators.core.errors import ConfigError


def result(returns: np.ndarray, users: np.ndarray, keys: np.ndarray | None = None) -> EvaluationResult:
    zeros = np.zeros(len(returns))
    return EvaluationResult(returns, zeros, zeros, zeros + 1, zeros, {}, 5, users, keys)


def test_the_paired_interval_is_the_differences_and_far_tighter_than_the_unpaired() -> None:
    rng = np.random.default_rng(0)
    users = np.arange(2_000)
    session = rng.normal(30.0, 20.0, 2_000)  # what the session brings, for both policies
    a, b = session + 0.3 + rng.normal(0, 1, 2_000), session + rng.normal(0, 1, 2_000)
    diff = paired_difference(result(a, users), result(b, users))
    assert diff.mean == pytest.approx(float((a - b).mean()))
    half = 1.96 * float((a - b).std(ddof=1)) / np.sqrt(2_000)
    assert diff.ci95 == pytest.approx((diff.mean - half, diff.mean + half))
    assert diff.verdict == "above 0" and diff.variance_reduction is None
    unpaired_half = 1.96 * np.hypot(a.std(ddof=1), b.std(ddof=1)) / np.sqrt(2_000)
    assert unpaired_half > 10 * half  # the sessions' own spread cancels


def test_cuped_keeps_the_mean_and_removes_the_explained_spread() -> None:
    rng = np.random.default_rng(1)
    users = np.arange(4_000)
    x = rng.normal(size=(4_000, 2))
    effect = 0.5 + 1.5 * x[:, 0]  # the gain depends on what was known before the session
    a = effect + rng.normal(0, 1, 4_000)
    plain = paired_difference(result(a, users), result(np.zeros(4_000), users))
    adjusted = paired_difference(result(a, users), result(np.zeros(4_000), users), covariates=x)
    assert adjusted.mean == pytest.approx(plain.mean)
    assert adjusted.variance_reduction == pytest.approx(1.5**2 / (1.5**2 + 1), abs=0.03)
    assert adjusted.ci95[1] - adjusted.ci95[0] < 0.7 * (plain.ci95[1] - plain.ci95[0])


def test_other_sessions_are_not_paired() -> None:
    values = np.ones(4)
    with pytest.raises(ConfigError, match="same sessions"):
        paired_difference(result(values, np.arange(4)), result(values, np.arange(4) + 1))
    keys = np.arange(4, dtype=np.uint64)
    with pytest.raises(ConfigError, match="same sessions"):
        paired_difference(result(values, np.arange(4), keys), result(values, np.arange(4), keys + 1))


def test_a_share_of_the_ceiling_is_given_only_where_the_ceiling_gains() -> None:
    ceiling = {"mean": 0.8, "ci95": [0.2, 1.4]}
    assert share_of_ceiling({"mean": 0.4, "ci95": [-0.1, 0.9]}, ceiling) == pytest.approx(0.5)
    assert share_of_ceiling({"mean": -0.4, "ci95": [-0.9, 0.1]}, ceiling) == pytest.approx(-0.5)
    assert share_of_ceiling({"mean": 0.4, "ci95": [0.1, 0.7]}, {"mean": 0.8, "ci95": [-0.1, 1.7]}) is None
