"""The fair re-rankers against their papers' definitions."""

from __future__ import annotations

import numpy as np
import pytest

from agents.policies.baselines import make_baseline
from agents.policies.fair import FAIR_NAMES, birkhoff_von_neumann, fair_minimums, make_fair
from envs.config import CONTEXT, FEATURES
from envs.fairness import position_weights
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError


def _observation(batch: int = 6, n: int = 12, share: float = 0.3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = np.zeros((batch, n, len(FEATURES)), dtype=np.float32)
    features[..., FEATURES.index("pctr")] = rng.uniform(0.01, 0.4, (batch, n))
    features[..., FEATURES.index("protected")] = rng.random((batch, n)) < share
    context = np.zeros((batch, len(CONTEXT)), dtype=np.float32)
    context[:, CONTEXT.index("protected_deficit")] = rng.uniform(-0.2, 0.2, batch)
    return {
        "candidate_features": features,
        "candidates": np.tile(np.arange(n), (batch, 1)),
        "context": context,
    }


def test_fair_minimums_match_the_binomial_table() -> None:
    """FA*IR's m(k) for p = 0.5, alpha = 0.1, worked out by hand: P(Bin(4, .5) <= 0) = .0625 < .1
    first at k = 4, and P(Bin(7, .5) <= 1) = .0625 first at k = 7."""
    assert fair_minimums(9, 0.5).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3]
    assert fair_minimums(5, 0.0).tolist() == [0] * 5
    assert fair_minimums(3, 1.0).tolist() == [1, 2, 3]


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_fair_topk_meets_every_prefix_constraint(p: float) -> None:
    policy = make_fair("fair-topk", p, slate_size=8)
    for seed in range(5):
        obs = _observation(batch=20, n=15, share=0.35, seed=seed)
        slates = policy.slates(obs, None)
        protected = obs["candidate_features"][..., FEATURES.index("protected")] > 0.5
        shown = np.take_along_axis(protected, slates, axis=1)
        need = fair_minimums(8, p)
        available = protected.sum(axis=1, keepdims=True)
        assert (np.cumsum(shown, axis=1) >= np.minimum(need[None, :], available)).all()
        # within the constraint, by pCTR: each group's items appear in pCTR order
        pctr = np.take_along_axis(obs["candidate_features"][..., FEATURES.index("pctr")], slates, axis=1)
        for row in range(len(slates)):
            for group in (True, False):
                values = pctr[row][shown[row] == group]
                assert (np.diff(values) <= 1e-7).all()


def test_fair_topk_at_zero_share_is_the_ctr_ranking() -> None:
    obs = _observation(batch=10)
    ctr = np.argsort(-obs["candidate_features"][..., FEATURES.index("pctr")], axis=1, kind="stable")[:, :5]
    assert (make_fair("fair-topk", 0.0).slates(obs, None) == ctr).all()


def test_the_exposure_lp_gives_exposure_in_proportion_to_merit() -> None:
    obs = _observation(batch=4, n=10, share=0.3, seed=4)
    policy = make_fair("exposure-lp", 0.0)
    v = position_weights(5)
    for row in range(4):
        pctr = obs["candidate_features"][row, :, FEATURES.index("pctr")].astype(np.float64)
        protected = obs["candidate_features"][row, :, FEATURES.index("protected")] > 0.5
        p = policy.marginals(pctr, protected)
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-7)  # each slot filled
        assert (p.sum(axis=1) <= 1 + 1e-7).all()  # each item at most once
        exposure = p @ v
        share = exposure[protected].sum() / exposure.sum()
        assert share == pytest.approx(pctr[protected].sum() / pctr.sum(), abs=1e-6)
        free = make_fair("exposure-lp", 10.0).marginals(pctr, protected)  # no constraint: the ranking
        assert (pctr @ free @ v) == pytest.approx(np.sort(pctr)[::-1][:5] @ v)
        assert (pctr @ p @ v) <= (pctr @ free @ v) + 1e-9


def test_birkhoff_von_neumann_reproduces_the_marginals_and_sampling_follows_it() -> None:
    obs = _observation(batch=1, n=8, share=0.4, seed=7)
    policy = make_fair("exposure-lp", 0.0)
    pctr = obs["candidate_features"][0, :, FEATURES.index("pctr")].astype(np.float64)
    protected = obs["candidate_features"][0, :, FEATURES.index("protected")] > 0.5
    p = policy.marginals(pctr, protected)
    weights, slates = birkhoff_von_neumann(p)
    assert weights.sum() == pytest.approx(1.0, abs=1e-6)
    rebuilt = np.zeros_like(p)
    for weight, slate in zip(weights, slates, strict=True):
        rebuilt[slate, np.arange(5)] += weight
    np.testing.assert_allclose(rebuilt, p, atol=1e-6)
    rng = np.random.default_rng(0)
    drawn = policy.slates({k: np.repeat(v, 4000, axis=0) for k, v in obs.items()}, rng)
    frequency = np.zeros_like(p)
    np.add.at(frequency, (drawn, np.broadcast_to(np.arange(5), drawn.shape)), 1.0 / len(drawn))
    np.testing.assert_allclose(frequency, p, atol=0.03)  # 4000 draws: sd <= 0.008
    distinct = np.unique(slates, axis=0)
    probability = policy.slate_probability(
        {k: np.repeat(v, len(distinct), axis=0) for k, v in obs.items()}, distinct
    )
    assert probability.sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["fair-topk", "fairco"])
def test_deterministic_fair_rerankers_report_probability_one_for_their_slate(name: str) -> None:
    obs = _observation()
    policy = make_fair(name)
    slates = policy.slates(obs, None)
    assert (policy.slate_probability(obs, slates) == 1.0).all()
    other = slates[:, ::-1].copy()
    assert (policy.slate_probability(obs, other) == 0.0).all()


def test_fairco_closes_the_exposure_gap_over_sessions() -> None:
    """In the shop, CTR ranking over-exposes small sellers' items against their merit (a shared
    ledger over 16 parallel users); FairCo's controller closes the gap within a few steps and holds
    it closed (it hovers around 0.01 against CTR's 0.05), while CTR's stays."""
    gaps = {}
    for name, policy in (("ctr", make_baseline("ctr")), ("fairco", make_fair("fairco", 5.0))):
        env = RankingVectorEnv(num_envs=16, action_mode="scores")
        obs, _ = env.reset(seed=0)
        rng = np.random.default_rng(0)
        trace = []
        for _ in range(300):
            obs, *_ = env.step(policy.act(obs, rng))
            trace.append(float(obs["context"][0, CONTEXT.index("protected_deficit")]))
        gaps[name] = np.abs(trace)
    assert gaps["fairco"][-50:].mean() < 0.3 * gaps["ctr"][-50:].mean()
    held = gaps["fairco"][50:].reshape(-1, 50).mean(axis=1)  # every later window, not only the last
    assert (held < 0.5 * gaps["ctr"][50:].mean()).all()


def test_bad_fair_options() -> None:
    with pytest.raises(ConfigError, match="fair re-ranker must be one of"):
        make_fair("fair")
    with pytest.raises(ConfigError, match="min_share must be a finite number"):
        make_fair("fair-topk", 1.5)
    with pytest.raises(ConfigError, match="gain must be"):
        make_fair("fairco", -1.0)
    assert {make_fair(name).name for name in FAIR_NAMES} == set(FAIR_NAMES)
