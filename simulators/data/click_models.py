"""Click models estimated from logged slates: position bias and relevance by EM on the
position-based model. Part of the data layer (numpy only)."""

from __future__ import annotations

import numpy as np

from simulators.core.errors import ConfigError
from simulators.data.steps import StepTable


def position_bias_em(steps: StepTable, n_items: int, iterations: int = 50) -> np.ndarray:
    """Examination probability per slot, ``theta`` of :func:`pbm_em` (``theta_1 = 1``), ``(K,)``."""
    return pbm_em(steps, n_items, iterations=iterations)[0]


SEGMENT_PRIOR = 20.0
"""Pseudo-impressions pulling a segment's relevance of an item toward the item's pooled one."""


def pbm_em(
    steps: StepTable,
    n_items: int,
    segment: np.ndarray | None = None,
    prior: float = SEGMENT_PRIOR,
    iterations: int = 50,
) -> tuple[np.ndarray, np.ndarray]:
    """Examination per slot and relevance per (user segment, item) by EM on the position-based model.

    ``P(click | user u, item i, slot k) = theta_k * gamma_{s(u), i}``. E-step: for a non-click,
    the chances it was unexamined or irrelevant; M-step: averages, where each segment's relevance
    of an item is shrunk toward the item's pooled relevance, ``gamma_si = (sum of P(relevant) +
    prior * gamma_i) / (impressions_si + prior)`` (empirical Bayes for sparse cells; with one
    segment it is the pooled average). Item relevance absorbs which items a logging policy tends
    to place high, so ``theta`` is not confounded by it (Wang et al., "Position Bias Estimation
    for Unbiased Learning to Rank", WSDM 2018).

    The maximum-likelihood fit does not match the clicks per slot when users within a segment
    differ (the top slot's predicted clicks fall short, and ``theta`` comes out flatter than
    the truth); so each ``theta_k`` is finally rescaled to predict exactly the logged clicks at
    slot k, which also removes the direct method's level bias.

    ``segment``: ``(n_users,)`` codes from 0 (default: every user in one segment).
    Returns ``(theta (K,), gamma (n_segments, n_items))`` scaled so that ``theta_1 = 1``; an item
    never shown gets the floor relevance 1e-4.
    """
    if prior <= 0:
        raise ConfigError(f"the segment prior must be > 0 pseudo-impressions, got {prior}")
    if segment is None:
        segment = np.zeros(int(steps.user.max(initial=0)) + 1, dtype=np.int64)
    shown = steps.slot_mask
    n_slots, n_segments = steps.items.shape[1], int(segment.max(initial=0)) + 1
    slot = np.broadcast_to(np.arange(n_slots), steps.items.shape)[shown]
    item = steps.items[shown]
    cell = np.broadcast_to(segment[steps.user][:, None], steps.items.shape)[shown] * n_items + item
    click = steps.clicks[shown].astype(np.float64)
    slot_count = np.maximum(np.bincount(slot, minlength=n_slots), 1)
    item_count = np.maximum(np.bincount(item, minlength=n_items), 1)
    cell_count = np.bincount(cell, minlength=n_segments * n_items)
    theta = np.full(n_slots, 0.5)
    gamma = np.full(n_segments * n_items, max(click.mean(), 1e-3) * 2)
    for _ in range(iterations):
        t, g = theta[slot], gamma[cell]
        denominator = np.maximum(1 - t * g, 1e-9)
        examined = click + (1 - click) * t * (1 - g) / denominator
        relevant = click + (1 - click) * (1 - t) * g / denominator
        theta = np.clip(np.bincount(slot, weights=examined, minlength=n_slots) / slot_count, 1e-4, 1.0)
        pooled = np.bincount(item, weights=relevant, minlength=n_items) / item_count
        by_cell = np.bincount(cell, weights=relevant, minlength=n_segments * n_items)
        gamma = (by_cell + prior * np.tile(pooled, n_segments)) / (cell_count + prior)
        gamma = np.clip(gamma, 1e-4, 1 - 1e-4)
    predicted = np.bincount(slot, weights=theta[slot] * gamma[cell], minlength=n_slots)
    clicked = np.bincount(slot, weights=click, minlength=n_slots)
    theta = theta * np.where(predicted > 0, clicked / np.maximum(predicted, 1e-12), 1.0)
    return theta / theta[0], (gamma * theta[0]).reshape(n_segments, n_items)
