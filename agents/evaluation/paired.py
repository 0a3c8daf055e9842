"""Paired comparisons: two policies played on the same sessions (the same users with the same
session keys, which ``run_sessions`` guarantees for one seed and count) differ by the mean of
their per-session differences, whose 95% interval is far tighter than the overlap of the two
unpaired intervals (the sessions' own spread cancels).

``d_i = R^A_i - R^B_i``; ``mean(d) +- 1.96 sd(d) / sqrt(n)``. With covariates ``X`` (what was
known of session ``i`` before it began: the user's activity and history), the difference is
regression-adjusted as in CUPED (Deng, Xu, Kohavi & Walker, "Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data", WSDM 2013): ``d_i - (X_i - mean X)
theta`` with ``theta`` the least-squares fit of ``d`` on ``X``, which keeps the mean and removes
the part of the spread the covariates explain; ``variance_reduction`` says how much.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agents.evaluation.sessions import EvaluationResult
from envs.world import RankingWorld
from simulators.core.errors import ConfigError
from simulators.core.metrics import mean_ci95


@dataclass(frozen=True)
class PairedDifference:
    """``A - B`` on the same sessions."""

    mean: float
    """Mean per-session difference of the returns."""
    ci95: tuple[float, float]
    """Its 95% interval (normal approximation over sessions; CUPED-adjusted when covariates were given)."""
    n: int
    """Sessions."""
    sd: float
    """Standard deviation of the per-session difference (after the adjustment)."""
    variance_reduction: float | None = None
    """``1 - var(adjusted) / var(raw)``: the share of the difference's variance the covariates removed."""

    @property
    def verdict(self) -> str:
        """``above 0``, ``below 0`` or ``includes 0``: what the paired interval says."""
        lo, hi = self.ci95
        return "above 0" if lo > 0 else "below 0" if hi < 0 else "includes 0"

    def as_json(self) -> dict[str, Any]:
        """The JSON object of reports (``mean``, ``ci95``, ``n``, ``sd``, ``variance_reduction``)."""
        return {**asdict(self), "ci95": list(self.ci95)}

    def cell(self) -> str:
        """``+0.12 [-0.03, +0.27]`` for tables."""
        return paired_cell(self.as_json())


def paired_cell(diff: Mapping[str, Any] | None, reference: bool = False) -> str:
    """A table's cell for a paired difference in its JSON form (``mean``, ``ci95``, and ``across``
    where it pools seeds): ``+0.12 [-0.03, +0.27]``; ``reference`` for the row compared against,
    empty where there is none."""
    if reference:
        return "reference"
    if not diff:
        return ""
    across = f" ({diff['across']})" if "across" in diff else ""
    return f"{diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]{across}"


def share_of_ceiling(gain: Mapping[str, Any], ceiling: Mapping[str, Any]) -> float | None:
    """``gain``'s mean as a share of ``ceiling``'s, both paired differences to one baseline on the
    same sessions (:meth:`PairedDifference.as_json`); ``None`` unless the ceiling's gain is there,
    its 95% CI above 0."""
    return float(gain["mean"]) / float(ceiling["mean"]) if ceiling["ci95"][0] > 0 else None


def same_sessions(a: EvaluationResult, b: EvaluationResult) -> bool:
    """Whether ``a`` and ``b`` played the same sessions in the same order (users and keys)."""
    return (
        a.users is not None
        and b.users is not None
        and np.array_equal(a.users, b.users)
        and (a.keys is None or b.keys is None or np.array_equal(a.keys, b.keys))
    )


def session_covariates(world: RankingWorld, users: np.ndarray) -> np.ndarray:
    """``(n, 2)`` what is known of each session before it begins, for CUPED: the user's share of
    the logged sessions (log) and the length of their logged history."""
    activity = np.log(np.maximum(world.user_weight[users], 1e-12))
    history = (world.history[users] >= 0).sum(axis=1).astype(np.float64)
    return np.column_stack([activity, history])


def paired_difference(
    a: EvaluationResult, b: EvaluationResult, covariates: np.ndarray | None = None
) -> PairedDifference:
    """``A - B`` on the same sessions (raises :class:`ConfigError` when they played others), CUPED-
    adjusted by ``covariates (n, c)`` when given (see the module docstring)."""
    if not same_sessions(a, b) or len(a.returns) != len(b.returns):
        raise ConfigError(
            "a paired comparison needs both policies on the same sessions (same seed and count)"
        )
    d = a.returns - b.returns
    reduction = None
    if covariates is not None and len(d) > covariates.shape[1] + 2:
        x = covariates - covariates.mean(axis=0)
        theta, *_ = np.linalg.lstsq(x, d - d.mean(), rcond=None)
        adjusted = d - x @ theta
        raw = float(d.var(ddof=1))
        reduction = 1.0 - float(adjusted.var(ddof=1)) / raw if raw > 0 else 0.0
        d = adjusted
    mean, lo, hi = mean_ci95(d)
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return PairedDifference(mean, (lo, hi), len(d), sd, reduction)
