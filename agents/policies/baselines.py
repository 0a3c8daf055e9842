"""Static baselines: random, popularity and CTR ranking (Plackett-Luce policies), and the static
re-rankers that are hard to beat: a fixed discrete strategy, constant ranking weights and
maximal marginal relevance (MMR).

Each ranks the env's candidates from the observation alone (plus the catalog's item topics and
text vectors, which never change) and can report the probability it gives to any slate, so
off-policy estimators apply to all of them. With ``temperature=0`` a policy is deterministic
(greedy), and a slate's probability is 1 or 0; above 0 slates are sampled slot by slot from
``softmax(utility / T)`` (Plackett-Luce; for the re-rankers, the utility of a slot depends on
what the slots above hold). The re-rankers' knobs are tuned in the fitted simulator
(:mod:`agents.tuning`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.config import FEATURES, STRATEGIES, WEIGHTS
from envs.core import standardise
from simulators.core.errors import ConfigError
from simulators.data.plackett_luce import (
    UtilityFn,
    gumbel_order,
    sequential_probability,
    sequential_slates,
    slate_probability,
    softmax,
)

POLICY_NAMES = ("random", "popularity", "ctr")
"""The Plackett-Luce baselines (no tuning)."""
RERANKER_NAMES = ("best-fixed", "tuned-weights", "mmr")
"""The static re-rankers tuned in the fitted simulator (:mod:`agents.tuning`)."""
MMR_SIMILARITIES = ("topic", "text")


@dataclass(frozen=True)
class PlackettLucePolicy:
    """Rank candidates by ``utility / temperature`` with Plackett-Luce sampling.

    ``P(slate) = prod_k exp(s[c_k]) / sum_{j not in c_<k} exp(s[j])`` with ``s = utility / T``.
    """

    name: str
    """``random``, ``popularity`` or ``ctr``."""
    temperature: float = 0.0
    """0 = greedy (deterministic top-K); larger = more exploration."""
    purchase_weight: float = 0.0
    """For ``ctr``: rank by ``pCTR * (1 + w * pCVR)``, the expected engagement."""

    def __post_init__(self) -> None:
        if self.name not in POLICY_NAMES:
            raise ConfigError(f"policy must be one of {POLICY_NAMES} or a model path, got {self.name!r}")
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"temperature must be a finite number >= 0, got {self.temperature}")

    def utility(self, candidate_features: np.ndarray) -> np.ndarray:
        """``(B, N)`` the score each candidate gets from ``candidate_features (B, N, F)``."""
        features = candidate_features.astype(np.float64)
        if self.name == "random":
            return np.zeros(features.shape[:2])
        if self.name == "popularity":
            return features[..., FEATURES.index("popularity")]
        pctr = np.clip(features[..., FEATURES.index("pctr")], 1e-9, 1.0)
        value = pctr * (1.0 + self.purchase_weight * features[..., FEATURES.index("pcvr")])
        return np.log(value)

    @property
    def action_mode(self) -> str:
        """Baselines act in the env's ``scores`` mode."""
        return "scores"

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """``scores`` actions ``(B, N)`` in [-1, 1] whose top K is the sampled ranking."""
        utility = self.utility(observation["candidate_features"])
        if self.temperature > 0 or self.name == "random":
            scale = max(self.temperature, 1.0) if self.name == "random" else self.temperature
            order = gumbel_order(utility / scale, rng)
        else:
            order = np.argsort(-utility, axis=1, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(utility.shape[1])[None, :], axis=1)
        return (1.0 - 2.0 * ranks / max(utility.shape[1] - 1, 1)).astype(np.float32)

    def slate_probability(self, observation: dict[str, np.ndarray], slates: np.ndarray) -> np.ndarray:
        """``(B,)`` probability of each ordered slate ``(B, K)`` of candidate positions."""
        utility = self.utility(observation["candidate_features"])
        if self.temperature == 0 and self.name != "random":
            greedy = np.argsort(-utility, axis=1, kind="stable")[:, : slates.shape[1]]
            return np.all(greedy == slates, axis=1).astype(np.float64)
        p = softmax(utility / (self.temperature if self.name != "random" else 1.0))
        return slate_probability(np.take_along_axis(p, slates, axis=1))


def make_baseline(name: str, temperature: float = 0.0, purchase_weight: float = 0.0) -> PlackettLucePolicy:
    """A Plackett-Luce baseline by name (:data:`POLICY_NAMES`)."""
    return PlackettLucePolicy(name, temperature, purchase_weight)


def scores_action(slates: np.ndarray, n_candidates: int, scores: np.ndarray | None = None) -> np.ndarray:
    """``scores`` actions ``(B, N)`` within [-1, 1] whose top K is ``slates (B, K)`` (distinct
    positions) in order. The rest follow by position, or, given the ``scores (B, N)`` that chose
    the slate (the chosen candidate action's own), keep those (centred, scaled): each slate item,
    from the last up, keeps its own score where that already lies above the item below it (the
    best of the rest, for the last) and is lifted above it otherwise (by a K-th of the scores'
    spread). A greedy slate of the scores keeps them all, so a Plackett-Luce draw of the
    result (serving at a temperature, OPE's form of the policy) follows the scores that chose it;
    rank-spaced scores give 50 candidates logits a 0.07 apart once standardised."""
    batch, k = slates.shape
    if scores is not None:
        if scores.shape != (batch, n_candidates):
            raise ValueError(f"scores must have shape {(batch, n_candidates)}, got {scores.shape}")
        out = scores.astype(np.float64) - scores.mean(axis=1, keepdims=True)
        step = np.maximum(out.std(axis=1), 1e-6) / k
        rest = np.ones(out.shape, dtype=bool)
        np.put_along_axis(rest, slates, False, axis=1)
        below = np.where(rest, out, -np.inf).max(axis=1)  # -inf when the slate holds every candidate
        rows = np.arange(batch)
        for j in range(k - 1, -1, -1):
            own = out[rows, slates[:, j]]
            value = np.where(own > below + step / 1000, own, below + step)  # (a gap float32 keeps)
            out[rows, slates[:, j]] = value
            below = value
        return (out / np.abs(out).max(axis=1, keepdims=True)).astype(np.float32)
    rank = np.full((batch, n_candidates), k, dtype=np.float64)
    np.put_along_axis(rank, slates, np.arange(k, dtype=np.float64)[None, :], axis=1)
    order = np.argsort(rank, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n_candidates)[None, :], axis=1)
    return (1.0 - 2.0 * ranks / max(n_candidates - 1, 1)).astype(np.float32)


def strategy_utility(strategy: int, features: np.ndarray, purchase_weight: float) -> np.ndarray:
    """``(B, N)`` the score a discrete strategy (``STRATEGIES[strategy]``) ranks by, as the env
    computes it (``explore``, a random ranking there, is the zero utility: uniform here)."""
    f = features.astype(np.float64)
    pctr, pcvr, similarity, popularity, protected, seen = (f[..., i] for i in range(len(FEATURES)))
    name = STRATEGIES[strategy]
    table = {
        "greedy_ctr": pctr,
        "expected_value": pctr * (1 + purchase_weight * pcvr),
        "one_per_topic": pctr,
        "fresh_topics": pctr * np.exp(-seen),
        "fair_boost": pctr * (1 + 0.5 * protected),
        "similar_to_history": similarity,
        "popular": popularity,
        "explore": np.zeros_like(pctr),
    }
    return table[name]


@dataclass(frozen=True, eq=False)
class StaticReranker:
    """A static re-ranker over the env's candidates: one of :data:`RERANKER_NAMES`.

    ``best-fixed`` plays one discrete strategy (``strategy``) every step; ``tuned-weights`` one
    constant ``weights`` action (the PPO agent's action space: a weight per candidate feature,
    z-scored across the step's candidates, and the ``diversify`` switch); ``mmr`` ranks by
    maximal marginal relevance, ``lambda * z(pCTR) - (1 - lambda) * max_{s above} sim(c, s)``
    with ``sim`` the same-topic indicator or the cosine of the item texts (Carbonell &
    Goldstein, SIGIR 1998). One item per topic first, where a strategy or the weights ask for
    it, is a constraint of the sequential choice.
    """

    name: str
    """``best-fixed``, ``tuned-weights`` or ``mmr``."""
    item_topic: np.ndarray = field(repr=False)
    """``(n_items,)`` topic of each catalog item (for one-per-topic and topic similarity)."""
    item_vectors: np.ndarray | None = field(default=None, repr=False)
    """``(n_items, d)`` unit text vectors (``mmr`` with ``similarity="text"``)."""
    strategy: int = 0
    """``best-fixed``: index into ``STRATEGIES``."""
    weights: tuple[float, ...] = ()
    """``tuned-weights``: the constant action, ``len(WEIGHTS)`` values in [-1, 1]."""
    mmr_lambda: float = 0.5
    """``mmr``: weight of relevance against redundancy, in [0, 1]."""
    similarity: str = "topic"
    """``mmr``: ``topic`` or ``text``."""
    temperature: float = 0.0
    """0 = greedy; above 0, slates are sampled (the action mode becomes ``scores``)."""
    purchase_weight: float = 1.0
    """The env's ``purchase_weight`` (the ``expected_value`` strategy ranks by it)."""
    slate_size: int = 5
    """The env's ``slate_size`` K (the ``scores`` actions rank K items)."""

    def __post_init__(self) -> None:
        if self.name not in RERANKER_NAMES:
            raise ConfigError(f"re-ranker must be one of {RERANKER_NAMES}, got {self.name!r}")
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 <= self.strategy < len(STRATEGIES):
            raise ConfigError(f"strategy must lie in [0, {len(STRATEGIES)}), got {self.strategy}")
        if self.name == "tuned-weights" and (
            len(self.weights) != len(WEIGHTS) or not all(-1 <= w <= 1 for w in self.weights)
        ):
            raise ConfigError(f"tuned-weights needs {len(WEIGHTS)} weights in [-1, 1], got {self.weights}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"mmr_lambda must lie in [0, 1], got {self.mmr_lambda}")
        if self.similarity not in MMR_SIMILARITIES:
            raise ConfigError(f"similarity must be one of {MMR_SIMILARITIES}, got {self.similarity!r}")
        if self.name == "mmr" and self.similarity == "text" and self.item_vectors is None:
            raise ConfigError("mmr with text similarity needs the catalog's item vectors")

    @property
    def action_mode(self) -> str:
        """Greedy ``best-fixed`` and ``tuned-weights`` act in the env's own ``discrete`` and
        ``weights`` modes (exactly what an agent could choose); everything else in ``scores``."""
        if self.temperature == 0 and self.name == "best-fixed":
            return "discrete"
        if self.temperature == 0 and self.name == "tuned-weights":
            return "weights"
        return "scores"

    @property
    def knobs(self) -> dict[str, object]:
        """What was tuned, for reports."""
        if self.name == "best-fixed":
            return {"strategy": STRATEGIES[self.strategy]}
        if self.name == "tuned-weights":
            return {"weights": dict(zip(WEIGHTS, self.weights, strict=True))}
        return {"mmr_lambda": self.mmr_lambda, "similarity": self.similarity}

    def utility_fn(self, observation: dict[str, np.ndarray]) -> tuple[UtilityFn, int]:
        """The sequential utility of :func:`~simulators.data.plackett_luce.sequential_slates` for
        this batch of observations, and the number of candidates."""
        features = observation["candidate_features"]
        candidates = observation["candidates"].astype(np.int64)
        topics = self.item_topic[candidates]  # (B, N)
        batch, n = candidates.shape
        rows = np.arange(batch)[:, None]
        if self.name == "mmr":
            relevance = standardise(features[..., FEATURES.index("pctr")].astype(np.float64))
            if self.similarity == "text":
                assert self.item_vectors is not None
                vectors = self.item_vectors[candidates]
                pairwise = np.einsum("bnd,bmd->bnm", vectors, vectors)
            else:
                pairwise = (topics[:, :, None] == topics[:, None, :]).astype(np.float64)
            lam = self.mmr_lambda

            def mmr(taken: np.ndarray, slot: int) -> np.ndarray:
                if slot == 0:
                    return lam * relevance
                redundancy = np.where(taken[:, None, :], pairwise, -np.inf).max(axis=2)
                return lam * relevance - (1 - lam) * redundancy

            return mmr, n
        if self.name == "best-fixed":
            base = strategy_utility(self.strategy, features, self.purchase_weight)
            diversify = np.full(batch, STRATEGIES[self.strategy] == "one_per_topic")
            if STRATEGIES[self.strategy] == "explore":
                base = np.zeros((batch, n))
        else:
            weights = np.asarray(self.weights, dtype=np.float32)
            base = np.einsum("bnf,f->bn", standardise(features), weights[: len(FEATURES)]).astype(np.float64)
            diversify = np.full(batch, weights[-1] > 0)
        scaled = standardise(base) if self.temperature > 0 else base

        def sequential(taken: np.ndarray, slot: int) -> np.ndarray:
            if not diversify.any() or slot == 0:
                return scaled
            used = np.zeros((batch, int(self.item_topic.max()) + 1), dtype=bool)
            used[np.broadcast_to(rows, taken.shape)[taken], topics[taken]] = True
            fresh = ~used[rows, topics] & ~taken
            blocked = diversify[:, None] & fresh.any(axis=1, keepdims=True) & ~fresh
            return np.where(blocked, -np.inf, scaled)

        return sequential, n

    def slates(
        self, observation: dict[str, np.ndarray], k: int, rng: np.random.Generator | None
    ) -> np.ndarray:
        """``(B, k)`` the slates this policy shows (sampled above temperature 0)."""
        utility, n = self.utility_fn(observation)
        batch = len(observation["candidates"])
        temperature = max(self.temperature, 1.0) if self.is_uniform else self.temperature
        return sequential_slates(utility, (batch, n), k, temperature, rng)

    @property
    def is_uniform(self) -> bool:
        """The ``explore`` strategy: a uniformly random ranking."""
        return self.name == "best-fixed" and STRATEGIES[self.strategy] == "explore"

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Actions in :attr:`action_mode` for a batch of ``ids`` observations."""
        batch = len(observation["candidates"])
        if self.action_mode == "discrete":
            return np.full(batch, self.strategy, dtype=np.int64)
        if self.action_mode == "weights":
            return np.tile(np.asarray(self.weights, dtype=np.float32), (batch, 1))
        return scores_action(
            self.slates(observation, self.slate_size, rng), observation["candidates"].shape[1]
        )

    def slate_probability(self, observation: dict[str, np.ndarray], slates: np.ndarray) -> np.ndarray:
        """``(B,)`` probability of each ordered slate ``(B, K)`` of candidate positions."""
        utility, n = self.utility_fn(observation)
        temperature = max(self.temperature, 1.0) if self.is_uniform else self.temperature
        return sequential_probability(utility, slates, n, temperature)
