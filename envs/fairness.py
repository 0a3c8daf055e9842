"""Exposure as a shared resource: a ledger across sessions, the per-step penalty, and metrics.

Exposure of slot k (1-based) is ``1 / log2(1 + k)``. A ledger row accumulates exposure and
merit (relevance offered) per group; the vector env shares one row among all parallel users
or gives each its own. The ledger knows nothing of users' behaviour, only what was shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.engine import ledger_kernel, protected_target
from simulators.core.errors import ConfigError
from simulators.core.metrics import gini


def position_weights(slate_size: int) -> np.ndarray:
    """``(K,)`` exposure of each slot: ``1 / log2(1 + k)``."""
    return 1.0 / np.log2(1.0 + np.arange(1, slate_size + 1))


@dataclass
class ExposureLedger:
    """Exposure and merit per provider group and popularity group, over ``n_rows`` ledgers.

    Group arrays are indexed ``[row, g]`` with ``g = 1`` the protected (long-tail provider)
    or tail-popularity group and ``g = 0`` the rest.
    """

    n_rows: int
    """Independent ledgers (1 = shared by every parallel user)."""
    n_items: int
    """Catalog size (for per-item exposure and its Gini)."""
    n_user_groups: int
    """User groups for the utility gap."""
    target_share: float | None = None
    """Fixed protected exposure share to aim for; ``None`` = merit-based (share of relevance)."""

    def __post_init__(self) -> None:
        self._cached_weights: np.ndarray | None = None
        if self.target_share is not None and not 0.0 <= self.target_share <= 1.0:
            raise ConfigError(f"fairness target share must lie in [0, 1], got {self.target_share}")
        self.clear()

    @property
    def target_value(self) -> float:
        """The fixed target share, or NaN for merit-based (the kernels' convention)."""
        return np.nan if self.target_share is None else self.target_share

    def clear(self, rows: np.ndarray | None = None) -> None:
        """Start fresh ledgers (all rows, or the given ones)."""
        if rows is None:
            self.provider_exposure = np.zeros((self.n_rows, 2))
            self.provider_merit = np.zeros((self.n_rows, 2))
            self.popularity_exposure = np.zeros((self.n_rows, 2))
            self.item_exposure = np.zeros((self.n_rows, self.n_items), dtype=np.float32)
            self.user_utility = np.zeros((self.n_rows, self.n_user_groups))
            self.user_sessions = np.zeros((self.n_rows, self.n_user_groups))
            return
        for array in (
            self.provider_exposure,
            self.provider_merit,
            self.popularity_exposure,
            self.item_exposure,
            self.user_utility,
            self.user_sessions,
        ):
            array[rows] = 0

    STATE = (
        "provider_exposure", "provider_merit", "popularity_exposure", "item_exposure", "user_utility",
        "user_sessions",
    )  # fmt: skip
    """The arrays that hold a ledger's state (what :meth:`snapshot` copies)."""

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the ledger's state (:meth:`restore` puts it back)."""
        return {name: getattr(self, name).copy() for name in self.STATE}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Put back a state taken by :meth:`snapshot` (of this ledger or of one with as many rows
        and items), in place."""
        for name in self.STATE:
            getattr(self, name)[...] = state[name]

    def target(self, rows: np.ndarray) -> np.ndarray:
        """``(B,)`` target protected share of each ledger row."""
        merit = self.provider_merit[rows]
        return np.array([protected_target(m[0] + m[1], m[1], self.target_value) for m in merit])

    tail_target = 0.2
    """The long tail (80% of items) should get at least 20% of exposure."""

    def record(
        self,
        rows: np.ndarray,
        items: np.ndarray,
        protected: np.ndarray,
        tail: np.ndarray,
        merit_total: np.ndarray,
        merit_protected: np.ndarray,
    ) -> np.ndarray:
        """Add a batch of slates and return each step's fairness penalty ``(B,)``.

        ``items``: ``(B, K)`` catalog rows; ``protected``, ``tail``: ``(n_items,)`` bool item
        groups; ``merit_*``: ``(B,)`` the relevance offered in all candidates and in the
        protected ones.
        The penalty is the step's contribution to the protected group's exposure deficit,
        ``(max(0, D_after) - max(0, D_before)) / sum_k w_k`` with
        ``D = target * E_total - E_protected``: positive when the slate widens the gap,
        negative when it closes one, zero when the ledger has no deficit either way.
        With a shared ledger, every step in the batch is measured against the same
        before-state, then all are added.
        """
        penalty = np.empty(len(rows))
        ledger_kernel(
            rows, items, protected, tail, merit_total, merit_protected, self._weights(items.shape[1]), self.target_value,
            self.provider_exposure, self.provider_merit, self.popularity_exposure, self.item_exposure, penalty,
        )  # fmt: skip
        return penalty

    def _weights(self, slate_size: int) -> np.ndarray:
        if self._cached_weights is None or len(self._cached_weights) != slate_size:
            self._cached_weights = position_weights(slate_size)
        return self._cached_weights

    def record_session(self, rows: np.ndarray, user_groups: np.ndarray, utility: np.ndarray) -> np.ndarray:
        """Add finished sessions' utility (engagement) to their user groups; return each one's
        user-side penalty ``(B,)``: ``(gap_after - gap_before) * n`` with ``gap`` the spread of
        the groups' mean session utility (:meth:`group_gaps`) and ``n`` the ledger row's sessions,
        each measured against the same before-state (as :meth:`record` does); 0 for a group's first
        session (it only starts the group's mean)."""
        index = np.arange(len(rows))
        utility_before, sessions_before = self.user_utility[rows], self.user_sessions[rows]  # (B, G) copies
        utility_after, sessions_after = utility_before.copy(), sessions_before.copy()
        utility_after[index, user_groups] += utility
        sessions_after[index, user_groups] += 1.0
        change = self.group_gaps(utility_after, sessions_after) - self.group_gaps(
            utility_before, sessions_before
        )
        first = sessions_before[index, user_groups] == 0  # a group's first session only sets its mean
        np.add.at(self.user_utility, (rows, user_groups), utility)
        np.add.at(self.user_sessions, (rows, user_groups), 1.0)
        return np.where(first, 0.0, change * sessions_after.sum(axis=1))

    @staticmethod
    def group_gaps(utility: np.ndarray, sessions: np.ndarray) -> np.ndarray:
        """``(B,)`` best minus worst mean session utility over each row's user groups that have
        sessions (0 with fewer than two); ``utility``, ``sessions``: ``(B, G)``."""
        seen = sessions > 0
        means = utility / np.where(seen, sessions, 1.0)
        spread = np.where(seen, means, -np.inf).max(axis=1) - np.where(seen, means, np.inf).min(axis=1)
        return np.where(seen.sum(axis=1) > 1, spread, 0.0)

    def shares(self, row: int = 0) -> np.ndarray:
        """``(2,)`` exposure shares of [rest, protected]; sums to 1 once anything was shown."""
        exposure = self.provider_exposure[row]
        return exposure / max(exposure.sum(), 1e-12)

    def metrics(self, row: int = 0) -> dict[str, float]:
        """Exposure Gini over items, protected share and target, and the user-group gap."""
        return {
            "exposure_gini": gini(self.item_exposure[row]),
            "protected_exposure_share": float(self.shares(row)[1]),
            "protected_exposure_target": float(self.target(np.array([row]))[0]),
            "tail_exposure_share": float(
                self.popularity_exposure[row, 1] / max(self.popularity_exposure[row].sum(), 1e-12)
            ),
            "user_group_gap": float(self.group_gaps(self.user_utility[[row]], self.user_sessions[[row]])[0]),
        }
