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
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from simulators.core.errors import DataError
from simulators.data.logs import LoggedData
from simulators.retention import (
    COVARIATES,
    MIN_GAP_DAYS,
    SECONDS_PER_DAY,
    ReturnProcess,
    truncated_gaps,
    truncated_survival,
)


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
    sessions["gap"] = sessions["gap"].clip(lower=MIN_GAP_DAYS)  # sessions an hour apart or less: one hour
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
    min_gap: float = 0.0
    """Days below which no gap can be (the model is truncated there; 0: none)."""
    frailty_variance: float = 0.0
    """Variance of the users' shared gamma frailty (0: none fitted; ``se`` then ends with its log's)."""

    def survival(self, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``P(gap > t | x)``: ``(n,)`` days against ``(n, len(names))`` covariates."""
        return truncated_survival(
            t, self.shape, self.scale, np.asarray(x) @ np.array(self.beta), self.min_gap
        )

    def sample(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One gap in days per row of ``x`` (inverse-transform of :meth:`survival`)."""
        eta = np.asarray(x) @ np.array(self.beta)
        return truncated_gaps(self.shape, self.scale, eta, 1.0 - rng.random(len(x)), self.min_gap)


def fit_returns(
    gaps: np.ndarray,
    observed: np.ndarray,
    x: np.ndarray,
    names: tuple[str, ...],
    min_gap: float = 0.0,
    users: np.ndarray | None = None,
) -> ReturnModel:
    """Maximum-likelihood :class:`ReturnModel` of ``(n,)`` gaps in days (``observed`` False where
    censored) on ``(n, p)`` covariates ``x`` named ``names`` (module docstring); with ``min_gap``
    > 0, of the model truncated there (no gap is shorter: each term's cumulative hazard counts
    from ``min_gap``, ``H(t) - H(min_gap)``). With ``users (n,)``, each user's gaps share a gamma
    frailty ``w ~ Gamma(1/theta, 1/theta)`` (mean 1, variance ``theta``) multiplying their hazard,
    integrated out (Clayton, *Biometrika* 1978): user ``i`` with ``D`` returns and cumulative
    hazard ``L`` adds ``a log a - lgamma(a) + lgamma(a + D) - (a + D) log(a + L)``, ``a = 1 / theta``
    (:func:`frailty_posterior` gives each user's ``w`` given their gaps)."""
    t = np.asarray(gaps, dtype=np.float64)
    d = np.asarray(observed, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).reshape(len(t), -1)
    if len(t) < 2 or not np.all(np.isfinite(t)) or np.any(t <= 0) or not d.any():
        raise DataError("a return model needs positive, finite gaps and at least one observed return")
    if np.any(t < min_gap):
        raise DataError(f"a gap is shorter than the model's shortest ({min_gap:g} days)")
    log_t = np.log(t)
    p = x.shape[1]
    inverse = None if users is None else np.unique(np.asarray(users), return_inverse=True)[1]

    def negative(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_k, log_scale, beta = theta[0], theta[1], theta[2 : 2 + p]
        k = np.exp(log_k)
        terms = _weibull_terms(log_k, log_scale, x @ beta, log_t, min_gap)
        if inverse is None:
            weight, frailty, frailty_grad = np.ones_like(t), -terms.hazard.sum(), []
        else:
            a = np.exp(-theta[-1])
            events, exposure = np.bincount(inverse, d), np.bincount(inverse, terms.hazard)
            frailty = (a * np.log(a) - special.gammaln(a) + special.gammaln(a + events)
                       - (a + events) * np.log(a + exposure)).sum()  # fmt: skip
            weight = ((a + events) / (a + exposure))[inverse]  # each user's posterior mean frailty
            d_a = (np.log(a) + 1 - special.digamma(a) + special.digamma(a + events) - np.log(a + exposure)
                   - (a + events) / (a + exposure)).sum()  # fmt: skip
            frailty_grad = [a * d_a]  # -d/dlog theta, with a = exp(-log theta)
        value = -((d * terms.log_hazard).sum() + frailty)
        grad_log_k = -(d * (1 + terms.z) - weight * terms.hazard_z).sum()
        grad_log_scale = -(-d * k + weight * terms.hazard * k).sum()
        grad_beta = -(x * (d - weight * terms.hazard)[:, None]).sum(axis=0)
        return float(value), np.concatenate([[grad_log_k, grad_log_scale], grad_beta, frailty_grad])

    start = np.concatenate([[0.0, float(np.log(np.mean(t)))], np.zeros(p), [] if inverse is None else [0.0]])
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
        beta=tuple(float(b) for b in result.x[2 : 2 + p]), se=tuple(float(s) for s in se), n=len(t),
        observed=int(d.sum()), log_likelihood=-float(result.fun), min_gap=float(min_gap),
        frailty_variance=0.0 if inverse is None else float(np.exp(result.x[-1])),
    )  # fmt: skip


@dataclass(frozen=True)
class _WeibullTerms:
    log_hazard: np.ndarray
    """``log h(t)``: the log density's hazard part of each gap."""
    hazard: np.ndarray
    """``H(t) - H(min_gap)``: each gap's cumulative hazard from the shortest gap."""
    z: np.ndarray
    """``shape (log t - log scale)``."""
    hazard_z: np.ndarray
    """``d hazard / d log shape``."""


def _weibull_terms(
    log_k: float, log_scale: float, eta: np.ndarray, log_t: np.ndarray, min_gap: float
) -> _WeibullTerms:
    """The pieces of the Weibull proportional-hazards likelihood and its gradient at ``eta``."""
    k = np.exp(log_k)
    z = k * (log_t - log_scale)
    cumulative = np.exp(np.clip(z + eta, -700, 700))
    hazard, hazard_z = cumulative.copy(), cumulative * z
    if min_gap > 0:  # truncated: the hazard counts from the shortest gap
        z0 = k * (np.log(min_gap) - log_scale)
        cumulative0 = np.exp(np.clip(z0 + eta, -700, 700))
        hazard -= cumulative0
        hazard_z -= cumulative0 * z0
    return _WeibullTerms(log_k - log_scale + (k - 1) * (log_t - log_scale) + eta, hazard, z, hazard_z)


def frailty_posterior(
    model: ReturnModel, gaps: np.ndarray, observed: np.ndarray, x: np.ndarray, users: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's frailty given their gaps under ``model`` (fitted with ``users``): the distinct
    users and the shape and rate of their posterior gamma, ``a + D`` and ``a + L``."""
    if model.frailty_variance <= 0:
        raise DataError("the return model has no frailty: fit it with users=")
    codes, inverse = np.unique(np.asarray(users), return_inverse=True)
    eta = np.asarray(x, dtype=np.float64) @ np.array(model.beta)
    terms = _weibull_terms(
        np.log(model.shape), np.log(model.scale), eta, np.log(np.asarray(gaps, np.float64)), model.min_gap
    )
    a = 1.0 / model.frailty_variance
    return (
        codes,
        a + np.bincount(inverse, np.asarray(observed, np.float64)),
        a + np.bincount(inverse, terms.hazard),
    )


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


def fit_return_process(logs: LoggedData, item_topic: np.ndarray) -> ReturnProcess:
    """The return model of ``logs`` as a :class:`~simulators.retention.ReturnProcess` for their
    users (:func:`fit_sessions_process` on :func:`session_gaps`, topics from ``item_topic``, the
    simulator's, by catalog row)."""
    return fit_sessions_process(
        session_gaps(logs.interactions, topic_of(logs, item_topic)), logs.users["user_id"]
    )[0]


def topic_of(logs: LoggedData, item_topic: np.ndarray) -> pd.Series:
    """Each of the logs' items' topic by item id, from ``item_topic`` by catalog row."""
    return pd.Series(np.asarray(item_topic)[: logs.n_items], index=logs.items["item_id"].to_numpy())


def fit_sessions_process(
    sessions: pd.DataFrame, user_ids: pd.Series | np.ndarray
) -> tuple[ReturnProcess, ReturnModel]:
    """A :class:`~simulators.retention.ReturnProcess` for the users ``user_ids`` (in that order)
    fitted on :func:`session_gaps` rows: the session's covariates about their mean, a gamma
    frailty shared by each user's gaps (:func:`fit_returns` with ``users``), truncated at
    :data:`~simulators.retention.MIN_GAP_DAYS`. A user's offset is the log of their posterior
    mean frailty (:func:`frailty_posterior`), so the process keeps who comes back often; a user
    without a session has the prior's, 0. Also the fitted model itself (its effects' errors)."""
    centre = sessions[list(COVARIATES)].mean().to_numpy()
    x = sessions[list(COVARIATES)].to_numpy() - centre
    gaps, observed, users = (
        sessions["gap"].to_numpy(),
        sessions["observed"].to_numpy(),
        sessions["user_id"].to_numpy(),
    )
    model = fit_returns(gaps, observed, x, COVARIATES, MIN_GAP_DAYS, users=users)
    codes, shape, rate = frailty_posterior(model, gaps, observed, x, users)
    offset = np.zeros(len(user_ids))
    rows = pd.Index(np.asarray(user_ids)).get_indexer(codes)
    offset[rows[rows >= 0]] = np.log(shape / rate)[rows >= 0]
    return ReturnProcess(model.shape, model.scale, np.array(model.beta), centre, offset, MIN_GAP_DAYS), model


def held_out_distance(
    sessions: pd.DataFrame,
    at: np.ndarray,
    user_ids: pd.Series | np.ndarray | None = None,
    process: ReturnProcess | None = None,
    held_out: float = 1 / 3,
) -> dict[str, float]:
    """How well the return model predicts gaps it never saw: fitted (:func:`fit_sessions_process`)
    on the sessions that start in the first ``1 - held_out`` of the log's days (their gaps
    censored at that cut), it predicts the gaps of the sessions that start after it, each with its
    user's frailty from before (``process``, for users ``user_ids`` in its order: that model
    instead, e.g. the shop's truth). Reported: the largest distance, over the days of ``at`` that
    the held-out days can show (no later than their length), between those sessions' Kaplan-Meier
    return curve and the model's (the mean of each session's survival): the KS statistic with
    censoring."""
    begin, end = float(sessions["start"].min()), float(sessions["end"].max())
    cut = begin + (1 - held_out) * (end - begin)
    late = sessions[sessions["start"] >= cut]
    ids = pd.Index(np.unique(sessions["user_id"].to_numpy()) if user_ids is None else np.asarray(user_ids))
    if process is None:
        early = sessions[sessions["start"] < cut].copy()
        back = early["end"] + early["gap"]
        early["observed"] = early["observed"] & (back < cut)
        early["gap"] = np.where(early["observed"], early["gap"], np.maximum(cut - early["end"], MIN_GAP_DAYS))
        process = fit_sessions_process(early, ids.to_numpy())[0]
    rows = ids.get_indexer(late["user_id"].to_numpy())
    if (rows < 0).any():
        raise DataError("held_out_distance: a session's user is not among user_ids")
    x = late[list(COVARIATES)].to_numpy()
    at = np.asarray(at)[np.asarray(at) <= end - cut]
    curve = kaplan_meier(late["gap"].to_numpy(), late["observed"].to_numpy(), at)
    fitted = np.array([process.survival(np.full(len(late), t), x, rows).mean() for t in at])
    return {
        "ks": float(np.abs(fitted - curve).max()), "held_out_sessions": len(late), "cut_day": cut,
        "held_out_days": end - cut,
    }  # fmt: skip


RETURN_GRID = np.geomspace(MIN_GAP_DAYS, 365.0, 200)
"""Days at which return curves are compared (an hour to a year)."""


def return_fidelity(
    logs: LoggedData, item_topic: np.ndarray, truth: ReturnProcess | None = None
) -> dict[str, Any]:
    """The fit report's return figures (``fidelity.json``): :func:`held_out_distance` of the model
    fitted on the logs' first two thirds (``return_gap_ks``), and of ``truth`` (the shop's true
    model, ``return_gap_ks_ground_truth``) on the same sessions; empty for logs where no user
    comes back."""
    sessions = session_gaps(logs.interactions, topic_of(logs, item_topic))
    try:
        fitted = held_out_distance(sessions, RETURN_GRID, logs.users["user_id"])
    except DataError:
        return {}
    report: dict[str, Any] = {
        "return_gap_ks": fitted["ks"],
        "return_held_out_sessions": fitted["held_out_sessions"],
    }
    if truth is not None:
        report["return_gap_ks_ground_truth"] = held_out_distance(
            sessions, RETURN_GRID, logs.users["user_id"], process=truth
        )["ks"]
    return report
