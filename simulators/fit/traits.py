"""Users who differ, recovered from the logs: each user's boredom scale and leave offset
(:class:`~simulators.dynamics.UserTraits`).

Two covariates the logs reveal:

- *breadth*: the normalised topic entropy of a user's logged clicks (:func:`history_breadth`).
  The boredom of a user scales as ``exp(beta * (breadth - mean breadth))``; ``beta`` is fitted
  with the click calibration (the view term scaled per user), kept only when it pays its
  parameter by BIC on the validation split (:func:`fit_breadth_boredom`).
- *their own sessions*: a per-user random intercept of the leave hazard, ``b_u ~ N(0, tau^2)``,
  estimated by penalised Newton steps on the user's training sessions; ``tau`` is chosen by the
  held-out (validation) likelihood of leaving, ``tau = 0`` (no offsets) included
  (:func:`fit_patience`). These offsets start the whole-session fit; by default
  (``FitConfig.random_effects``) it integrates the offsets out and fits their spread itself,
  and the simulator plays its posterior means instead (:mod:`simulators.fit.sessions`).

One approximation: the calibration scales only the view term of boredom; the simulator scales
every boredom increment, clicks' too, by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators.data.steps import StepTable
from simulators.dynamics import DynamicsParams, UserTraits, sigmoid
from simulators.fit.calibration import Calibration, fit_calibration
from simulators.fit.leave import leave_design
from simulators.fit.sessions import SessionFit

BREADTH_GRID = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
"""Slopes of log boredom scale on (breadth - mean breadth) tried with the calibration."""
PATIENCE_GRID = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0)
"""Prior standard deviations of the per-user leave offset tried."""


def history_breadth(history: np.ndarray, item_topic: np.ndarray, n_topics: int) -> np.ndarray:
    """``(n_users,)`` normalised entropy (in [0, 1]) of the topics of each user's history
    ``(n_users, H)`` (catalog rows, -1 pad); NaN for users with fewer than two items."""
    valid = history >= 0
    topics = np.where(valid, item_topic[np.maximum(history, 0)], 0)
    counts = np.zeros((len(history), n_topics))
    np.add.at(counts, (np.repeat(np.arange(len(history)), history.shape[1]), topics.ravel()), valid.ravel())
    total = counts.sum(axis=1, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    breadth = entropy / np.log(max(n_topics, 2))
    return np.where(total[:, 0] >= 2, breadth, np.nan)


def centred_breadth(breadth: np.ndarray) -> np.ndarray:
    """Breadth minus its mean over users who have one; 0 (the mean) for those who do not."""
    known = np.isfinite(breadth)
    mean = float(breadth[known].mean()) if known.any() else 0.0
    return np.where(known, breadth - mean, 0.0)


def fit_breadth_boredom(
    static: np.ndarray,
    theta: np.ndarray,
    views: np.ndarray,
    clicked: np.ndarray,
    steps: StepTable,
    retention: float,
    breadth: np.ndarray,
    base: Calibration,
) -> tuple[float, Calibration, dict[str, float]]:
    """The slope ``beta`` (of :data:`BREADTH_GRID`) that best explains clicks with the view term
    scaled by ``exp(beta * breadth[user])`` (``breadth``: centred, ``(n_users,)``), and its
    calibration. ``beta = 0`` (``base``) unless another lowers ``n * NLL`` by more than the BIC
    penalty ``log(n) / 2`` of one parameter. Returns ``(beta, calibration, NLL per beta)``."""
    n = int(steps.slot_mask.sum())
    scores = {0.0: base}
    for beta in BREADTH_GRID:
        if beta != 0.0:
            scale = np.exp(beta * breadth[steps.user])[:, None]
            scores[beta] = fit_calibration(static, theta, views * scale, clicked, steps, retention)
    best = min(scores, key=lambda b: scores[b].valid_nll)
    if n * (base.valid_nll - scores[best].valid_nll) <= 0.5 * np.log(n):
        best = 0.0
    return best, scores[best], {f"{b:g}": round(c.valid_nll, 6) for b, c in scores.items()}


@dataclass
class PatienceFit:
    """Per-user leave offsets and how their spread was chosen."""

    offsets: np.ndarray
    """``(n_users,)`` float64 leave-logit offsets (0 for users with no training sessions)."""
    tau: float
    """The chosen prior standard deviation."""
    valid_nll: dict[str, float]
    """Held-out mean NLL of leaving per ``tau`` tried."""


def _population_logit(
    steps: StepTable, topics: np.ndarray, params: DynamicsParams, cap: int, traits: UserTraits
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fitted hazard's logit on each logged step (``params``' boredom includes clicks'),
    with the leave flags and the uncensored mask of :func:`leave_design`."""
    features, leave, keep = leave_design(steps, topics, params, cap, traits)
    logit = (
        params.leave_bias
        + params.leave_per_boredom * features[:, 1]
        + params.leave_if_no_click * features[:, 3]
        + params.leave_per_click * features[:, 4]
    )
    if steps.session_first is not None:  # a first visit's own term, as the whole-session fit has it
        logit = logit + params.leave_first_session * steps.session_first[steps.session]
    return logit, leave, keep


def _offsets(user: np.ndarray, logit: np.ndarray, leave: np.ndarray, n_users: int, tau: float) -> np.ndarray:
    """Posterior modes of ``b_u`` under ``N(0, tau^2)`` by Newton's method (vectorised over users;
    steps clipped to +-1 logit, as a logistic Newton step can overshoot from 0)."""
    b = np.zeros(n_users)
    if tau <= 0:
        return b
    for _ in range(50):
        p = sigmoid(logit + b[user])
        gradient = np.bincount(user, weights=leave - p, minlength=n_users) - b / tau**2
        curvature = np.bincount(user, weights=p * (1 - p), minlength=n_users) + 1 / tau**2
        step = np.clip(gradient / curvature, -1.0, 1.0)
        b += step
        if np.abs(step).max() < 1e-8:
            break
    return b


def fit_patience(
    train: StepTable,
    valid: StepTable,
    topics: np.ndarray,
    params: DynamicsParams,
    cap: int,
    traits: UserTraits,
) -> PatienceFit:
    """Per-user leave offsets from the training sessions, their prior spread chosen by the
    validation split's likelihood (see the module docstring). ``traits`` give the boredom
    scales (their offsets are ignored)."""
    n_users = len(traits.boredom_scale)
    logit, leave, keep = _population_logit(train, topics, params, cap, traits)
    v_logit, v_leave, v_keep = _population_logit(valid, topics, params, cap, traits)
    if not np.any(v_keep):  # no held-out step at risk of leaving (e.g. one-step sessions): the least spread
        tau = min(PATIENCE_GRID)
        return PatienceFit(_offsets(train.user[keep], logit[keep], leave[keep], n_users, tau), tau, {})
    scores: dict[float, float] = {}
    fits: dict[float, np.ndarray] = {}
    for tau in PATIENCE_GRID:
        fits[tau] = _offsets(train.user[keep], logit[keep], leave[keep], n_users, tau)
        p = np.clip(sigmoid(v_logit[v_keep] + fits[tau][valid.user[v_keep]]), 1e-9, 1 - 1e-9)
        y = v_leave[v_keep]
        scores[tau] = float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())
    tau = min(scores, key=lambda t: scores[t])
    return PatienceFit(fits[tau], tau, {f"{t:g}": round(s, 6) for t, s in scores.items()})


def traits_report(
    beta: float, breadth_nll: dict[str, float], patience: PatienceFit, session_fit: SessionFit | None = None
) -> dict[str, Any]:
    """What the fit chose, for ``fidelity.json``: with the whole-session fit's random effects,
    their fitted spreads and the spread of their posterior means (the offsets the simulator
    plays)."""
    report: dict[str, Any] = {
        "breadth_boredom_slope": beta,
        "breadth_search_valid_nll": breadth_nll,
        "patience_prior_sd": patience.tau,
        "patience_search_valid_nll": patience.valid_nll,
        "leave_offset_sd": round(float(patience.offsets.std()), 4),
    }
    if (
        session_fit is not None
        and session_fit.leave_offsets is not None
        and session_fit.interests is not None
    ):
        report |= {
            "patience_prior_sd": round(float(session_fit.patience_sd or 0.0), 4),
            "patience_search_valid_nll": {},
            "leave_offset_sd": round(float(session_fit.leave_offsets.std()), 4),
            "interest_prior_sd": round(float(session_fit.interest_sd or 0.0), 4),
            "interest_sd": round(float(session_fit.interests.std()), 4),
            "session_leave_sd": round(float(session_fit.session_sd or 0.0), 4),
        }
    return report
