"""Static baselines: random, popularity and CTR ranking, as Plackett-Luce policies.

Each ranks the env's candidates from the observation alone and can report the probability it
gives to any slate, so off-policy estimators apply to all of them. With ``temperature=0`` a
policy is deterministic (greedy top-K), and a slate's probability is 1 or 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import FEATURES
from simulators.core.errors import ConfigError
from simulators.data.plackett_luce import gumbel_order, slate_probability, softmax

POLICY_NAMES = ("random", "popularity", "ctr")


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

    def slate_probability(self, candidate_features: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(B,)`` probability of each ordered slate ``(B, K)`` of candidate positions."""
        utility = self.utility(candidate_features)
        if self.temperature == 0 and self.name != "random":
            greedy = np.argsort(-utility, axis=1, kind="stable")[:, : slates.shape[1]]
            return np.all(greedy == slates, axis=1).astype(np.float64)
        p = softmax(utility / (self.temperature if self.name != "random" else 1.0))
        return slate_probability(np.take_along_axis(p, slates, axis=1))


def make_baseline(name: str, temperature: float = 0.0, purchase_weight: float = 0.0) -> PlackettLucePolicy:
    """A baseline by name."""
    return PlackettLucePolicy(name, temperature, purchase_weight)
