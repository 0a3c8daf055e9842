"""Users who come back, at run time: what a session passes on to the user's next visit, and
the Weibull proportional-hazards model of the gap until it, in numpy.

The shop's ground truth (:class:`~simulators.shop.config.ShopReturns`), the model fitted from the
logs' gaps (:class:`~simulators.fit.returns.ReturnModel`) and the retention environment share
these equations:

    S(t | x) = exp(-[H(t) - H(m)]),   H(t) = (t / scale)^shape exp(eta),   t >= m,
    eta = (x - centre) . beta + offset,

with ``t`` the days from a session's end to the next session's start, ``x`` the session's
:data:`COVARIATES`, ``offset`` a user's own log hazard ratio (their activity) and ``m`` the
shortest gap (:data:`MIN_GAP_DAYS`: visits closer than an hour are one session, the MovieLens
loader's rule, so no gap is shorter; the Weibull is truncated there, and fitted so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COVARIATES = ("like_rate", "log_length", "topic_repeat", "log_sessions_before")
"""What a session passes to the hazard of the user's next visit: its like rate (share of its
events clicked), its length (log of 1 + its events), its topic repetition (share of its events
in its most common topic) and the user's sessions before it (log of 1 + the count)."""


SECONDS_PER_DAY = 86_400.0
"""Log timestamps are seconds; gaps and horizons are days."""
MIN_GAP_DAYS = 1.0 / 24
"""The shortest gap between two sessions: an hour (closer visits are one session)."""


def session_covariates(
    events: np.ndarray, clicks: np.ndarray, top_topic_events: np.ndarray, sessions_before: np.ndarray
) -> np.ndarray:
    """``(n, 4)`` :data:`COVARIATES` of ``n`` sessions from their counts: events (items shown),
    clicks, events in the session's most common topic and the user's earlier sessions."""
    events = np.asarray(events, dtype=np.float64)
    shown = np.maximum(events, 1.0)
    return np.column_stack([
        np.asarray(clicks, dtype=np.float64) / shown, np.log1p(events),
        np.asarray(top_topic_events, dtype=np.float64) / shown, np.log1p(np.asarray(sessions_before, np.float64)),
    ])  # fmt: skip


def cumulative_hazard(t: np.ndarray | float, shape: float, scale: float, eta: np.ndarray) -> np.ndarray:
    """``H(t) = (t / scale)^shape exp(eta)``, so ``S(t) = exp(-H(t))``."""
    return (np.asarray(t, dtype=np.float64) / scale) ** shape * np.exp(eta)


def sample_gaps(
    shape: float, scale: float, eta: np.ndarray, uniforms: np.ndarray, elapsed: np.ndarray | float = 0.0
) -> np.ndarray:
    """Gaps in days by inverting the survival at ``uniforms (n,)`` in (0, 1], given no return
    for ``elapsed`` days: the ``t`` with ``H(elapsed + t) = H(elapsed) - log u``. A truncated
    model's gaps are ``m`` plus those drawn with ``elapsed = m``."""
    eta = np.asarray(eta, dtype=np.float64)
    start = cumulative_hazard(elapsed, shape, scale, eta)
    total = start - np.log(np.asarray(uniforms, dtype=np.float64))
    return scale * (total * np.exp(-eta)) ** (1.0 / shape) - np.asarray(elapsed, dtype=np.float64)


def truncated_survival(
    t: np.ndarray, shape: float, scale: float, eta: np.ndarray, min_gap: float
) -> np.ndarray:
    """``P(gap > t)`` of the model truncated at ``min_gap``: ``exp(-[H(t) - H(min_gap)])``, 1 below it."""
    t = np.maximum(np.asarray(t, dtype=np.float64), min_gap)
    return np.exp(-(cumulative_hazard(t, shape, scale, eta) - cumulative_hazard(min_gap, shape, scale, eta)))


def truncated_gaps(
    shape: float, scale: float, eta: np.ndarray, uniforms: np.ndarray, min_gap: float
) -> np.ndarray:
    """Gaps of the model truncated at ``min_gap``, from ``uniforms`` in (0, 1]."""
    return min_gap + sample_gaps(shape, scale, eta, uniforms, min_gap)


@dataclass(frozen=True)
class ReturnProcess:
    """A return model bound to a population: the equations of the module docstring with every
    user's own ``offset``. The shop's truth and the fit of a world's logs each give one
    (:meth:`~simulators.shop.world.ShopWorld.return_process`,
    :func:`~simulators.fit.returns.fit_return_process`)."""

    shape: float
    """Weibull shape."""
    scale: float
    """Weibull scale in days at ``centre`` and offset 0."""
    beta: np.ndarray
    """``(4,)`` log hazard ratio per unit of each of :data:`COVARIATES`."""
    centre: np.ndarray
    """``(4,)`` the covariates at which ``scale`` holds."""
    user_offset: np.ndarray
    """``(n_users,)`` each user's own log hazard ratio."""
    min_gap: float = MIN_GAP_DAYS
    """The shortest gap in days, where the Weibull is truncated (0: none)."""

    def eta(self, x: np.ndarray, users: np.ndarray) -> np.ndarray:
        """``(n,)`` log hazard ratios of sessions with covariates ``x (n, 4)`` of ``users (n,)``."""
        return (np.asarray(x, dtype=np.float64) - self.centre) @ self.beta + self.user_offset[users]

    def gaps(self, x: np.ndarray, users: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """``(n,)`` days to each user's next session after sessions ``x``, from ``uniforms`` in (0, 1]."""
        return truncated_gaps(self.shape, self.scale, self.eta(x, users), uniforms, self.min_gap)

    def survival(self, t: np.ndarray, x: np.ndarray, users: np.ndarray) -> np.ndarray:
        """``P(gap > t)`` after sessions ``x`` of ``users``."""
        return truncated_survival(t, self.shape, self.scale, self.eta(x, users), self.min_gap)


def visit_scale(
    shape: float, beta: np.ndarray, centre: np.ndarray, offset: np.ndarray, days: float, sessions: float,
    rng: np.random.Generator, min_gap: float = MIN_GAP_DAYS,
) -> float:  # fmt: skip
    """The Weibull scale at which users of log hazard ratios ``offset (n_users,)`` start
    ``sessions`` sessions within ``days`` in expectation, each session at the covariates' ``centre``
    but for the sessions before it (counted). Each user's previous visit was ``U(0, days)`` days
    before day 0 (as the shop's logs start). By bisection on the log scale with common random numbers."""
    n = len(offset)
    elapsed, first = rng.uniform(0, days, n), 1.0 - rng.random(n)
    later = 1.0 - rng.random((64, n))  # the uniforms of up to 64 further visits per user

    users = np.arange(n)

    def visits(scale: float) -> float:
        process = ReturnProcess(shape, scale, beta, centre, offset, min_gap)
        x = np.tile(centre, (n, 1))
        x[:, 3] = 0.0
        at = sample_gaps(shape, scale, process.eta(x, users), first, elapsed)
        count = np.zeros(n)
        for j in range(later.shape[0]):
            inside = at < days
            if not inside.any():
                break
            count += inside
            x[:, 3] = np.log1p(j + 1)
            at = at + process.gaps(x, users, later[j])
        return float(count.sum())

    low, high = np.log(1e-3), np.log(1e5)
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if visits(float(np.exp(middle))) > sessions else (low, middle)
    return float(np.exp((low + high) / 2))
