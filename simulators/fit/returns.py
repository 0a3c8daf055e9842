"""Users who come back: the gaps between a user's sessions in the logs, and a censored hazard
model of them (the measurement behind a cross-session retention world).

**The gaps.** A user's sessions in time order; each session but the user's last ends with an
observed gap, the days from its end to the start of the next; the last is right-censored at the
end of the log (the user may return after it). Each session carries what the next visit might
depend on: its like rate (share of clicks), its length (log of 1 + its events), its topic
repetition (share of its events in its most common topic: the boredom a session leaves behind)
and the user's sessions so far (log of 1 + the count).

**The model.** Weibull proportional hazards, ``S(t | x) = exp(-(t / scale)^shape exp(x beta))``:
``beta > 0`` raises the hazard of returning (shorter gaps), ``shape < 1`` makes it fall with
time since the last visit. Fitted by maximum likelihood with censoring,

    log L = sum_i d_i [log shape - shape log scale + (shape - 1) log t_i + x_i beta]
            - sum_i (t_i / scale)^shape exp(x_i beta),

(``d_i`` = 1 for an observed gap), standard errors from the inverse Hessian. ``within=True``
adds each covariate's mean over the user's sessions (Mundlak, *Econometrica* 1978), so that
``beta`` is the effect of a session differing from the user's own usual, not of users differing
from each other (active users both like more and return sooner).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from simulators.core.errors import DataError

COVARIATES = ("like_rate", "log_length", "topic_repeat", "log_sessions_before")
"""What a session passes to the hazard of the user's next visit (the module docstring)."""
SECONDS_PER_DAY = 86_400.0


def session_gaps(interactions: pd.DataFrame, topic: pd.Series | None = None) -> pd.DataFrame:
    """One row per session (``session_id``, ``user_id``, ``start``, ``end`` in days since the
    log's first event, ``gap`` in days, ``observed``, and :data:`COVARIATES`) from a log with
    ``user_id``, ``session_id``, ``timestamp`` (seconds) and ``click``. ``topic`` maps ``item_id``
    to a topic (a genre); without it, topic repetition is the share of the session's most
    repeated item."""
    needed = {"user_id", "session_id", "timestamp", "click", "item_id"}
    if missing := needed - set(interactions.columns):
        raise DataError(f"return gaps need the interactions' {sorted(missing)} columns")
    table = interactions.assign(
        day=(interactions["timestamp"] - interactions["timestamp"].min()) / SECONDS_PER_DAY
    )
    table["topic"] = table["item_id"].map(topic) if topic is not None else table["item_id"]
    grouped = table.groupby("session_id")
    sessions = pd.DataFrame({
        "user_id": grouped["user_id"].first(), "start": grouped["day"].min(), "end": grouped["day"].max(),
        "like_rate": grouped["click"].mean(), "log_length": np.log1p(grouped.size()),
        "topic_repeat": grouped["topic"].agg(lambda s: s.value_counts(normalize=True).iloc[0]),
    }).reset_index()  # fmt: skip
    sessions = sessions.sort_values(["user_id", "start", "session_id"]).reset_index(drop=True)
    by_user = sessions.groupby("user_id")
    sessions["log_sessions_before"] = np.log1p(by_user.cumcount())
    following = by_user["start"].shift(-1)
    log_end = float(table["day"].max())
    sessions["observed"] = following.notna()
    sessions["gap"] = np.where(sessions["observed"], following - sessions["end"], log_end - sessions["end"])
    sessions["gap"] = sessions["gap"].clip(lower=1.0 / 24)  # sessions an hour apart or less: one hour
    return sessions


@dataclass(frozen=True)
class ReturnModel:
    """A fitted Weibull proportional-hazards model of the gap to a user's next session."""

    shape: float
    """Weibull shape (< 1: the chance of returning falls with time since the last visit)."""
    scale: float
    """Weibull scale in days at covariates 0."""
    names: tuple[str, ...]
    """The covariates, in the order of ``beta``."""
    beta: tuple[float, ...]
    """Log hazard ratio per unit of each covariate (> 0: returns sooner)."""
    se: tuple[float, ...]
    """Standard errors of ``log shape``, ``log scale`` and each ``beta``, in that order."""
    n: int
    """Sessions fitted."""
    observed: int
    """Of them, those with an observed gap (the others are censored)."""
    log_likelihood: float
    """At the optimum."""

    def survival(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``P(gap > t | x)``: ``(n,)`` days against ``(n, len(names))`` covariates."""
        return np.exp(
            -((np.asarray(t) / self.scale) ** self.shape) * np.exp(np.asarray(x) @ np.array(self.beta))
        )

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One gap in days per row of ``x`` (inverse-transform of :meth:`survival`)."""
        u = rng.random(len(x))
        return self.scale * (-np.log(u) * np.exp(-np.asarray(x) @ np.array(self.beta))) ** (1.0 / self.shape)


def fit_returns(gaps: np.ndarray, observed: np.ndarray, x: np.ndarray, names: tuple[str, ...]) -> ReturnModel:
    """Maximum-likelihood :class:`ReturnModel` of ``(n,)`` gaps in days (``observed`` False where
    censored) on ``(n, p)`` covariates ``x`` named ``names`` (module docstring)."""
    t = np.asarray(gaps, dtype=np.float64)
    d = np.asarray(observed, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(t), -1)
    if len(t) < 2 or not np.all(np.isfinite(t)) or np.any(t <= 0) or not d.any():
        raise DataError("a return model needs positive, finite gaps and at least one observed return")
    log_t = np.log(t)

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_k, log_scale, beta = theta[0], theta[1], theta[2:]
        k = np.exp(log_k)
        eta = x @ beta
        z = k * (log_t - log_scale)
        cumulative = np.exp(np.clip(z + eta, -700, 700))
        value = -(d * (log_k - log_scale + (k - 1) * log_t - (k - 1) * log_scale + eta) - cumulative).sum()
        # d/dlog_k of [d (log_k + (k-1)(log_t - log_scale)) - exp(z + eta)] with z = k (log_t - log_scale)
        grad_log_k = -(d * (1 + k * (log_t - log_scale)) - cumulative * z).sum()
        grad_log_scale = -(-d * k + cumulative * k).sum()
        grad_beta = -(x * (d - cumulative)[:, None]).sum(axis=0)
        return float(value), np.concatenate([[grad_log_k, grad_log_scale], grad_beta])

    start = np.concatenate([[0.0, float(np.log(np.mean(t)))], np.zeros(x.shape[1])])
    result = optimize.minimize(
        negative, start, jac=True, method="BFGS", options={"gtol": 1e-7, "maxiter": 2000}
    )
    hessian = _numerical_hessian(lambda theta: negative(theta)[1], result.x)
    try:
        covariance = np.linalg.inv(hessian)
        se = np.sqrt(np.clip(np.diag(covariance), 0, None))
    except np.linalg.LinAlgError:
        se = np.full(len(result.x), np.nan)
    return ReturnModel(
        shape=float(np.exp(result.x[0])), scale=float(np.exp(result.x[1])), names=tuple(names),
        beta=tuple(float(b) for b in result.x[2:]), se=tuple(float(s) for s in se), n=len(t),
        observed=int(d.sum()), log_likelihood=-float(result.fun),
    )  # fmt: skip


def _numerical_hessian(
    gradient: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """The symmetrised central-difference Jacobian of ``gradient`` at ``theta``."""
    columns = []
    for j in range(len(theta)):
        e = np.zeros_like(theta)
        e[j] = step
        columns.append((gradient(theta + e) - gradient(theta - e)) / (2 * step))
    h = np.array(columns)
    return (h + h.T) / 2


def design(sessions: pd.DataFrame, within: bool = True) -> tuple[np.ndarray, tuple[str, ...]]:
    """The covariates of :func:`session_gaps`' rows, centred, with each one's per-user mean
    beside it when ``within`` (the Mundlak device of the module docstring)."""
    columns = {name: sessions[name] - sessions[name].mean() for name in COVARIATES}
    if within:
        for name in COVARIATES:
            user_mean = sessions.groupby("user_id")[name].transform("mean")
            columns[f"user_mean_{name}"] = user_mean - user_mean.mean()
    frame = pd.DataFrame(columns)
    return frame.to_numpy(np.float64), tuple(frame.columns)


def kaplan_meier(gaps: np.ndarray, observed: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The Kaplan-Meier estimate of ``P(gap > t)`` at each of ``at`` (days)."""
    order = np.argsort(gaps, kind="stable")
    t, d = np.asarray(gaps)[order], np.asarray(observed, dtype=bool)[order]
    times = np.unique(t[d])
    at_risk = len(t) - np.searchsorted(t, times, side="left")
    events = np.array([np.sum((t == u) & d) for u in times])
    curve = np.cumprod(1.0 - events / at_risk)
    index = np.searchsorted(times, at, side="right") - 1
    return np.where(index >= 0, curve[np.clip(index, 0, None)], 1.0)
