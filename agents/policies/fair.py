"""Fair re-rankers from the fair-ranking literature, as baselines with the policy interface of
:mod:`agents.baselines` (``action_mode``, ``act``, ``slate_probability``), each with its one knob.

- ``fair-topk`` (FA*IR; Zehlike et al., CIKM 2017): the ranking by pCTR, constrained so that
  every prefix of k items holds at least ``m(k) = F^{-1}(alpha; k, p)`` protected ones (F the
  binomial CDF), the fewest a fair coin of bias ``p`` would give with probability ``alpha``.
  Knob: ``p``, the minimum protected share. Deterministic (a slate has probability 1 or 0).
- ``exposure-lp`` (Singh & Joachims, KDD 2018, "Fairness of Exposure in Rankings"): per
  ranking, the doubly stochastic marginal matrix ``P (N items x K slots)`` maximising the
  expected utility ``u^T P v`` (``u`` = pCTR, ``v_k = 1 / log2(1 + k)``) under exposure
  proportional to merit, ``|e(G1) - t (e(G0) + e(G1))| <= delta * sum_k v_k`` with
  ``e(G) = sum_{i in G} sum_k P_ik v_k`` and ``t`` the protected share of the candidates' merit
  (``scipy.optimize.linprog``, HiGHS). Rankings are sampled from ``P``'s Birkhoff-von Neumann
  decomposition, so a slate's probability is the total weight of its permutations. Knob:
  ``delta``, the allowed gap (0 = exact proportionality).
- ``fairco`` (FairCo; Morik et al., SIGIR 2020): a proportional controller on the amortised
  exposure gap: rank by ``z(pCTR) + gain * gap`` for protected items (``- gain * gap`` for the
  others), ``gap`` = target share minus the protected share of all exposure so far, which the
  env's exposure ledger keeps across sessions (``context["protected_deficit"]``). Knob:
  ``gain``. Deterministic given the ledger.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from agents.policies.baselines import scores_action
from envs.config import CONTEXT, FEATURES
from envs.core import standardise
from envs.fairness import position_weights
from simulators.core.errors import ConfigError
from simulators.data.plackett_luce import UtilityFn, sequential_probability, sequential_slates

FAIR_NAMES = ("fair-topk", "exposure-lp", "fairco")
"""The fair re-rankers by name; each has one knob (:data:`KNOBS`)."""
KNOBS = {"fair-topk": "min_share", "exposure-lp": "delta", "fairco": "gain"}
"""Each fair re-ranker's knob."""
DEFAULT_KNOB = {"fair-topk": 0.3, "exposure-lp": 0.0, "fairco": 1.0}
"""The knob a fair re-ranker takes by default."""
FAIR_ALPHA = 0.1
"""FA*IR's significance ``alpha`` (the paper's default); not adjusted for multiple tests."""


def fair_minimums(k: int, p: float, alpha: float = FAIR_ALPHA) -> np.ndarray:
    """``(k,)`` FA*IR's ``m(j)``, ``j = 1..k``: the fewest protected items the top ``j`` may hold,
    ``F^{-1}(alpha; j, p)`` (the smallest m with ``P(Binomial(j, p) <= m) > alpha``)."""
    from scipy.stats import binom

    return np.array([int(binom.ppf(alpha, j, p)) for j in range(1, k + 1)], dtype=np.int64)


def _features(observation: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    features = observation["candidate_features"].astype(np.float64)
    return features[..., FEATURES.index("pctr")], features[..., FEATURES.index("protected")] > 0.5


@dataclass(frozen=True, eq=False)
class FairReranker:
    """One of :data:`FAIR_NAMES` over the env's candidates (see the module docstring)."""

    name: str
    """``fair-topk``, ``exposure-lp`` or ``fairco``."""
    knob: float = float("nan")
    """``min_share`` p in [0, 1] (FA*IR), ``delta`` >= 0 (the LP) or ``gain`` >= 0 (FairCo);
    NaN = :data:`DEFAULT_KNOB`."""
    slate_size: int = 5
    """The env's ``slate_size`` K."""
    _cache: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.name not in FAIR_NAMES:
            raise ConfigError(f"fair re-ranker must be one of {FAIR_NAMES}, got {self.name!r}")
        if np.isnan(self.knob):
            object.__setattr__(self, "knob", DEFAULT_KNOB[self.name])
        if not np.isfinite(self.knob) or self.knob < 0 or (self.name == "fair-topk" and self.knob > 1):
            allowed = "[0, 1]" if self.name == "fair-topk" else ">= 0"
            raise ConfigError(
                f"{self.name}: {KNOBS[self.name]} must be a finite number {allowed}, got {self.knob}"
            )

    @property
    def action_mode(self) -> str:
        """The fair re-rankers act in the env's ``scores`` mode."""
        return "scores"

    @property
    def knobs(self) -> dict[str, float]:
        """The knob, for reports."""
        return {KNOBS[self.name]: self.knob}

    # ----------------------------------------------------------------- FA*IR and FairCo
    def _sequential(self, observation: dict[str, np.ndarray]) -> UtilityFn:
        pctr, protected = _features(observation)
        relevance = standardise(pctr)
        if self.name == "fairco":
            gap = observation["context"][:, CONTEXT.index("protected_deficit")].astype(np.float64)[:, None]
            scores = relevance + self.knob * gap * np.where(protected, 1.0, -1.0)
            return lambda taken, slot: scores
        minimums = fair_minimums(self.slate_size, self.knob)

        def fair(taken: np.ndarray, slot: int) -> np.ndarray:
            held = (taken & protected).sum(axis=1)
            available = (~taken & protected).any(axis=1)
            short = (held < minimums[slot]) & available  # the prefix needs a protected item here
            return np.where(short[:, None] & ~protected, -np.inf, relevance)

        return fair

    # ---------------------------------------------------------------------- the LP
    def marginals(self, pctr: np.ndarray, protected: np.ndarray) -> np.ndarray:
        """``(N, K)`` the LP's optimal ``P`` for one ranking's candidates (module docstring)."""
        from scipy.optimize import linprog

        n, k = len(pctr), self.slate_size
        v = position_weights(k)
        merit = np.maximum(pctr, 1e-12)
        target = float(merit[protected].sum() / merit.sum())
        cost = -(pctr[:, None] * v[None, :]).ravel()  # maximise utility
        slots = np.zeros((k, n * k))
        for j in range(k):
            slots[j, j::k] = 1.0  # each slot holds one item
        items = np.kron(np.eye(n), np.ones((1, k)))  # each item fills at most one slot
        exposure = ((protected.astype(np.float64) - target)[:, None] * v[None, :]).ravel()
        bound = self.knob * v.sum()
        balance = protected.any() and not protected.all()  # else nothing to balance: the plain ranking
        a_ub = np.vstack([items, exposure[None], -exposure[None]]) if balance else items
        b_ub = np.r_[np.ones(n), bound, bound] if balance else np.ones(n)
        result = linprog(
            cost, A_ub=a_ub, b_ub=b_ub, A_eq=slots, b_eq=np.ones(k), bounds=(0, 1), method="highs"
        )
        if (
            result.status != 0
        ):  # too few protected items to balance within delta: the gap may exceed it, at a high price
            slack = np.r_[np.zeros(n), -1.0, -1.0][:, None]  # the gap may exceed the bound by s >= 0
            result = linprog(np.r_[cost, 10.0 * np.abs(cost).max() + 1.0], A_ub=np.hstack([a_ub, slack]), b_ub=b_ub,
                             A_eq=np.hstack([slots, np.zeros((k, 1))]), b_eq=np.ones(k),
                             bounds=[(0, 1)] * (n * k) + [(0, None)], method="highs")  # fmt: skip
        return np.clip(result.x[: n * k].reshape(n, k), 0.0, 1.0)

    def decomposition(self, pctr: np.ndarray, protected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Birkhoff-von Neumann decomposition of the LP's ``P``: ``(weights (R,), slates (R, K))``
        whose weighted slates reproduce ``P`` (memoised per candidate set)."""
        key = pctr.tobytes() + protected.tobytes()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        out = birkhoff_von_neumann(self.marginals(pctr, protected))
        self._cache[key] = out
        if len(self._cache) > 4096:
            self._cache.popitem(last=False)
        return out

    # -------------------------------------------------------------- the interface
    def slates(self, observation: dict[str, np.ndarray], rng: np.random.Generator | None) -> np.ndarray:
        """``(B, K)`` the slates shown (the LP's sampled from its decomposition)."""
        if self.name != "exposure-lp":
            n = observation["candidates"].shape
            return sequential_slates(self._sequential(observation), n, self.slate_size, 0.0, None)
        pctr, protected = _features(observation)
        if rng is None:
            raise ConfigError("exposure-lp samples its rankings: it needs a generator")
        out = np.empty((len(pctr), self.slate_size), dtype=np.int64)
        for row in range(len(pctr)):
            weights, slates = self.decomposition(pctr[row], protected[row])
            out[row] = slates[rng.choice(len(weights), p=weights / weights.sum())]
        return out

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """``scores`` actions ``(B, N)`` whose top K is the slate."""
        return scores_action(self.slates(observation, rng), observation["candidates"].shape[1])

    def slate_probability(self, observation: dict[str, np.ndarray], slates: np.ndarray) -> np.ndarray:
        """``(B,)`` probability of each ordered slate ``(B, K)`` of candidate positions."""
        if self.name != "exposure-lp":
            n = observation["candidates"].shape[1]
            return sequential_probability(self._sequential(observation), slates, n, 0.0)
        pctr, protected = _features(observation)
        out = np.zeros(len(slates))
        for row in range(len(slates)):
            weights, options = self.decomposition(pctr[row], protected[row])
            out[row] = weights[(options == slates[row]).all(axis=1)].sum() / weights.sum()
        return out


def birkhoff_von_neumann(marginals: np.ndarray, tolerance: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """``(weights (R,), slates (R, K))``: rankings whose weighted mix has slot marginals
    ``marginals (N, K)`` (each column sums to 1, each row to at most 1).

    The ``N x K`` matrix is completed to a doubly stochastic ``N x N`` one (each item's leftover
    mass placed in ``N - K`` dummy slots by the north-west corner rule, which keeps the
    completion sparse), then peeled: a perfect matching on the positive
    entries (``scipy.optimize.linear_sum_assignment``; Birkhoff's theorem says one exists), its
    smallest entry as weight, subtracted, until nothing is left. A slate is the items matched
    to the K real slots, in order."""
    from scipy.optimize import linear_sum_assignment

    n, k = marginals.shape
    square = np.zeros((n, n))
    square[:, :k] = marginals
    leftover = np.clip(1.0 - marginals.sum(axis=1), 0.0, None)
    leftover *= (n - k) / max(leftover.sum(), 1e-300)  # exact total despite rounding
    column_room = np.ones(n - k)
    row, column = 0, 0
    while row < n and column < n - k:  # north-west corner: at most 2N entries, so few peels
        amount = min(leftover[row], column_room[column])
        square[row, k + column] += amount
        leftover[row] -= amount
        column_room[column] -= amount
        if leftover[row] <= 1e-12:
            row += 1
        else:
            column += 1
    weights, slates = [], []
    remaining = 1.0
    for _ in range(n * n):
        if remaining <= tolerance:
            break
        rows, cols = linear_sum_assignment(-(square > tolerance).astype(np.float64) - square * 1e-3)
        weight = float(square[rows, cols].min())
        if weight <= tolerance:
            break
        slot_item = np.empty(n, dtype=np.int64)
        slot_item[cols] = rows
        weights.append(weight)
        slates.append(slot_item[:k].copy())
        square[rows, cols] -= weight
        remaining -= weight
    return np.array(weights), np.array(slates, dtype=np.int64)


def make_fair(name: str, knob: float = float("nan"), slate_size: int = 5) -> FairReranker:
    """A fair re-ranker by name (:data:`FAIR_NAMES`) and knob."""
    return FairReranker(name, knob, slate_size)
