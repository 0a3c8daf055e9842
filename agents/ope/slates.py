"""Shop slate logs as estimator inputs: the target's and logger's prefix probabilities, slot
marginals and exposures at the logged items, and the cross-fitted reward model's predictions."""

from __future__ import annotations

import numpy as np

from agents.ope.inputs import SessionInputs, SlateInputs
from agents.ope.reward_models import cross_fitted_models
from agents.ope.targets import PLPolicy
from simulators.core.errors import DataError
from simulators.data.steps import StepTable


def slate_inputs(
    steps: StepTable, logging: PLPolicy, target: PLPolicy, folds: int = 3, n_samples: int = 256,
    rng: np.random.Generator | None = None, segment: np.ndarray | None = None,
    logged_prefix: np.ndarray | None = None,
) -> tuple[SlateInputs, SessionInputs]:  # fmt: skip
    """The slate (and first-slot) estimators' inputs for ``target`` on logs of slates drawn
    from ``logging``, and the same logs as sessions. ``segment (n_users,)``: user segments of
    the reward model (see :func:`user_segments`; default one). ``logged_prefix (n, K)``: the
    logger's exact prefix probabilities as logged (``logging`` then only spans the catalog: the
    logger's marginals and exposures are left unknown)."""
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
    logging_marginal: np.ndarray | None
    logging_exposure: np.ndarray | None
    target_exposure_or_none: np.ndarray | None = target_exposure
    if logged_prefix is None:
        logging_marginal, _, logging_exposure = _marginals_at(
            logging, users, items, gamma, model_row, theta, n_samples, rng
        )
        pscore_prefix = logging.prefix_probabilities(users, items)
    else:
        logging_marginal, logging_exposure, target_exposure_or_none = None, None, None
        pscore_prefix = logged_prefix
    slates = SlateInputs(
        reward, pscore_prefix, target.prefix_probabilities(users, items),
        logging_marginal, target_marginal, q_logged, q_next, q_target_marginal, steps.session,
        logging_exposure, target_exposure_or_none,
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
    for rows, local, margins in policy.marginal_chunks(users, k, n_samples, rng):
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
