"""The leave hazard fitted from logged session ends: logistic regression on the replayed
session state (sessions that hit the cap are censored)."""

from __future__ import annotations

import numpy as np

from simulators import dynamics
from simulators.data.steps import StepTable
from simulators.dynamics import DynamicsParams, UserTraits, sigmoid
from simulators.rollout import replay


def irls(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, iterations: int = 25) -> np.ndarray:
    """Logistic regression by Newton's method (a tiny ridge keeps it well posed)."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = sigmoid(x @ w)
        gradient = x.T @ (p - y) + ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def leave_design(
    steps: StepTable, topics: np.ndarray, params: DynamicsParams, cap: int, traits: UserTraits | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The leave regression's inputs on logged steps: features ``(S, 5)`` (1, mean boredom, mean
    recent clicks of the slate's topics, [no click], clicks), leave ``(S,)`` 0/1, and which
    steps count (``(S,)`` bool: steps at the cap are censored)."""
    n_topics = int(topics.max()) + 1
    recent_clicks = np.zeros((steps.n_sessions, n_topics))
    features = np.zeros((len(steps.user), 5))
    for part in replay(steps, topics, params, traits):
        rows, sessions, topic, shown = part.rows, part.sessions, part.topics, part.shown
        clicks = steps.clicks[rows] * shown
        recent_clicks[sessions] = recent_clicks[
            sessions
        ] * params.boredom_retention + dynamics.slate_category_counts(topic, clicks, n_topics)
        boredom = np.take_along_axis(part.after.boredom, topic, axis=1)
        clicked = np.take_along_axis(recent_clicks[sessions], topic, axis=1)
        count = np.maximum(shown.sum(1), 1)
        n_clicks = clicks.sum(1)
        features[rows] = np.column_stack(
            [
                np.ones(len(rows)),
                (boredom * shown).sum(1) / count,
                (clicked * shown).sum(1) / count,
                n_clicks == 0,
                n_clicks,
            ]
        )
    last = steps.step == steps.session_length[steps.session] - 1
    censored = last & (steps.session_length[steps.session] >= cap)
    return features, last.astype(np.float64), ~censored


def fit_leave_hazard(
    steps: StepTable, topics: np.ndarray, params: DynamicsParams, cap: int, traits: UserTraits | None = None
) -> dict[str, float] | None:
    """Leave logit = bias + a * mean boredom + a_c * mean recent clicks of the slate's topics
    + b * [no click] + c * clicks, on logged steps (``params`` gives boredom and the retention).

    A step is a leave when it ends its session before the cap; steps at the cap are censored.
    The click term lets leaving depend on boredom from clicks, which the click model alone
    cannot tell from interest drift; it is returned as ``boredom_per_click = a_c / a`` (0
    unless both are positive). Returns ``None`` when sessions all have one length.
    """
    if len(np.unique(steps.session_length)) < 2:
        return None
    features, leave, keep = leave_design(steps, topics, params, cap, traits)
    w = irls(features[keep], leave[keep])
    per_boredom, per_click_topic = float(w[1]), float(w[2])
    click_boredom = per_click_topic / per_boredom if per_boredom > 0 and per_click_topic > 0 else 0.0
    if click_boredom == 0.0 and per_click_topic > 0:  # no view-boredom effect: carry it by clicks alone
        per_boredom, click_boredom = per_click_topic, 1.0
    return {
        "leave_bias": float(w[0]),
        "leave_per_boredom": per_boredom,
        "boredom_per_click": click_boredom,
        "leave_if_no_click": float(w[3]),
        "leave_per_click": float(w[4]),
    }
