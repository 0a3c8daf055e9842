"""Plackett-Luce slates: sampling without replacement and the probability of a slate.

The one implementation that the shop's logging policy, the fitted simulator's report, the OPE
target policies and the static baselines share: slate propensities are what off-policy
evaluation rests on. Part of the data layer (numpy only).

A slate ``s_1..s_K`` drawn slot by slot without replacement from item probabilities ``p``
(summing to 1) has ``P(s_1..s_k) = prod_{j<=k} p(s_j) / (1 - sum_{l<j} p(s_l))``
(Plackett 1975; Luce 1959). With ``p = softmax(logits)`` the same distribution is sampled by
perturbing the logits with Gumbel noise and keeping the top K (the Gumbel-top-k trick, Kool et
al., ICML 2019).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis: ``exp(z - max z) / sum exp(z - max z)``."""
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def mixed_weights(prior: np.ndarray, power: float, exploration: float) -> np.ndarray:
    """``(1 - eps) * softmax(power * log prior) + eps / M``: a popularity-tilted item
    distribution with uniform exploration ``eps`` (every item keeps a positive probability)."""
    logits = power * np.log(prior)
    soft = np.exp(logits - logits.max())
    soft /= soft.sum()
    return (1.0 - exploration) * soft + exploration / len(soft)


def prefix_probabilities(p_at_slate: np.ndarray) -> np.ndarray:
    """``(n, K)`` probability of each slate's first k items from ``p_at_slate (n, K)``, the
    first-slot probability ``p(s_k)`` of the item in each slot."""
    taken = np.cumsum(p_at_slate, axis=1) - p_at_slate
    return np.cumprod(p_at_slate / np.maximum(1.0 - taken, 1e-300), axis=1)


def slate_probability(p_at_slate: np.ndarray) -> np.ndarray:
    """``(n,)`` probability of each whole slate (the last column of :func:`prefix_probabilities`,
    by one product: the arithmetic that wrote the shop's logged propensities, kept bit for bit)."""
    taken = np.cumsum(p_at_slate, axis=1) - p_at_slate
    return np.prod(p_at_slate / np.maximum(1.0 - taken, 1e-300), axis=1)


def sample_without_replacement(
    weights: np.ndarray, k: int, rng: np.random.Generator, rows: np.ndarray | None = None
) -> np.ndarray:
    """``(m, k)`` slates of item indices, slot by slot without replacement (a repeat is redrawn).

    ``weights (R, n)``: non-negative item weights per row (need not sum to 1; an item of weight
    0 is never drawn); ``rows (m,)``: the row each slate draws from (default ``arange(R)``).
    Each slot draws one uniform per slate, then redraws for the slates that repeated an item;
    no ``(m, n)`` noise array, so it suits large catalogs (:func:`gumbel_order` suits small ones).
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_rows, n = weights.shape
    rows = np.arange(n_rows) if rows is None else np.asarray(rows, dtype=np.int64)
    cumulative = np.cumsum(weights, axis=1)
    total = cumulative[:, -1]
    base = np.concatenate([[0.0], np.cumsum(total)[:-1]])  # rows laid end to end, disjoint
    flat = (cumulative + base[:, None]).ravel() if n_rows > 1 else cumulative[0]
    out = np.empty((len(rows), k), dtype=np.int64)
    for slot in range(k):
        todo = np.arange(len(rows))
        while len(todo):
            r = rows[todo]
            values = rng.random(len(todo)) * total[r]
            if n_rows > 1:
                values = values + base[r]
            draws = np.minimum(np.searchsorted(flat, values) - r * n, n - 1)
            out[todo, slot] = draws
            repeated = (out[todo, :slot] == draws[:, None]).any(axis=1) | (weights[r, draws] == 0)
            todo = todo[repeated]
    return out


def gumbel_order(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``logits (..., S)`` sorted by ``logits + Gumbel noise``, best first: the first
    K of each row are a Plackett-Luce slate of ``softmax(logits)`` (one noise array per call)."""
    keys = logits + rng.gumbel(size=logits.shape)
    return np.argsort(-keys, axis=-1, kind="stable")


@dataclass(frozen=True)
class PlackettLuceSlates:
    """Context-free Plackett-Luce slates of ``slate_size`` items over one item distribution."""

    weights: np.ndarray
    """``(n_items,)`` first-slot probabilities, summing to 1."""
    slate_size: int
    """Items per slate."""

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` slates: ``(n, K)`` int64 item indices, distinct within a slate."""
        return sample_without_replacement(self.weights, self.slate_size, rng, np.zeros(n, dtype=np.int64))

    def slate_probability(self, slates: np.ndarray) -> np.ndarray:
        """Probability of each slate: ``(n, K)`` -> ``(n,)`` float64."""
        return slate_probability(self.weights[slates])


UtilityFn = Callable[[np.ndarray, int], np.ndarray]
"""``(taken (B, N) bool, slot k) -> (B, N)`` utilities of the candidates for slot ``k`` given the
ones already taken; ``-inf`` marks a candidate that may not fill the slot."""


def sequential_slates(
    utility: UtilityFn, n: tuple[int, int], k: int, temperature: float, rng: np.random.Generator | None
) -> np.ndarray:
    """``(B, k)`` slates of candidate positions chosen slot by slot from state-dependent utilities:
    at ``temperature`` 0 the best eligible candidate (ties: the lower position), above it a draw
    from ``softmax(u / T)`` over the eligible ones (fresh Gumbel noise per slot). ``n = (B, N)``.
    With a utility that ignores ``taken`` this is Plackett-Luce; with one that penalises what
    was taken it is a sequential re-ranker (one item per topic, MMR)."""
    return sequential_sample(utility, n, k, temperature, rng)[0]


def sequential_sample(
    utility: UtilityFn, n: tuple[int, int], k: int, temperature: float, rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sequential_slates`' slates ``(B, k)`` and the probability ``(B, k)`` with which each
    slot's choice was made given the slots above it (1 at ``temperature`` 0); their product over
    the first ``j`` slots is the prefix's probability, over all ``k`` the slate's
    (:func:`sequential_probability`)."""
    batch = n[0]
    taken = np.zeros(n, dtype=bool)
    out = np.empty((batch, k), dtype=np.int64)
    chance = np.ones((batch, k))
    rows = np.arange(batch)
    for slot in range(k):
        u = np.where(taken, -np.inf, utility(taken, slot))
        if temperature > 0:
            assert rng is not None, "sampling needs a generator"
            logits = np.where(np.isfinite(u), u / temperature, -np.inf)
            out[:, slot] = np.argmax(logits + rng.gumbel(size=u.shape), axis=1)
            chance[:, slot] = softmax(logits)[rows, out[:, slot]]
        else:
            out[:, slot] = np.argmax(u, axis=1)
        taken[rows, out[:, slot]] = True
    return out, chance


def sequential_probability(
    utility: UtilityFn, slates: np.ndarray, n_candidates: int, temperature: float
) -> np.ndarray:
    """``(B,)`` probability that :func:`sequential_slates` chooses ``slates (B, k)``:
    ``prod_k softmax(u_k / T)[s_k]`` over the eligible candidates, or at ``T = 0`` 1 for the
    greedy slate and 0 otherwise."""
    batch, k = slates.shape
    taken = np.zeros((batch, n_candidates), dtype=bool)
    rows = np.arange(batch)
    probability = np.ones(batch)
    for slot in range(k):
        u = np.where(taken, -np.inf, utility(taken, slot))
        chosen = slates[:, slot]
        if temperature > 0:
            probability *= softmax(np.where(np.isfinite(u), u / temperature, -np.inf))[rows, chosen]
        else:
            probability *= np.argmax(u, axis=1) == chosen
        taken[rows, chosen] = True
    return probability
