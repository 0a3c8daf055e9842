"""The dynamics fitted by the likelihood of whole sessions.

Step-wise regressions fit the click model's dynamics with one retention shared by interest drift
and boredom, so a click's two effects (more interest in its topic, more boredom with it) are not
told apart in the click model; the leave regression then guesses the boredom clicks add. Here
every coefficient of :class:`~simulators.dynamics.DynamicsParams` is fitted at once, by maximum
likelihood of the logged sessions as they unfolded: each slot's click given the state the
session's earlier slates and clicks left, and each step's leaving (or staying) given the state
after it (sessions that reach the logs' cap are censored). Drift and boredom keep retentions of
their own, so their different memories separate them in the clicks, and boredom (not drift)
drives the leave hazard, which separates them again. The user traits (boredom scale, leave
offset) enter as known per-user factors.

The click part is scored on sessions the response network did not train on (its static logits
there are honest), the leave part on every session given (it needs no static logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from simulators.data.steps import StepTable
from simulators.dynamics import DynamicsParams


@dataclass(frozen=True)
class SessionFit:
    """The result of :func:`fit_session_dynamics`."""

    params: DynamicsParams
    """The fitted dynamics (``boredom_weight`` 1: boredom is in click-logit units)."""
    scale: float
    """Slope of the static click logit (its calibration)."""
    offset: float
    """Added to the static click logit."""
    click_nll: float
    """Mean negative log-likelihood per shown slot of the click part."""
    leave_nll: float
    """Mean negative log-likelihood per uncensored step of the leave part."""


class _Sessions:
    """A step table as tensors the recursion reads, step number by step number."""

    def __init__(self, steps: StepTable, topics: np.ndarray, n_topics: int, cap: int, users: np.ndarray):
        shown = steps.slot_mask
        self.topic = torch.from_numpy(np.where(shown, topics[np.maximum(steps.items, 0)], 0))
        self.shown = torch.from_numpy(shown.astype(np.float64))
        self.clicks = torch.from_numpy((steps.clicks * shown).astype(np.float64))
        rows = np.arange(len(steps.user))[:, None]
        flat = np.repeat(rows, shown.shape[1], axis=1)
        self.viewed = torch.zeros(len(steps.user), n_topics, dtype=torch.float64)
        self.viewed.index_put_(
            (torch.from_numpy(flat.ravel()), self.topic.ravel()), self.shown.ravel(), accumulate=True
        )
        self.clicked = torch.zeros(len(steps.user), n_topics, dtype=torch.float64)
        self.clicked.index_put_(
            (torch.from_numpy(flat.ravel()), self.topic.ravel()), self.clicks.ravel(), accumulate=True
        )
        length = steps.session_length[steps.session]
        last = steps.step == length - 1
        self.leave = torch.from_numpy(last.astype(np.float64))
        self.counted = torch.from_numpy(~(last & (length >= cap)))
        self.n_clicks = self.clicks.sum(1)
        # Sessions ranked longest first: the sessions still running at step t are the first n_t,
        # so each step's state is a prefix of the last one's (no scatter into a full table).
        rank = np.empty(steps.n_sessions, dtype=np.int64)
        rank[np.argsort(-steps.session_length, kind="stable")] = np.arange(steps.n_sessions)
        self.by_step = []
        for t in range(int(steps.step.max()) + 1):
            rows = np.flatnonzero(steps.step == t)
            self.by_step.append(torch.from_numpy(rows[np.argsort(rank[steps.session[rows]], kind="stable")]))
        self.user = torch.from_numpy(users[steps.user] if users.ndim else steps.user)
        self.n_sessions, self.n_topics = steps.n_sessions, n_topics


def _unpack(x: torch.Tensor) -> dict[str, torch.Tensor]:
    softplus, sigmoid = torch.nn.functional.softplus, torch.sigmoid
    return {
        "scale": x[0], "offset": x[1], "drift_per_click": softplus(x[2]), "drift_retention": sigmoid(x[3]),
        "boredom_per_view": softplus(x[4]), "boredom_per_click": softplus(x[5]), "boredom_retention": sigmoid(x[6]),
        "leave_bias": x[7], "leave_per_boredom": x[8], "leave_if_no_click": x[9], "leave_per_click": x[10],
    }  # fmt: skip


def _pack(params: DynamicsParams, scale: float, offset: float) -> torch.Tensor:
    def inv_softplus(v: float) -> float:
        v = max(v, 1e-4)
        return float(np.log(np.expm1(v)))

    def logit(v: float) -> float:
        v = min(max(v, 1e-3), 1 - 1e-3)
        return float(np.log(v / (1 - v)))

    w = params.boredom_weight  # boredom in click-logit units: increments times the weight
    values = [
        scale, offset, inv_softplus(params.drift_per_click), logit(params.drift_retention),
        inv_softplus(w * params.boredom_per_view), inv_softplus(w * params.boredom_per_click),
        logit(params.boredom_retention), params.leave_bias, params.leave_per_boredom / max(w, 1e-6),
        params.leave_if_no_click, params.leave_per_click,
    ]  # fmt: skip
    return torch.tensor(values, dtype=torch.float64)


def _session_nll(
    p: dict[str, torch.Tensor],
    data: _Sessions,
    boredom_scale: torch.Tensor,
    leave_offset: torch.Tensor,
    static: torch.Tensor | None,
    theta: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed click NLL, shown slots, summed leave NLL and counted steps of ``data``."""
    drift = torch.zeros(data.n_sessions, data.n_topics, dtype=torch.float64)
    boredom = torch.zeros_like(drift)
    click_nll = torch.zeros((), dtype=torch.float64)
    leave_nll = torch.zeros((), dtype=torch.float64)
    for rows in data.by_step:  # the sessions still running, longest first: a prefix of the last step's
        topic = data.topic[rows]
        d, b = drift[: len(rows)], boredom[: len(rows)]
        if static is not None:
            z = p["scale"] * static[rows] + p["offset"] + d.gather(1, topic) - b.gather(1, topic)
            prob = (theta[None, : z.shape[1]] * torch.sigmoid(z)).clamp(1e-7, 1 - 1e-7)
            y = data.clicks[rows]
            click_nll = click_nll - ((y * prob.log() + (1 - y) * (-prob).log1p()) * data.shown[rows]).sum()
        scale = boredom_scale[data.user[rows]][:, None]
        d = p["drift_retention"] * d + p["drift_per_click"] * data.clicked[rows]
        b = p["boredom_retention"] * b + scale * (
            p["boredom_per_view"] * data.viewed[rows] + p["boredom_per_click"] * data.clicked[rows]
        )
        shown = data.shown[rows]
        mean_boredom = (b.gather(1, topic) * shown).sum(1) / shown.sum(1).clamp(min=1)
        n = data.n_clicks[rows]
        logit = (
            p["leave_bias"] + p["leave_per_boredom"] * mean_boredom + p["leave_if_no_click"] * (n == 0)
            + p["leave_per_click"] * n + leave_offset[data.user[rows]]
        )  # fmt: skip
        y = data.leave[rows]
        step_nll = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
        leave_nll = leave_nll + (step_nll * data.counted[rows]).sum()
        drift, boredom = d, b
    return click_nll, data.shown.sum(), leave_nll, data.counted.sum()


def fit_session_dynamics(
    static: np.ndarray,
    theta: np.ndarray,
    click_steps: StepTable,
    leave_steps: StepTable,
    topics: np.ndarray,
    cap: int,
    boredom_scale: np.ndarray,
    leave_offset: np.ndarray,
    init: DynamicsParams,
    init_scale: float = 1.0,
    init_offset: float = 0.0,
) -> SessionFit | None:
    """Maximum likelihood of every dynamics coefficient (module docstring): clicks of
    ``click_steps`` (their static logits ``static (S, K)``, the examination ``theta``) and leaving
    in ``leave_steps``, each user's ``boredom_scale`` and ``leave_offset`` ``(n_users,)`` known.
    LBFGS from ``init`` (and the calibration ``init_scale``, ``init_offset``); ``None`` when it
    finds nothing more likely than ``init`` (or nothing finite)."""
    n_topics = int(topics.max()) + 1
    users = np.arange(len(boredom_scale))
    clicks = _Sessions(click_steps, topics, n_topics, cap, users)
    leaves = _Sessions(leave_steps, topics, n_topics, cap, users)
    scale_t, offset_t = (
        torch.from_numpy(boredom_scale.astype(np.float64)),
        torch.from_numpy(leave_offset.astype(np.float64)),
    )
    static_t = torch.from_numpy(np.asarray(static, dtype=np.float64))
    theta_t = torch.from_numpy(np.asarray(theta, dtype=np.float64))
    x = _pack(init, init_scale, init_offset).requires_grad_(True)
    optimiser = torch.optim.LBFGS([x], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        p = _unpack(x)
        c_nll, c_n, _, _ = _session_nll(p, clicks, scale_t, offset_t, static_t, theta_t)
        _, _, l_nll, l_n = _session_nll(p, leaves, scale_t, offset_t, None, theta_t)
        return c_nll / c_n, l_nll / l_n

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        c, l_ = objective()
        loss = (
            c * clicks.shown.sum() / leaves.counted.sum() + l_
        )  # the sum of both log-likelihoods, per leave step
        loss.backward()
        return loss

    weight = clicks.shown.sum() / leaves.counted.sum()  # the sum of both log-likelihoods, per leave step
    with torch.no_grad():
        c, l_ = objective()
        start = float(c * weight + l_)
    optimiser.step(closure)
    with torch.no_grad():
        c, l_ = objective()
        end = float(c * weight + l_)
        p = {k: float(v) for k, v in _unpack(x).items()}
    if not (np.isfinite(end) and end < start and all(np.isfinite(v) for v in p.values())):
        return None  # nothing better than where it started (too few sessions, or a flat likelihood)
    scale, offset = p.pop("scale"), p.pop("offset")
    return SessionFit(DynamicsParams(**p, boredom_weight=1.0), scale, offset, float(c), float(l_))
