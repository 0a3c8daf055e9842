"""agents.baselines: Plackett-Luce baseline policies and their slate probabilities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.policies.baselines import PlackettLucePolicy, make_baseline
from envs.config import FEATURES
from simulators.core.errors import ConfigError


def _features(n: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    features = np.zeros((1, n, len(FEATURES)), dtype=np.float32)
    features[..., FEATURES.index("pctr")] = rng.uniform(0.01, 0.3, n)
    features[..., FEATURES.index("popularity")] = rng.normal(size=n)
    return features


@pytest.mark.parametrize(("name", "temperature"), [("random", 0.0), ("ctr", 0.5), ("popularity", 2.0)])
def test_slate_probabilities_sum_to_one(name: str, temperature: float) -> None:
    policy = make_baseline(name, temperature)
    features = _features()
    slates = np.array(list(itertools.permutations(range(5), 2)))
    total = policy.slate_probability(
        {"candidate_features": np.repeat(features, len(slates), axis=0)}, slates
    ).sum()
    assert total == pytest.approx(1.0)


def test_random_slate_probability_is_the_uniform_one() -> None:
    probability = make_baseline("random").slate_probability(
        {"candidate_features": _features()}, np.array([[3, 1]])
    )
    assert probability[0] == pytest.approx(1 / (5 * 4))


def test_greedy_policy_is_deterministic() -> None:
    policy = make_baseline("ctr")
    features = _features()
    pctr = features[0, :, FEATURES.index("pctr")]
    best = np.argsort(-pctr, kind="stable")[:2]
    assert policy.slate_probability({"candidate_features": features}, best[None, :])[0] == 1.0
    assert policy.slate_probability({"candidate_features": features}, best[::-1][None, :])[0] == 0.0
    scores = policy.act({"candidate_features": features}, np.random.default_rng(0))
    np.testing.assert_array_equal(np.argsort(-scores[0], kind="stable")[:2], best)


def test_sampled_slates_follow_the_reported_probabilities() -> None:
    policy = make_baseline("ctr", temperature=0.05)
    features = np.repeat(_features(4), 20_000, axis=0)
    scores = policy.act({"candidate_features": features}, np.random.default_rng(1))
    slates = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    codes, counts = np.unique(slates[:, 0] * 4 + slates[:, 1], return_counts=True)
    expected = policy.slate_probability(
        {"candidate_features": features[: len(codes)]}, np.column_stack([codes // 4, codes % 4])
    )
    np.testing.assert_allclose(counts / len(slates), expected, atol=0.015)


def test_bad_policy_options() -> None:
    with pytest.raises(ConfigError, match="policy must be one of"):
        PlackettLucePolicy("oracle")
    with pytest.raises(ConfigError, match="temperature"):
        PlackettLucePolicy("ctr", temperature=-1.0)
