"""Plackett-Luce slates: probabilities against enumeration, samplers against the probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.data.plackett_luce import (
    PlackettLuceSlates,
    gumbel_order,
    mixed_weights,
    prefix_probabilities,
    sample_without_replacement,
    slate_probability,
    softmax,
)


def enumerate_slates(p: np.ndarray, k: int) -> dict[tuple[int, ...], float]:
    """Every ordered slate of ``k`` distinct items and its probability, by the chain rule."""
    out = {}
    for slate in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for item in slate:
            prob *= p[item] / left
            left -= p[item]
        out[slate] = prob
    return out


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.05, 10.0), min_size=3, max_size=6), st.integers(1, 3))
def test_slate_probabilities_match_enumeration_and_sum_to_one(weights: list[float], k: int) -> None:
    p = np.asarray(weights) / np.sum(weights)
    table = enumerate_slates(p, k)
    slates = np.array(list(table))
    expected = np.array(list(table.values()))
    np.testing.assert_allclose(slate_probability(p[slates]), expected, rtol=1e-12)
    np.testing.assert_allclose(prefix_probabilities(p[slates])[:, -1], expected, rtol=1e-12)
    assert np.isclose(slate_probability(p[slates]).sum(), 1.0)
    first = prefix_probabilities(p[slates])[:, 0]
    np.testing.assert_allclose(first, p[slates[:, 0]], rtol=1e-12)


def _frequencies(slates: np.ndarray) -> dict[tuple[int, ...], float]:
    keys, counts = np.unique(slates, axis=0, return_counts=True)
    return {tuple(int(x) for x in key): count / len(slates) for key, count in zip(keys, counts, strict=True)}


@pytest.mark.parametrize("sampler", ["sequential", "gumbel"])
def test_samplers_draw_slates_with_their_probabilities(sampler: str) -> None:
    rng = np.random.default_rng(0)
    logits = np.log(np.array([0.4, 0.25, 0.15, 0.12, 0.08]))
    p = softmax(logits)
    n, k = 200_000, 3
    if sampler == "sequential":
        slates = sample_without_replacement(p, k, rng, np.zeros(n, dtype=np.int64))
    else:
        slates = gumbel_order(np.broadcast_to(logits, (n, len(p))), rng)[:, :k]
    expected = enumerate_slates(p, k)
    seen = _frequencies(slates)
    for slate, probability in expected.items():
        se = np.sqrt(probability * (1 - probability) / n)
        assert abs(seen.get(slate, 0.0) - probability) < 5 * se + 1e-9, (slate, seen.get(slate), probability)


def test_rows_sample_their_own_weights_and_never_zero_weight_items() -> None:
    rng = np.random.default_rng(1)
    weights = np.array([[1.0, 1.0, 0.0, 2.0], [0.0, 3.0, 1.0, 0.0]])
    rows = np.repeat([0, 1], 20_000)
    slates = sample_without_replacement(weights, 2, rng, rows)
    assert not np.isin(slates[rows == 0], [2]).any() and not np.isin(slates[rows == 1], [0, 3]).any()
    assert (slates[:, 0] != slates[:, 1]).all()
    first = np.bincount(slates[rows == 0, 0], minlength=4) / 20_000
    np.testing.assert_allclose(first, [0.25, 0.25, 0.0, 0.5], atol=0.02)


def test_context_free_slates_report_the_probability_they_sample() -> None:
    policy = PlackettLuceSlates(mixed_weights(np.array([0.5, 0.3, 0.1, 0.1]), 1.0, 0.2), 2)
    assert np.isclose(policy.weights.sum(), 1.0) and (policy.weights > 0).all()
    slates = policy.sample(100_000, np.random.default_rng(2))
    seen = _frequencies(slates)
    for slate, probability in enumerate_slates(policy.weights, 2).items():
        assert abs(seen.get(slate, 0.0) - probability) < 0.01
        np.testing.assert_allclose(policy.slate_probability(np.array([slate])), [probability], rtol=1e-12)


def test_the_same_seed_draws_the_same_slates() -> None:
    p = softmax(np.linspace(0, 2, 50))
    a = sample_without_replacement(p, 5, np.random.default_rng(3), np.zeros(100, dtype=np.int64))
    b = sample_without_replacement(p, 5, np.random.default_rng(3), np.zeros(100, dtype=np.int64))
    np.testing.assert_array_equal(a, b)
