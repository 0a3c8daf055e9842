"""What off-policy estimators read: target policies' probabilities, cross-fitted reward models,
and ground truth, for the shop's slate logs and the Open Bandit Dataset.

Target policies over a catalog are Plackett-Luce rankings (:class:`PLPolicy`): the probability
of a slate's first k items is closed-form; a slot's marginal ``P(item i at slot k)`` is not,
and is estimated by Monte Carlo with Rao-Blackwellisation: sample the k-1 items above,
then ``P(i at k | prefix) = w_i / (1 - sum_prefix w)`` is exact, so only the prefix is random.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from agents.ope import BanditInputs, SessionInputs, SlateInputs
from simulators.dynamics import SessionState, advance, sigmoid
from simulators.errors import ConfigError, DataError
from simulators.metrics import clustered_standard_error
from simulators.steps import StepTable, pbm_em

GUMBEL_SUPPORT = 512
"""Supports up to this size are sampled by Gumbel-top-k; larger ones sequentially."""


@dataclass(frozen=True)
class PLPolicy:
    """Plackett-Luce slates over a per-context support of catalog items.

    ``P(s_1..s_k | c) = prod_{j<=k} p_c(s_j) / (1 - sum_{l<j} p_c(s_l))`` with
    ``p_c = softmax(logits[c])`` over ``support[c]`` (0 elsewhere). One context row (``C = 1``)
    is a context-free policy; otherwise context ``c`` is user row ``c``.
    """

    name: str
    support: np.ndarray
    """``(C, S)`` int64 catalog rows."""
    logits: np.ndarray
    """``(C, S)`` float64."""
    n_items: int
    """Catalog size."""

    def __post_init__(self) -> None:
        if self.support.shape != self.logits.shape or self.support.ndim != 2:
            raise ConfigError(
                f"support {self.support.shape} and logits {self.logits.shape} must be equal (C, S)"
            )
        if not np.isfinite(self.logits).all():
            raise ConfigError(f"policy {self.name}: logits must be finite")

    def contexts(self, users: np.ndarray) -> np.ndarray:
        """Context rows of ``users``."""
        return (
            np.zeros(len(users), dtype=np.int64)
            if len(self.support) == 1
            else np.asarray(users, dtype=np.int64)
        )

    def dense(self, contexts: np.ndarray) -> np.ndarray:
        """``(len(contexts), n_items)`` item probabilities of the first slot."""
        logits = self.logits[contexts]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out = np.zeros((len(contexts), self.n_items))
        np.put_along_axis(out, self.support[contexts], p, axis=1)
        return out

    def prefix_probabilities(self, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(n, K)`` probability of each slate's first k items."""
        w = self.item_probabilities(users, slates)
        taken = np.cumsum(w, axis=1) - w
        return np.cumprod(w / np.maximum(1.0 - taken, 1e-300), axis=1)

    def item_probabilities(self, users: np.ndarray, items: np.ndarray, chunk: int = 256) -> np.ndarray:
        """``(n, K)`` first-slot probability ``p_c(item)`` of each of ``items (n, K)``."""
        contexts = self.contexts(users)
        out = np.empty(items.shape)
        distinct, inverse = np.unique(contexts, return_inverse=True)
        for start in range(0, len(distinct), chunk):
            dense = self.dense(distinct[start : start + chunk])
            rows = np.flatnonzero((inverse >= start) & (inverse < start + chunk))
            out[rows] = dense[inverse[rows, None] - start, items[rows]]
        return out

    def sample(self, contexts: np.ndarray, n_samples: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """``(B, n_samples, k)`` catalog rows: ``n_samples`` slates per context."""
        logits = self.logits[contexts]
        if logits.shape[1] <= GUMBEL_SUPPORT:
            keys = logits[:, None, :] + rng.gumbel(size=(len(contexts), n_samples, logits.shape[1]))
            top = np.argsort(-keys, axis=2)[:, :, :k]
            return np.take_along_axis(self.support[contexts][:, None, :], top, axis=2)
        return _sequential_samples(self.dense(contexts), n_samples, k, rng)

    def marginals(
        self, contexts: np.ndarray, k: int, n_samples: int, rng: np.random.Generator
    ) -> np.ndarray:  # fmt: skip
        """``(B, k, n_items)`` ``P(item at slot j | context)``: exact for the first slot,
        Rao-Blackwellised Monte Carlo over ``n_samples`` prefixes for the others."""
        p = self.dense(contexts)
        out = np.zeros((len(contexts), k, self.n_items))
        out[:, 0] = p
        if k == 1:
            return out
        prefixes = self.sample(contexts, n_samples, k - 1, rng)  # (B, M, k-1)
        b = len(contexts)
        taken = np.cumsum(np.take_along_axis(p[:, None, :], prefixes, axis=2), axis=2)  # (B, M, k-1)
        for j in range(1, k):
            inverse = 1.0 / np.maximum(1.0 - taken[:, :, j - 1], 1e-12)  # (B, M)
            above = prefixes[:, :, :j]
            excluded = np.zeros((b, self.n_items))
            np.add.at(excluded, (np.broadcast_to(np.arange(b)[:, None, None], above.shape), above),
                      np.broadcast_to(inverse[:, :, None], above.shape))  # fmt: skip
            out[:, j] = p * (inverse.sum(axis=1, keepdims=True) - excluded) / n_samples
        return out

    def marginal_chunks(
        self, users: np.ndarray, k: int, n_samples: int, rng: np.random.Generator, chunk: int = 64
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """``(context rows, marginals)`` for the distinct contexts of ``users``, chunk by chunk
        (a context-free policy is estimated once, with ``64 * n_samples`` prefixes)."""
        distinct = np.unique(self.contexts(users))
        if len(self.support) == 1:
            yield distinct, self.marginals(distinct, k, 64 * n_samples, rng)
            return
        for start in range(0, len(distinct), chunk):
            contexts = distinct[start : start + chunk]
            yield contexts, self.marginals(contexts, k, n_samples, rng)


def _sequential_samples(p: np.ndarray, n_samples: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Slates drawn slot by slot without replacement (redraw on a repeat), from ``p (B, n)``."""
    b, n = p.shape
    cumulative = (np.cumsum(p, axis=1) + np.arange(b)[:, None]).ravel()
    out = np.empty((b, n_samples, k), dtype=np.int64)
    offsets = np.repeat(np.arange(b), n_samples)
    for j in range(k):
        todo = np.arange(b * n_samples)
        while len(todo):
            draw = np.searchsorted(cumulative, offsets[todo] + rng.random(len(todo)) * 0.999999999)
            draw = np.minimum(draw - offsets[todo] * n, n - 1)
            flat = out.reshape(-1, k)
            flat[todo, j] = draw
            repeated = (flat[todo, :j] == draw[:, None]).any(axis=1) | (p[offsets[todo], draw] == 0)
            todo = todo[repeated]
    return out


# ----------------------------------------------------------------------- reward models


def user_segments(users: pd.DataFrame) -> np.ndarray:
    """``(n_users,)`` code of each user's combination of categorical attributes (the shop: gender x
    age group); all 0 when there are none."""
    columns = [c for c in users.columns if c != "user_id" and not pd.api.types.is_numeric_dtype(users[c])]
    if not columns:
        return np.zeros(len(users), dtype=np.int64)
    return pd.factorize(users[columns].astype(str).agg("|".join, axis=1), sort=True)[0].astype(np.int64)


@dataclass(frozen=True)
class PBMRewardModel:
    """``q(x, i, k) = theta_k * gamma_{s(x), i}``: the position-based click model with a
    relevance per user segment ``s(x)`` (one segment: the plain PBM), fitted by
    :func:`~simulators.steps.pbm_em` (calibrated per slot)."""

    theta: np.ndarray
    """``(K,)`` examination per slot (``theta_1 = 1``)."""
    gamma: np.ndarray
    """``(n_segments, n_items)`` relevance."""

    @classmethod
    def fit(cls, steps: StepTable, n_items: int, segment: np.ndarray | None = None) -> PBMRewardModel:
        """EM on the steps' clicks; ``segment (n_users,)`` codes (default: one segment)."""
        return cls(*pbm_em(steps, n_items, segment))


def cross_fitted_models(
    steps: StepTable, n_items: int, folds: int, rng: np.random.Generator, segment: np.ndarray | None = None
) -> tuple[np.ndarray, list[PBMRewardModel]]:
    """``(fold of each step, one model per fold trained on the other folds)``; folds split sessions."""
    if folds < 2:
        raise ConfigError(f"cross-fitting needs >= 2 folds, got {folds}")
    session_fold = rng.permutation(steps.n_sessions) % folds
    fold = session_fold[steps.session]
    models = [
        PBMRewardModel.fit(steps.subset_sessions(session_fold != f), n_items, segment) for f in range(folds)
    ]
    return fold, models


# ------------------------------------------------------------------------ slate inputs


def slate_inputs(
    steps: StepTable, logging: PLPolicy, target: PLPolicy, folds: int = 3, n_samples: int = 256,
    rng: np.random.Generator | None = None, segment: np.ndarray | None = None,
) -> tuple[SlateInputs, SessionInputs]:  # fmt: skip
    """The slate (and first-slot) estimators' inputs for ``target`` on logs of slates drawn
    from ``logging``, and the same logs as sessions. ``segment (n_users,)``: user segments of
    the reward model (see :func:`user_segments`; default one)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    if (steps.items < 0).any():
        raise DataError("slate OPE needs full slates (no empty slots)")
    n = len(steps.items)
    users, items = steps.user, steps.items
    reward = steps.clicks.astype(np.float64)
    fold, models = cross_fitted_models(steps, logging.n_items, folds, rng, segment)
    theta = np.stack([m.theta for m in models])[fold]  # (n, K)
    gamma = np.concatenate([m.gamma for m in models])  # (folds * segments, n_items)
    n_segments = models[0].gamma.shape[0]
    model_row = fold * n_segments + (0 if segment is None else segment[users])  # each step's gamma row
    q_logged = theta * gamma[model_row[:, None], items]
    # Cascade-DR's control variate: slot k under pi given the logged items above it.
    w = target.item_probabilities(users, items)
    wq = w * gamma[model_row[:, None], items]
    total_q = np.zeros(n)
    contexts = target.contexts(users)
    distinct, inverse = np.unique(contexts, return_inverse=True)
    for start in range(0, len(distinct), 256):
        expected = target.dense(distinct[start : start + 256]) @ gamma.T  # (contexts, folds)
        rows = np.flatnonzero((inverse >= start) & (inverse < start + 256))
        total_q[rows] = expected[inverse[rows] - start, model_row[rows]]
    taken_p, taken_q = np.cumsum(w, 1) - w, np.cumsum(wq, 1) - wq
    q_next = theta * (total_q[:, None] - taken_q) / np.maximum(1.0 - taken_p, 1e-300)
    target_marginal, q_target_marginal, target_exposure = _marginals_at(
        target, users, items, gamma, model_row, theta, n_samples, rng
    )
    logging_marginal, _, logging_exposure = _marginals_at(
        logging, users, items, gamma, model_row, theta, n_samples, rng
    )
    slates = SlateInputs(
        reward, logging.prefix_probabilities(users, items), target.prefix_probabilities(users, items),
        logging_marginal, target_marginal, q_logged, q_next, q_target_marginal, steps.session,
        logging_exposure, target_exposure,
    )  # fmt: skip
    return slates, session_inputs(steps, slates)


def _marginals_at(
    policy: PLPolicy, users: np.ndarray, items: np.ndarray, gamma: np.ndarray, model_row: np.ndarray,
    theta: np.ndarray, n_samples: int, rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``(n, K)`` each: the policy's marginal of each logged (item, slot), ``E_pi q`` per slot,
    and each logged item's exposure ``sum_j theta_j P(item at j)`` (``gamma (rows, n_items)``,
    ``model_row (n,)``: the reward model's row of each step; ``theta (n, K)``)."""
    n, k = items.shape
    marginal, expected, exposure = np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k))
    contexts = policy.contexts(users)
    order = np.argsort(contexts, kind="stable")
    sorted_contexts = contexts[order]
    for chunk, margins in policy.marginal_chunks(users, k, n_samples, rng):
        lo, hi = (
            np.searchsorted(sorted_contexts, chunk[0]),
            np.searchsorted(sorted_contexts, chunk[-1], side="right"),
        )
        rows = order[lo:hi]
        local = np.searchsorted(chunk, contexts[rows])
        at_items = margins[local[:, None, None], np.arange(k)[None, :, None], items[rows][:, None, :]]
        marginal[rows] = np.diagonal(at_items, axis1=1, axis2=2)
        exposure[rows] = np.einsum("rj,rjk->rk", theta[rows], at_items)
        by_row = np.einsum("ckn,fn->ckf", margins, gamma)  # E_pi gamma per context, slot, model row
        expected[rows] = theta[rows] * by_row[local, :, model_row[rows]]
    return marginal, expected, exposure


def session_inputs(steps: StepTable, slates: SlateInputs) -> SessionInputs:
    """Sessions as padded trajectories: slate ratio per step, slate reward, a myopic model."""
    length = int(steps.step.max()) + 1
    shape = (steps.n_sessions, length)
    reward, mask, ratio = np.zeros(shape), np.zeros(shape), np.ones(shape)
    q, v = np.zeros(shape), np.zeros(shape)
    index = (steps.session, steps.step)
    reward[index] = slates.reward.sum(axis=1)
    mask[index] = 1.0
    ratio[index] = slates.target_prefix[:, -1] / slates.pscore_prefix[:, -1]
    q[index] = slates.q_logged.sum(axis=1) if slates.q_logged is not None else 0.0
    v[index] = slates.q_target.sum(axis=1) if slates.q_target is not None else 0.0
    return SessionInputs(reward, mask, ratio, q, v)


# ------------------------------------------------------------------------- ground truth


def true_step_value(
    world: Any, steps: StepTable, target: PLPolicy, n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Expected clicks per slot of ``target``'s slates in the logged states of ``steps``, exact
    under the shop's true click model (states replayed from the logs): ``((K,) means, standard
    error of their sum)``. The error treats sessions as the independent draws (a session's steps
    share its user and state), about 3x the per-step figure on the shop."""
    k = steps.items.shape[1]
    bias = world.slot_bias(k)
    per_slot = np.zeros((len(steps.step), k))
    state_rows = _replayed_states(world, steps)
    contexts = target.contexts(steps.user)
    order = np.argsort(contexts, kind="stable")
    sorted_contexts = contexts[order]
    all_items = np.arange(world.config.n_items)
    for chunk, margins in target.marginal_chunks(steps.user, k, n_samples, rng):
        lo, hi = (
            np.searchsorted(sorted_contexts, chunk[0]),
            np.searchsorted(sorted_contexts, chunk[-1], side="right"),
        )
        rows = order[lo:hi]
        local = np.searchsorted(chunk, contexts[rows])
        for start in range(0, len(rows), 2048):
            part = rows[start : start + 2048]
            state = state_rows(part)
            grid = np.broadcast_to(all_items, (len(part), len(all_items)))
            p_click = sigmoid(world.relevance(steps.user[part], grid, state))  # (r, n_items)
            if len(margins) == 1:  # context-free: one marginal table for every row
                per_slot[part] = np.einsum("kn,rn,k->rk", margins[0], p_click, bias)
            else:
                per_slot[part] = np.einsum(
                    "rkn,rn,k->rk", margins[local[start : start + 2048]], p_click, bias
                )
    return per_slot.mean(axis=0), clustered_standard_error(per_slot.sum(axis=1), steps.session)


def _replayed_states(world: Any, steps: StepTable) -> Any:
    """A function from step rows to their true session states (drift, boredom) before the step."""
    topics = world.item_topic
    n_topics = int(topics.max()) + 1
    drift = np.zeros((len(steps.step), n_topics))
    boredom = np.zeros((len(steps.step), n_topics))
    state = SessionState.fresh(steps.n_sessions, n_topics)
    for t in range(int(steps.step.max()) + 1):
        rows = np.flatnonzero(steps.step == t)
        sub = state.take(steps.session[rows])
        drift[rows], boredom[rows] = sub.interest_drift, sub.boredom
        advance(world.dynamics, sub, topics[steps.items[rows]], steps.clicks[rows], steps.slot_mask[rows])
        state.boredom[steps.session[rows]], state.interest_drift[steps.session[rows]] = (
            sub.boredom,
            sub.interest_drift,
        )

    def rows_state(rows: np.ndarray) -> SessionState:
        return SessionState(interest_drift=drift[rows], boredom=boredom[rows])

    return rows_state


def true_session_value(
    world: Any, target: PLPolicy, n_sessions: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Clicks per session of ``target`` run on-policy in the true shop: ``(mean, standard error)``."""
    from simulators.response import respond

    cfg = world.config
    activity = world.user_activity / world.user_activity.sum()
    users = rng.choice(cfg.n_users, size=n_sessions, p=activity)
    state = SessionState.fresh(n_sessions, cfg.n_categories)
    clicks = np.zeros(n_sessions)
    active = np.arange(n_sessions)
    for _ in range(cfg.max_steps):
        if not len(active):
            break
        slates = np.concatenate([target.sample(target.contexts(users[active[s : s + 512]]), 1, cfg.slate_size, rng)[:, 0]
                                 for s in range(0, len(active), 512)])  # fmt: skip
        sub = state.take(active)
        response = respond(
            world, users[active], slates, sub, rng.random((len(active), 2 * cfg.slate_size + 1))
        )
        state.boredom[active], state.interest_drift[active] = sub.boredom, sub.interest_drift
        clicks[active] += response.click.sum(axis=1)
        active = active[~response.leave]
    return float(clicks.mean()), float(clicks.std(ddof=1) / np.sqrt(n_sessions))


# ---------------------------------------------------------------------------------- OBD


def bts_marginals(
    alpha: np.ndarray, beta: np.ndarray, slots: int, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n_items, slots)`` ``P(item at slot k)`` of Bernoulli Thompson sampling with Beta
    priors (rank items by one draw of each item's Beta; Monte Carlo as OBP does)."""
    counts = np.zeros((len(alpha), slots))
    for start in range(0, n_samples, 10_000):
        size = min(10_000, n_samples - start)
        theta = rng.beta(alpha, beta, size=(size, len(alpha)))
        top = np.argpartition(-theta, slots, axis=1)[:, :slots]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(theta, top, 1), axis=1), 1)
        for k in range(slots):
            counts[:, k] += np.bincount(top[:, k], minlength=len(alpha))
    return counts / n_samples


def click_rate_model(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, n_items: int, slots: int, strength: float
) -> np.ndarray:  # fmt: skip
    """``(n_items, slots)`` ``q(a, k) = c_k * r_a``: the slot's click rate times the item's
    click ratio ``r_a = (clicks_a + m) / (expected_a + m)``, shrunk toward 1 with ``m = strength``
    expected clicks (empirical Bayes with a Gamma prior)."""
    prior = max(reward.mean(), 1e-6)
    c = (np.bincount(slot, weights=reward, minlength=slots) + 5 * prior) / (
        np.bincount(slot, minlength=slots) + 5
    )
    expected = np.bincount(item, weights=c[slot], minlength=n_items)
    ratio = (np.bincount(item, weights=reward, minlength=n_items) + strength) / (expected + strength)
    return np.clip(ratio[:, None] * c[None, :], 1e-6, 1 - 1e-6)


SHRINKAGE_GRID = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 1e9)
"""Candidate prior strengths of :func:`click_rate_model` (1e9: no item effect)."""


def fit_click_rate_model(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, n_items: int, slots: int, rng: np.random.Generator
) -> np.ndarray:  # fmt: skip
    """:func:`click_rate_model` with the prior strength of least 2-fold held-out log loss."""
    half = rng.permutation(len(item)) % 2
    losses = []
    for strength in SHRINKAGE_GRID:
        loss = 0.0
        for h in (0, 1):
            fit, held = half != h, half == h
            q = click_rate_model(item[fit], slot[fit], reward[fit], n_items, slots, strength)[
                item[held], slot[held]
            ]
            loss -= float(np.sum(reward[held] * np.log(q) + (1 - reward[held]) * np.log(1 - q)))
        losses.append(loss)
    best = SHRINKAGE_GRID[int(np.argmin(losses))]
    return click_rate_model(item, slot, reward, n_items, slots, best)


def obd_bandit_inputs(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, pscore: np.ndarray, target: np.ndarray,
    folds: int, rng: np.random.Generator,
) -> BanditInputs:  # fmt: skip
    """Rows of OBD as bandit rounds whose action is (item, slot): the target's marginal
    ``target (n_items, slots)`` and a cross-fitted :func:`fit_click_rate_model`."""
    n_items, slots = target.shape
    fold = rng.permutation(len(item)) % folds
    q_logged, q_target = np.zeros(len(item)), np.zeros(len(item))
    for f in range(folds):
        train, test = fold != f, fold == f
        q = fit_click_rate_model(item[train], slot[train], reward[train], n_items, slots, rng)
        q_logged[test] = q[item[test], slot[test]]
        q_target[test] = (target[:, slot[test]] * q[:, slot[test]]).sum(axis=0)
    return BanditInputs(reward, pscore, target[item, slot], q_logged, q_target)


# ------------------------------------------------------------------ the shipped policies

OPE_TEMPERATURE = 1.0
"""Temperature of the Plackett-Luce form of score-based policies (``ctr``, agents): logits
are the scores standardised per user, divided by this."""
SHOP_POLICIES = ("logging", "near-logging", "random", "popularity", "anti-popularity", "ctr")
"""Target policies over the shop's catalog by name (an agent is given by its run folder)."""


def shop_logging_policy(world: Any) -> PLPolicy:
    """The shop's logging policy as a :class:`PLPolicy` (context-free)."""
    n_items = world.config.n_items
    return PLPolicy("logging", np.arange(n_items)[None], np.log(world.logging_policy.weights)[None], n_items)


def shop_policy(name: str, world: Any, popularity: np.ndarray, data: str = "shop") -> PLPolicy:
    """A named target policy over the shop's catalog; ``popularity (n_items,)`` logged clicks;
    ``data`` names the logs for the env whose CTR candidates ``ctr`` ranks.

    ``near-logging``: the logging logits at temperature 1.25 (close to the logger);
    ``popularity``: Plackett-Luce on standardised log-popularity; ``anti-popularity``: on minus
    1.5 times it (deliberately far from the logger); ``ctr``: each user's CTR candidates
    (the env's) by standardised log pCTR at :data:`OPE_TEMPERATURE`.
    """
    n_items = world.config.n_items
    catalog = np.arange(n_items)[None]
    log_pop = np.log1p(popularity)
    z = ((log_pop - log_pop.mean()) / (log_pop.std() + 1e-12))[None]
    if name == "logging":
        return shop_logging_policy(world)
    if name == "near-logging":
        return PLPolicy(name, catalog, np.log(world.logging_policy.weights)[None] / 1.25, n_items)
    if name == "random":
        return PLPolicy(name, catalog, np.zeros((1, n_items)), n_items)
    if name == "popularity":
        return PLPolicy(name, catalog, z, n_items)
    if name == "anti-popularity":
        return PLPolicy(name, catalog, -1.5 * z, n_items)
    if name == "ctr":
        from envs.ranking import FEATURES, EnvConfig, build_world

        env_world = build_world(EnvConfig(data=data))
        pctr = env_world.candidate_features[:, :, FEATURES.index("pctr")].astype(np.float64)
        return scores_policy(name, env_world.candidates, np.log(np.maximum(pctr, 1e-9)), n_items)
    raise ConfigError(
        f"unknown target policy {name!r}; shop policies: {SHOP_POLICIES} or an agent's run folder"
    )


def scores_policy(name: str, support: np.ndarray, scores: np.ndarray, n_items: int) -> PLPolicy:
    """Plackett-Luce over per-user candidate ``scores`` standardised per user / :data:`OPE_TEMPERATURE`."""
    centred = scores - scores.mean(axis=1, keepdims=True)
    z = centred / (centred.std(axis=1, keepdims=True) + 1e-9)
    return PLPolicy(name, support.astype(np.int64), z / OPE_TEMPERATURE, n_items)


def agent_policy(agent: Any, n_items: int) -> PLPolicy:
    """A trained agent's ranking at the start of each user's session, in Plackett-Luce form
    (its deterministic scores over the env's candidates, see :func:`scores_policy`)."""
    from envs.ranking import EnvConfig, SessionCore, build_world

    options = {k: v for k, v in agent.env_options.items() if k in {f for f in EnvConfig.__dataclass_fields__}}
    config = EnvConfig(**options)
    world = build_world(config)
    users = np.arange(len(world.candidates))
    core = SessionCore(config, world, batch=len(users))
    core.start_users(users, users, np.zeros(len(users), dtype=np.uint64))
    scores, _ = core.scores(core.check_actions(agent.act(core.observe(), np.random.default_rng(0))))
    return scores_policy(str(agent.algorithm), world.candidates, scores, n_items)
