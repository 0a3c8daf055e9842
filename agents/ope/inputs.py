"""What the off-policy estimators read: logged rounds, slates or sessions with the logging and
target policies' probabilities and (optionally) a reward model's predictions.

Pure numpy (no torch, nothing above the data layer). Every array is checked on construction:
shapes, finiteness and probability ranges, each failure a :class:`DataError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from simulators.core.errors import DataError


def _check(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.shape != shape:
        raise DataError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(
            f"{name} holds NaN or infinite values (first at index {np.argwhere(~np.isfinite(array))[0].tolist()})"
        )
    return array


def _check_cluster(cluster: np.ndarray | None, n: int) -> np.ndarray | None:
    if cluster is None:
        return None
    array = np.asarray(cluster)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"cluster must be ({n},) integers, got shape {array.shape} {array.dtype}")
    return array


def _check_probability(name: str, array: np.ndarray, positive: bool) -> None:
    bad = (array <= 0) | (array > 1) if positive else (array < 0) | (array > 1 + 1e-9)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        bound = "(0, 1]" if positive else "[0, 1]"
        raise DataError(f"{name} must lie in {bound}; index {first} holds {array[tuple(first)]!r}")


@dataclass(frozen=True)
class BanditInputs:
    """One action per round (an item, or an (item, position) pair as in OBD)."""

    reward: np.ndarray
    """``(n,)`` observed rewards."""
    pscore: np.ndarray
    """``(n,)`` ``mu(a_i|x_i)``, in (0, 1]."""
    target_prob: np.ndarray
    """``(n,)`` ``pi(a_i|x_i)``, in [0, 1]."""
    q_logged: np.ndarray | None = None
    """``(n,)`` ``q(x_i, a_i)``; needed by DM-based estimators."""
    q_target: np.ndarray | None = None
    """``(n,)`` ``E_{a~pi(.|x_i)} q(x_i, a)``; needed by DM-based estimators."""
    cluster: np.ndarray | None = None
    """``(n,)`` int: rounds of one cluster (a session) are dependent, so the bootstrap draws
    whole clusters; ``None``: rounds are independent."""

    def __post_init__(self) -> None:
        n = len(np.asarray(self.reward))
        object.__setattr__(self, "reward", _check("reward", self.reward, (n,)))
        object.__setattr__(self, "pscore", _check("pscore", self.pscore, (n,)))
        object.__setattr__(self, "target_prob", _check("target_prob", self.target_prob, (n,)))
        _check_probability("pscore", self.pscore, positive=True)
        _check_probability("target_prob", self.target_prob, positive=False)
        for name in ("q_logged", "q_target"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check(name, getattr(self, name), (n,)))
        object.__setattr__(self, "cluster", _check_cluster(self.cluster, n))
        if n == 0:
            raise DataError("no logged rounds")

    @classmethod
    def from_action_dist(
        cls, reward: np.ndarray, action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray,
        q_hat: np.ndarray | None = None,
    ) -> BanditInputs:  # fmt: skip
        """From the target's full distribution ``action_dist (n, n_actions)`` (rows sum to 1)
        and optionally the reward model ``q_hat (n, n_actions)``."""
        dist = np.asarray(action_dist, dtype=np.float64)
        action = np.asarray(action)
        if dist.ndim != 2 or dist.shape[0] != len(action):
            raise DataError(f"action_dist must be (n_rounds={len(action)}, n_actions), got {dist.shape}")
        if not np.isfinite(dist).all() or (dist < 0).any():
            raise DataError("action_dist holds negative, NaN or infinite values")
        sums = dist.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-6):
            row = int(np.argmax(np.abs(sums - 1.0)))
            raise DataError(f"action_dist rows must sum to 1; row {row} sums to {sums[row]:.6f}")
        if (
            not np.issubdtype(action.dtype, np.integer)
            or (action < 0).any()
            or (action >= dist.shape[1]).any()
        ):
            raise DataError(f"actions must be integers in [0, {dist.shape[1]})")
        rows = np.arange(len(action))
        q_logged = q_target = None
        if q_hat is not None:
            q = _check("q_hat", q_hat, dist.shape)
            q_logged, q_target = q[rows, action], (dist * q).sum(axis=1)
        return cls(reward, pscore, dist[rows, action], q_logged, q_target)

    @property
    def w(self) -> np.ndarray:
        """``(n,)`` importance weights."""
        return self.target_prob / self.pscore

    def require_model(self, who: str) -> tuple[np.ndarray, np.ndarray]:
        """``(q_logged, q_target)`` or a clear error."""
        if self.q_logged is None or self.q_target is None:
            raise DataError(f"{who} needs a reward model (q_logged and q_target)")
        return self.q_logged, self.q_target


@dataclass(frozen=True)
class SlateInputs:
    """Ordered slates of K slots with a reward per slot (clicks)."""

    reward: np.ndarray
    """``(n, K)`` reward of each slot."""
    pscore_prefix: np.ndarray
    """``(n, K)`` ``mu(a_1..a_k | x)``: the logging probability of the slate's first k items."""
    target_prefix: np.ndarray
    """``(n, K)`` ``pi(a_1..a_k | x)``."""
    pscore_marginal: np.ndarray | None
    """``(n, K)`` ``mu(a_k at slot k | x)``: the position-wise marginal; ``None`` when only the
    logger's prefix probabilities are known (logged propensities): the estimators that weight by
    marginals or exposures then say so."""
    target_marginal: np.ndarray
    """``(n, K)`` ``pi(a_k at slot k | x)``."""
    q_logged: np.ndarray | None = None
    """``(n, K)`` ``q(x, a_k, k)`` for the logged item in slot k."""
    q_target_next: np.ndarray | None = None
    """``(n, K)`` ``E_{a ~ pi(. | x, a_1..a_{k-1})} q(x, a, k)``: slot k under the target
    given the logged items above it (Cascade-DR's control variate)."""
    q_target: np.ndarray | None = None
    """``(n, K)`` ``E_{s ~ pi(.|x)} q(x, s_k, k)``: slot k under the target (the slate DM)."""
    cluster: np.ndarray | None = None
    """``(n,)`` int session of each slate: the bootstrap draws whole sessions (their steps are
    dependent); ``None``: slates are independent."""
    pscore_exposure: np.ndarray | None = None
    """``(n, K)`` ``e_mu(a_k|x) = sum_j theta_j mu(a_k at slot j | x)``: the logged item's
    examination-weighted exposure under the logger, over all slots (``theta``: the examination
    per slot of the position-based model)."""
    target_exposure: np.ndarray | None = None
    """``(n, K)`` ``e_pi(a_k|x) = sum_j theta_j pi(a_k at slot j | x)``."""

    def __post_init__(self) -> None:
        shape = np.asarray(self.reward).shape
        if len(shape) != 2 or shape[0] == 0:
            raise DataError(f"reward must be (n_rounds, slate_size) with n_rounds > 0, got {shape}")
        for name in ("reward", "pscore_prefix", "target_prefix", "target_marginal"):
            object.__setattr__(self, name, _check(name, getattr(self, name), shape))
        if self.pscore_marginal is not None:
            object.__setattr__(
                self, "pscore_marginal", _check("pscore_marginal", self.pscore_marginal, shape)
            )
            _check_probability("pscore_marginal", self.pscore_marginal, positive=True)
        _check_probability("pscore_prefix", self.pscore_prefix, positive=True)
        for name in ("target_prefix", "target_marginal"):
            _check_probability(name, getattr(self, name), positive=False)
        for name in ("q_logged", "q_target_next", "q_target", "pscore_exposure", "target_exposure"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check(name, getattr(self, name), shape))
        if (self.pscore_exposure is None) != (self.target_exposure is None):
            raise DataError("pscore_exposure and target_exposure come together")
        if self.pscore_exposure is not None and (self.pscore_exposure <= 0).any():
            raise DataError("pscore_exposure must be > 0: every logged item has exposure under the logger")
        if self.target_exposure is not None and (self.target_exposure < 0).any():
            raise DataError("target_exposure must be >= 0")
        object.__setattr__(self, "cluster", _check_cluster(self.cluster, shape[0]))

    def marginal_ratio(self, who: str) -> np.ndarray:
        """``(n, K)`` ``pi_k(a_k|x) / mu_k(a_k|x)``; a clear error when the logger's marginals are unknown."""
        if self.pscore_marginal is None:
            raise DataError(
                f"{who} needs the logger's slot marginals (pscore_marginal), which these inputs lack"
            )
        return self.target_marginal / self.pscore_marginal

    def exposure_ratio(self, who: str) -> np.ndarray:
        """``(n, K)`` ``e_pi(a_k|x) / e_mu(a_k|x)``; a clear error when the exposures are missing."""
        if self.pscore_exposure is None or self.target_exposure is None:
            raise DataError(f"{who} needs the exposures (pscore_exposure and target_exposure)")
        return self.target_exposure / self.pscore_exposure

    def first_slot(self) -> BanditInputs:
        """The top slot alone as a bandit problem (``q_target`` = the target's expected q)."""
        q_logged = None if self.q_logged is None else self.q_logged[:, 0]
        q_target = None if self.q_target is None else self.q_target[:, 0]
        return BanditInputs(
            self.reward[:, 0],
            self.pscore_prefix[:, 0],
            self.target_prefix[:, 0],
            q_logged,
            q_target,
            self.cluster,
        )


@dataclass(frozen=True)
class SessionInputs:
    """Whole sessions (trajectories) of up to T steps, padded."""

    reward: np.ndarray
    """``(n, T)`` per-step reward (0 after the session ended)."""
    mask: np.ndarray
    """``(n, T)`` 1 where the step happened."""
    step_ratio: np.ndarray
    """``(n, T)`` ``pi(a_t|x_t) / mu(a_t|x_t)`` of each step's slate (ignored where masked)."""
    q_logged: np.ndarray | None = None
    """``(n, T)`` ``Q(x_t, a_t)`` (a reward model; ignored where masked)."""
    v_target: np.ndarray | None = None
    """``(n, T)`` ``V(x_t) = E_{a~pi} Q(x_t, a)``."""

    def __post_init__(self) -> None:
        shape = np.asarray(self.reward).shape
        if len(shape) != 2 or shape[0] == 0:
            raise DataError(f"reward must be (n_sessions, max_steps) with n_sessions > 0, got {shape}")
        for name in ("reward", "mask", "step_ratio"):
            object.__setattr__(self, name, _check(name, getattr(self, name), shape))
        if (self.step_ratio < 0).any():
            raise DataError("step_ratio must be >= 0")
        for name in ("q_logged", "v_target"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check(name, getattr(self, name), shape))

    @property
    def cumulative_ratio(self) -> np.ndarray:
        """``(n, T)`` ``rho_{1:t}``; steps after the end keep the last value."""
        return np.cumprod(np.where(self.mask > 0, self.step_ratio, 1.0), axis=1)


Inputs = BanditInputs | SlateInputs | SessionInputs


def bootstrap_index(n: int, cluster: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Rows of one bootstrap draw: ``n`` rows with replacement, or, given ``cluster (n,)``, as
    many clusters with replacement, all rows of each (the cluster bootstrap)."""
    if cluster is None:
        return rng.integers(0, n, n)
    order = np.argsort(cluster, kind="stable")
    _, starts, counts = np.unique(cluster[order], return_index=True, return_counts=True)
    drawn = rng.integers(0, len(starts), len(starts))
    sizes = counts[drawn]
    offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return order[np.repeat(starts[drawn], sizes) + offsets]


def resample(data: Inputs, index: np.ndarray) -> Inputs:
    """The rounds (or sessions) ``index`` of ``data``: one bootstrap draw."""
    rows = {f.name: getattr(data, f.name)[index] for f in fields(data) if getattr(data, f.name) is not None}
    return replace(data, **rows)
