"""The dynamics fitted by the likelihood of whole sessions.

Step-wise regressions fit the click model's dynamics with one retention shared by interest drift
and boredom, so a click's two effects (more interest in its topic, more boredom with it) are not
told apart in the click model; the leave regression then guesses the boredom clicks add. Here
every coefficient of :class:`~simulators.dynamics.DynamicsParams` is fitted at once, by maximum
likelihood of the logged sessions as they unfolded: each slot's click given the state the
session's earlier slates and clicks left, and each step's leaving (or staying) given the state
after it (sessions that reach the logs' cap are censored). Drift and boredom keep retentions of
their own, so their different memories separate them in the clicks, and boredom (not drift)
drives the leave hazard, which separates them again. Each user's boredom scale enters as a known
factor; the leave offsets are known too, or random effects (below).

The click part is scored on sessions whose static logits are honest: the validation sessions,
which the response network did not train on, and ``more_clicks``, the training sessions with the
logits of networks trained on the other folds (cross-fitting, ``FitConfig.cross_fit_folds``),
each source with a calibration of its own. The leave part is scored on every session given (it
needs no static logits).

Users differ in ways a fit must not mistake for dynamics. The static logits miss part of each
user's interest in each topic; within a session the user's clicks reveal it, and a fit without it
reads those clicks as interest drift (spurious state dependence: on the shop's logs, drift per
click 0.68 against the truth's 0.35). Users differ in patience too; offsets estimated per user
and then held fixed absorb what boredom does to leaving (0.26 per unit against 0.58). With
``random_effects`` both are random intercepts, ``N(0, sd^2)`` per (user, topic) in the click
logit and per user in the leave logit, integrated out of the likelihood by Gauss-Hermite
quadrature over all of a user's sessions, their spreads fitted with the rest (the generalised
linear mixed model's marginal likelihood; Heckman 1981 on heterogeneity against state
dependence). The fit then comes close to the truth's drift (0.32) and boredom's pull on leaving
(0.54). A click's drift against its boredom stays weakly identified (clicks see their
difference; boredom per click comes out at 0.10 against the truth's 0.27): given the truth's
click model the fit splits them rightly only knowing each user's boredom scale, and gets their
difference right either way (``benchmarks.identification``).

Visits differ too, beyond who the user is: on MovieLens-100K a user's first session (rating films
on signing up) runs a median 44 steps and later ones 3, and within users the log session length
keeps 55% of its variance. One hazard per user makes every session's length near geometric (the
fit's sessions had a median of 17 against the logs' 7). With ``session_effects`` the leave logit
also has a random intercept per session, ``N(0, sd_s^2)``, nested in its user's: each session's
leave NLL is integrated over its own nodes at each node of its user's offset, then the user's
sessions are multiplied (two-level Gauss-Hermite). The simulator draws each session's intercept
at its start (:attr:`~simulators.dynamics.DynamicsParams.leave_session_sd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
    """Mean negative log-likelihood per uncensored step of the leave part (marginal over the
    users' offsets when they were random effects)."""
    interest_sd: float | None = None
    """The fitted spread of the users' interests in topics beyond the static logits (``None``:
    no random effects)."""
    interests: np.ndarray | None = None
    """``(n_users, n_topics)`` their posterior means, in click-logit units."""
    patience_sd: float | None = None
    """The fitted spread of the users' leave offsets (``None``: the offsets were given)."""
    session_sd: float | None = None
    """The fitted spread of each session's own leave offset (``None``: no session effects); it is
    also ``params.leave_session_sd``."""
    leave_offsets: np.ndarray | None = None
    """``(n_users,)`` each user's posterior mean leave offset."""


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
        first = np.zeros(steps.n_sessions, dtype=bool) if steps.session_first is None else steps.session_first
        self.first = torch.from_numpy(first[steps.session].astype(np.float64))
        self.both_visits = bool(first.any() and not first.all())  # else a first visit's term is the bias's
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
        self.session = torch.from_numpy(steps.session)
        self.session_user = torch.from_numpy(users[steps.session_user] if users.ndim else steps.session_user)
        self.n_sessions, self.n_topics = steps.n_sessions, n_topics


N_DYNAMICS = 12
"""Entries of the packed coefficients before the extra click parts' calibrations (then the
random effects' log spreads)."""


def _unpack(x: torch.Tensor) -> dict[str, torch.Tensor]:
    softplus, sigmoid = torch.nn.functional.softplus, torch.sigmoid
    return {
        "scale": x[0], "offset": x[1], "drift_per_click": softplus(x[2]), "drift_retention": sigmoid(x[3]),
        "boredom_per_view": softplus(x[4]), "boredom_per_click": softplus(x[5]), "boredom_retention": sigmoid(x[6]),
        "leave_bias": x[7], "leave_per_boredom": x[8], "leave_if_no_click": x[9], "leave_per_click": x[10],
        "leave_first_session": x[11],
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
        params.leave_if_no_click, params.leave_per_click, params.leave_first_session,
    ]  # fmt: skip
    return torch.tensor(values, dtype=torch.float64)


SESSION_SD_FLOOR = 1e-3
"""A fitted spread of the sessions' own leave offsets below this is taken as 0."""

EFFECT_NODES = 8
"""Gauss-Hermite nodes of the integral over each random effect."""


def _hermite(sd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The values of ``N(0, sd^2)`` at the Gauss-Hermite nodes and the nodes' log weights."""
    x, w = np.polynomial.hermite.hermgauss(EFFECT_NODES)
    return np.sqrt(2.0) * sd * torch.from_numpy(x), torch.from_numpy(np.log(w / np.sqrt(np.pi)))


class RandomEffect:
    """A random intercept ``b_g ~ N(0, sd^2)`` per group ``g`` (a user's leave offset, or a
    user's interest in a topic that the static logits miss), integrated out by Gauss-Hermite
    quadrature: the nodes and weights, and each group's summed NLL at each node (filled by
    :func:`_session_nll`)."""

    def __init__(self, sd: torch.Tensor, n_groups: int):
        self.values, self.log_weights = _hermite(sd)
        self.group_nll = torch.zeros(n_groups, EFFECT_NODES, dtype=torch.float64)

    def add(self, groups: torch.Tensor, nll: torch.Tensor) -> None:
        """Add ``nll (n, EFFECT_NODES)`` (at each node) to the ``groups (n,)`` it belongs to."""
        self.group_nll.index_add_(0, groups, nll)

    def marginal_nll(self) -> torch.Tensor:
        """The summed NLL with each group's effect integrated out."""
        return -torch.logsumexp(self.log_weights[None, :] - self.group_nll, dim=1).sum()

    def posterior_means(self) -> np.ndarray:
        """``(n_groups,)`` each group's posterior mean effect given its data (0 with none)."""
        with torch.no_grad():
            post = torch.softmax(self.log_weights[None, :] - self.group_nll, dim=1)
            return (post * self.values[None, :]).sum(1).numpy()


class NestedEffect:
    """A random intercept per session ``v_s ~ N(0, sd^2)`` nested in its user's effect ``outer``:
    each session's summed NLL at each (outer node, own node), integrated over its own nodes by
    :meth:`fold`, which adds the result to its user's NLL at each outer node."""

    def __init__(self, sd: torch.Tensor, outer: RandomEffect, owner: torch.Tensor):
        self.values, self.log_weights = _hermite(sd)
        self.outer, self.owner = outer, owner
        self.group_nll = torch.zeros(len(owner), EFFECT_NODES, EFFECT_NODES, dtype=torch.float64)

    def add(self, groups: torch.Tensor, nll: torch.Tensor) -> None:
        """Add ``nll (n, EFFECT_NODES, EFFECT_NODES)`` (at each outer and own node) to the
        sessions ``groups (n,)``."""
        self.group_nll.index_add_(0, groups, nll)

    def fold(self) -> None:
        """Integrate each session's own intercept out and add it to its user's (``owner``) NLL."""
        nll = -torch.logsumexp(self.log_weights[None, None, :] - self.group_nll, dim=2)
        self.outer.add(self.owner, nll)


Effects = tuple[RandomEffect | None, RandomEffect | None, NestedEffect | None]
"""The interests', the users' leave offsets' and the sessions' own leave offsets' effects."""


def _session_nll(
    p: dict[str, torch.Tensor],
    data: _Sessions,
    boredom_scale: torch.Tensor,
    leave_offset: torch.Tensor,
    static: torch.Tensor | None,
    theta: torch.Tensor,
    interest: RandomEffect | None = None,
    patience: RandomEffect | None = None,
    visit: NestedEffect | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed click NLL, shown slots, summed leave NLL and counted steps of ``data`` (the click
    logit reads ``p["scale"]`` and ``p["offset"]``). With ``interest`` (groups: user x topic) the
    click logit has a random intercept per user and topic, with ``patience`` (groups: users) the
    leave logit one per user (``leave_offset`` unused), and with ``visit`` (groups: sessions,
    nested in ``patience``) one per session too: their parts of the NLL go into the effects, not
    into the sums returned."""
    drift = torch.zeros(data.n_sessions, data.n_topics, dtype=torch.float64)
    boredom = torch.zeros_like(drift)
    click_nll = torch.zeros((), dtype=torch.float64)
    leave_nll = torch.zeros((), dtype=torch.float64)
    for rows in data.by_step:  # the sessions still running, longest first: a prefix of the last step's
        topic = data.topic[rows]
        d, b = drift[: len(rows)], boredom[: len(rows)]
        if static is not None:
            z = p["scale"] * static[rows] + p["offset"] + d.gather(1, topic) - b.gather(1, topic)
            y, shown = data.clicks[rows], data.shown[rows]
            if interest is None:
                prob = (theta[None, : z.shape[1]] * torch.sigmoid(z)).clamp(1e-7, 1 - 1e-7)
                click_nll = click_nll - ((y * prob.log() + (1 - y) * (-prob).log1p()) * shown).sum()
            else:  # each slot's NLL at each node of its user's interest in its topic
                zq = z[..., None] + interest.values
                prob = (theta[None, : z.shape[1], None] * torch.sigmoid(zq)).clamp(1e-7, 1 - 1e-7)
                y = y[..., None]
                nll = -(y * prob.log() + (1 - y) * (-prob).log1p()) * shown[..., None]
                groups = data.user[rows][:, None] * data.n_topics + topic
                interest.add(groups.ravel(), nll.reshape(-1, nll.shape[-1]))
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
            + p["leave_per_click"] * n + p["leave_first_session"] * data.first[rows]
        )  # fmt: skip
        y = data.leave[rows]
        if patience is None:
            logit = logit + leave_offset[data.user[rows]]
            step_nll = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="none")
            leave_nll = leave_nll + (step_nll * data.counted[rows]).sum()
        elif visit is not None:  # each session's NLL at each node of its user's offset and its own
            logits = logit[:, None, None] + patience.values[None, :, None] + visit.values[None, None, :]
            step_nll = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, y[:, None, None].expand_as(logits), reduction="none"
            )
            visit.add(data.session[rows], step_nll * data.counted[rows][:, None, None])
        else:  # each user's NLL at each node of their offset
            logits = logit[:, None] + patience.values[None, :]
            step_nll = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, y[:, None].expand_as(logits), reduction="none"
            )
            patience.add(data.user[rows], step_nll * data.counted[rows][:, None])
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
    random_effects: bool = False,
    more_clicks: Sequence[tuple[np.ndarray, StepTable]] = (),
    session_effects: bool = False,
) -> SessionFit | None:
    """Maximum likelihood of every dynamics coefficient (module docstring): clicks of
    ``click_steps`` (their static logits ``static (S, K)``, the examination ``theta``) and of each
    ``(static, steps)`` of ``more_clicks`` (logits from other networks, honest there too: each
    with a calibration of its own, not returned), and leaving in ``leave_steps``, each user's
    ``boredom_scale`` ``(n_users,)`` known.

    Each user's leave offset is ``leave_offset`` ``(n_users,)``, known; or, with
    ``random_effects``, a random effect integrated out, and so is each user's interest in each
    topic beyond the static logits (module docstring), their spreads fitted with the rest (the
    offsets and interests returned are their posterior means); with ``session_effects`` too, each
    session's own leave offset, nested in its user's (module docstring). LBFGS from ``init`` (and the
    calibration ``init_scale``, ``init_offset``); ``None`` when it finds nothing more likely than
    ``init`` (or nothing finite)."""
    n_topics = int(topics.max()) + 1
    users = np.arange(len(boredom_scale))
    clicks = [
        (torch.from_numpy(np.asarray(s, dtype=np.float64)), _Sessions(t, topics, n_topics, cap, users))
        for s, t in [(static, click_steps), *more_clicks]
    ]
    leaves = _Sessions(leave_steps, topics, n_topics, cap, users)
    scale_t, offset_t = (
        torch.from_numpy(boredom_scale.astype(np.float64)),
        torch.from_numpy(leave_offset.astype(np.float64)),
    )
    theta_t = torch.from_numpy(np.asarray(theta, dtype=np.float64))
    calibrations = [v for _ in more_clicks for v in (init_scale, init_offset)]
    x = torch.cat([_pack(init, init_scale, init_offset), torch.tensor(calibrations, dtype=torch.float64)])
    session_effects = session_effects and random_effects
    if random_effects:  # then the log spreads of the interests, the leave offsets (and the sessions')
        spreads = [float(np.log(0.3)), float(np.log(max(float(leave_offset.std()), 0.3)))]
        spreads += [float(np.log(0.5))] if session_effects else []
        x = torch.cat([x, torch.tensor(spreads, dtype=torch.float64)])
    n_spreads = 3 if session_effects else 2
    x.requires_grad_(True)
    optimiser = torch.optim.LBFGS([x], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-9)
    n_shown = sum(float(data.shown.sum()) for _, data in clicks)
    weight = n_shown / float(leaves.counted.sum())  # the sum of both log-likelihoods, per leave step

    # a first visit's own term only where the sessions left hold first and later visits
    visits = {} if leaves.both_visits else {"leave_first_session": torch.zeros((), dtype=torch.float64)}

    def effects() -> Effects:
        if not random_effects:
            return None, None, None
        spread = x[len(x) - n_spreads :].exp()
        patience = RandomEffect(spread[1], len(users))
        visit = NestedEffect(spread[2], patience, leaves.session_user) if session_effects else None
        return RandomEffect(spread[0], len(users) * n_topics), patience, visit

    def objective(
        interest: RandomEffect | None, patience: RandomEffect | None, visit: NestedEffect | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = _unpack(x) | visits
        c_nll = torch.zeros((), dtype=torch.float64)
        for j, (static_j, data) in enumerate(clicks):
            own = {"scale": x[N_DYNAMICS + 2 * j - 2], "offset": x[N_DYNAMICS + 2 * j - 1]} if j else {}
            c_nll = c_nll + _session_nll(p | own, data, scale_t, offset_t, static_j, theta_t, interest)[0]
        _, _, l_nll, l_n = _session_nll(p, leaves, scale_t, offset_t, None, theta_t, None, patience, visit)
        if visit is not None:
            visit.fold()
        if interest is not None and patience is not None:
            c_nll, l_nll = c_nll + interest.marginal_nll(), l_nll + patience.marginal_nll()
        return c_nll / n_shown, l_nll / l_n

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        c, l_ = objective(*effects())
        loss = c * weight + l_
        loss.backward()
        return loss

    with torch.no_grad():
        c, l_ = objective(*effects())
        start = float(c * weight + l_)
    optimiser.step(closure)
    with torch.no_grad():
        interest, patience, visit = effects()
        c, l_ = objective(interest, patience, visit)
        end = float(c * weight + l_)
        p = {k: float(v) for k, v in (_unpack(x) | visits).items()}
    if not (np.isfinite(end) and end < start and all(np.isfinite(v) for v in p.values())):
        return None  # nothing better than where it started (too few sessions, or a flat likelihood)
    scale, offset = p.pop("scale"), p.pop("offset")
    spread = x.detach()[len(x) - n_spreads :].exp().tolist()
    # a spread below SESSION_SD_FLOOR is none (the shop's fit finds 6e-5): the envs skip the draw
    session_sd = (spread[2] if spread[2] >= SESSION_SD_FLOOR else 0.0) if visit is not None else None
    params = DynamicsParams(**p, boredom_weight=1.0, leave_session_sd=session_sd or 0.0)
    fit = SessionFit(params, scale, offset, float(c), float(l_))
    if interest is None or patience is None:
        return fit
    return replace(
        fit,
        interest_sd=spread[0],
        interests=interest.posterior_means().reshape(len(users), n_topics),
        patience_sd=spread[1],
        leave_offsets=patience.posterior_means(),
        session_sd=session_sd,
    )
