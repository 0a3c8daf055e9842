"""Reward models of the DM and DR estimators, cross-fitted on the logs: the position-based
click model per user segment (shop slates) and smoothed click rates per (item, slot) (OBD)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError
from simulators.data.click_models import pbm_em
from simulators.data.steps import StepTable


def user_segments(users: pd.DataFrame) -> np.ndarray:
    """``(n_users,)`` code of each user's combination of categorical attributes (the shop: gender x
    age group); all 0 when there are none."""
    columns = [c for c in users.columns if c != "user_id" and not pd.api.types.is_numeric_dtype(users[c])]
    if not columns:
        return np.zeros(len(users), dtype=np.int64)
    return pd.factorize(users[columns].astype(str).agg("|".join, axis=1), sort=True)[0].astype(np.int64)


@dataclass(frozen=True)
class PBMRewardModel:
    """``q(x, i, k) = theta_k * gamma_{s(x), i}``: the position-based click model with a
    relevance per user segment ``s(x)`` (one segment: the plain PBM), fitted by
    :func:`~simulators.data.click_models.pbm_em` (calibrated per slot)."""

    theta: np.ndarray
    """``(K,)`` examination per slot (``theta_1 = 1``)."""
    gamma: np.ndarray
    """``(n_segments, n_items)`` relevance."""

    @classmethod
    def fit(cls, steps: StepTable, n_items: int, segment: np.ndarray | None = None) -> PBMRewardModel:
        """EM on the steps' clicks; ``segment (n_users,)`` codes (default: one segment)."""
        return cls(*pbm_em(steps, n_items, segment))


def cross_fitted_models(
    steps: StepTable, n_items: int, folds: int, rng: np.random.Generator, segment: np.ndarray | None = None
) -> tuple[np.ndarray, list[PBMRewardModel]]:
    """``(fold of each step, one model per fold trained on the other folds)``; folds split sessions."""
    if folds < 2:
        raise ConfigError(f"cross-fitting needs >= 2 folds, got {folds}")
    session_fold = rng.permutation(steps.n_sessions) % folds
    fold = session_fold[steps.session]
    models = [
        PBMRewardModel.fit(steps.subset_sessions(session_fold != f), n_items, segment) for f in range(folds)
    ]
    return fold, models


def click_rate_model(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, n_items: int, slots: int, strength: float
) -> np.ndarray:  # fmt: skip
    """``(n_items, slots)`` ``q(a, k) = c_k * r_a``: the slot's click rate times the item's
    click ratio ``r_a = (clicks_a + m) / (expected_a + m)``, shrunk toward 1 with ``m = strength``
    expected clicks (empirical Bayes with a Gamma prior)."""
    prior = max(reward.mean(), 1e-6)
    c = (np.bincount(slot, weights=reward, minlength=slots) + 5 * prior) / (
        np.bincount(slot, minlength=slots) + 5
    )
    expected = np.bincount(item, weights=c[slot], minlength=n_items)
    ratio = (np.bincount(item, weights=reward, minlength=n_items) + strength) / (expected + strength)
    return np.clip(ratio[:, None] * c[None, :], 1e-6, 1 - 1e-6)


SHRINKAGE_GRID = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 1e9)
"""Candidate prior strengths of :func:`click_rate_model` (1e9: no item effect)."""


def fit_click_rate_model(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, n_items: int, slots: int, rng: np.random.Generator
) -> np.ndarray:  # fmt: skip
    """:func:`click_rate_model` with the prior strength of least 2-fold held-out log loss."""
    half = rng.permutation(len(item)) % 2
    losses = []
    for strength in SHRINKAGE_GRID:
        loss = 0.0
        for h in (0, 1):
            fit, held = half != h, half == h
            q = click_rate_model(item[fit], slot[fit], reward[fit], n_items, slots, strength)[
                item[held], slot[held]
            ]
            loss -= float(np.sum(reward[held] * np.log(q) + (1 - reward[held]) * np.log(1 - q)))
        losses.append(loss)
    best = SHRINKAGE_GRID[int(np.argmin(losses))]
    return click_rate_model(item, slot, reward, n_items, slots, best)
