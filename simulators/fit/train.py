"""Training a simulator from logs: topics, the response network, calibration, the dynamics and
the leave hazard, exported as a numpy :class:`~simulators.fit.simulator.FittedSimulator`.

The fidelity report is :mod:`simulators.fit.report`; the whole pipeline
:func:`simulators.fit.pipeline.fit_simulator`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from encoders.text import catalog_encoder, catalog_vectors
from encoders.training import tensor_batches, train_early_stopping
from simulators.core.errors import DataError
from simulators.data.click_models import position_bias_em
from simulators.data.features import item_feature_matrix, user_feature_matrix
from simulators.data.logs import LoggedData
from simulators.data.steps import StepTable, build_steps
from simulators.dynamics import DynamicsParams, UserTraits
from simulators.fit.calibration import Calibration, dynamics_from_calibration, fit_calibration
from simulators.fit.config import FitConfig, ResponseNetConfig
from simulators.fit.leave import fit_leave_hazard
from simulators.fit.net import ResponseNet
from simulators.fit.sessions import fit_session_dynamics
from simulators.fit.simulator import FittedSimulator
from simulators.fit.traits import (
    centred_breadth,
    fit_breadth_boredom,
    fit_patience,
    history_breadth,
    traits_report,
)
from simulators.rollout import replay


# ------------------------------------------------------------------------------- fitting
def item_topics(logs: LoggedData, embeddings: np.ndarray, config: FitConfig) -> np.ndarray:
    """Topic of each item: the ``topic_column`` if present, else k-means on the embeddings."""
    if config.topic_column in logs.items.columns:
        return pd.factorize(logs.items[config.topic_column].astype(str), sort=True)[0].astype(np.int64)
    rng = np.random.default_rng(config.seed)
    k = min(config.n_topics, len(embeddings))
    centres = embeddings[rng.choice(len(embeddings), size=k, replace=False)]
    for _ in range(25):
        labels = np.argmax(embeddings @ centres.T - 0.5 * (centres**2).sum(1), axis=1)
        for j in range(k):
            if (labels == j).any():
                centres[j] = embeddings[labels == j].mean(0)
    return pd.factorize(labels, sort=True)[0].astype(np.int64)


def topic_exposure(
    steps: StepTable, item_topic: np.ndarray, retention: float
) -> tuple[np.ndarray, np.ndarray]:
    """Decayed counts of each slot's topic shown / clicked earlier in the session: ``(S, K)`` x2.

    The count before step t is ``sum_{s<t} retention^(t-1-s) * n_s(topic)``: the boredom and
    drift state of :mod:`simulators.dynamics` with unit increments.
    """
    params = DynamicsParams(
        drift_per_click=1.0,
        drift_retention=retention,
        boredom_per_view=1.0,
        boredom_per_click=0.0,
        boredom_retention=retention,
    )
    views = np.zeros(steps.items.shape, dtype=np.float32)
    clicks = np.zeros(steps.items.shape, dtype=np.float32)
    for part in replay(steps, item_topic, params):
        views[part.rows] = np.take_along_axis(part.before.boredom, part.topics, axis=1)
        clicks[part.rows] = np.take_along_axis(part.before.interest_drift, part.topics, axis=1)
    return views, clicks


def _tensors(
    steps: StepTable, user_features: np.ndarray, views: np.ndarray, clicked: np.ndarray
) -> dict[str, torch.Tensor]:
    return {
        "user": torch.from_numpy(steps.user),
        "history": torch.from_numpy(steps.history[steps.session]),
        "user_features": torch.from_numpy(user_features[steps.user]),
        "items": torch.from_numpy(steps.items),
        "click": torch.from_numpy(steps.clicks.astype(np.int64)),
        "purchase": torch.from_numpy(steps.purchases.astype(np.int64)),
        "views": torch.from_numpy(views),
        "clicked": torch.from_numpy(clicked),
    }


def train_response_net(
    net: ResponseNet,
    train: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor],
    config: ResponseNetConfig,
) -> dict[str, Any]:
    """Adam with early stopping on validation NLL; restores the best weights."""
    history = train_early_stopping(net, train, valid, config.optim, description="fit response")
    return {"valid_loss": history, "epochs": len(history)}


def static_logits(net: ResponseNet, data: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Click and purchase logits before calibration and dynamics of every step in ``data``: ``(S, K)`` x2."""
    clicks, buys = [], []
    with torch.no_grad():
        items = net.item_vectors()
        for batch in tensor_batches(data, 4096):
            user_vec = net.user_vectors(batch["user"], batch["history"], batch["user_features"])
            c, p = net.static_logits(user_vec, batch["items"], items)
            clicks.append(c.numpy())
            buys.append(p.numpy())
    return np.concatenate(clicks), np.concatenate(buys)


def cross_fitted_logits(
    make_net: Callable[[], ResponseNet],
    train: StepTable,
    tensors: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor],
    config: FitConfig,
) -> list[tuple[np.ndarray, StepTable]]:
    """Each of ``config.cross_fit_folds`` folds of the training sessions (drawn with
    ``config.seed``) with its static click logits from a fresh network (``make_net``) trained on
    the other folds, early-stopped on ``valid``: ``[(static (S_f, K), steps_f), ...]``."""
    rng = np.random.default_rng([config.seed, 31])
    fold_of = rng.permutation(train.n_sessions) % config.cross_fit_folds
    folds = []
    for f in range(config.cross_fit_folds):
        rows = torch.from_numpy(fold_of[train.session] == f)
        net = make_net()
        train_response_net(net, {k: v[~rows] for k, v in tensors.items()}, valid, config.net)
        static, _ = static_logits(net, {k: v[rows] for k, v in tensors.items()})
        folds.append((static, train.subset_sessions(fold_of == f)))
    return folds


@dataclass
class FitResult:
    """A trained simulator and what its fidelity report reads."""

    simulator: FittedSimulator
    net: ResponseNet
    """The trained response network (before export)."""
    test_tensors: dict[str, torch.Tensor]
    test: StepTable
    """The held-out (latest) sessions."""
    theta: np.ndarray
    """``(K,)`` examination per slot."""
    calibration: Calibration
    cap: int
    """The logs' session cap (longest session in train and valid)."""
    info: dict[str, Any]
    """How it was fitted (the report's descriptive entries)."""


def half_of_users(logs: LoggedData, config: FitConfig) -> LoggedData:
    """The logs a fit learns from: all of them (``config.sample == 0``), or the sessions of half
    the users (an ensemble member, :attr:`FitConfig.sample`): members ``2j - 1`` and ``2j`` split
    one random order of the users (drawn with ``config.seed`` and ``j``) into its first and second
    half, so each pair of members holds every user once (two halves of the logs)."""
    if config.sample == 0:
        return logs
    rng = np.random.default_rng([config.seed, (config.sample + 1) // 2])
    users = logs.users["user_id"].to_numpy()
    order = users[rng.permutation(len(users))]
    half = max(len(users) // 2, 1)
    chosen = order[:half] if config.sample % 2 == 1 else order[half:]
    return logs.with_interactions(logs.interactions[logs.interactions["user_id"].isin(chosen)])


@dataclass(frozen=True)
class FitInputs:
    """The logs as the fit reads them (:func:`fit_inputs`): the time split as steps and tensors,
    the items' text embeddings and topics, the users' features, the examination per slot."""

    train: StepTable
    """The training sessions (the earliest), as steps."""
    valid: StepTable
    """The validation sessions (early stopping, calibration, the dynamics' clicks)."""
    test: StepTable
    """The held-out sessions (the latest: the fidelity report's)."""
    tensors: dict[str, dict[str, torch.Tensor]]
    """``train``, ``valid`` and ``test`` as the response network's batches."""
    embeddings: np.ndarray
    """``(n_items, text_dim)`` the items' text embeddings."""
    topics: np.ndarray
    """``(n_items,)`` each item's topic (:func:`item_topics`)."""
    user_features: np.ndarray
    """``(n_users, F)`` the users' feature matrix."""
    theta: np.ndarray
    """``(K,)`` examination per slot (PBM EM on the training steps)."""
    side: np.ndarray
    """``(n_items, F)`` the items' side features."""
    n_users: int
    """Users in the user table (the network's id embedding)."""
    net_config: ResponseNetConfig
    """The response network's architecture and optimiser."""

    def make_net(self) -> ResponseNet:
        """A fresh, untrained response network for these inputs."""
        return ResponseNet(
            self.embeddings, self.side, self.n_users, self.user_features.shape[1], self.theta, self.net_config
        )


def fit_inputs(logs: LoggedData, config: FitConfig) -> FitInputs:
    """The time split of ``logs`` (of half the users for an ensemble member) as the fit reads it;
    :class:`~simulators.core.errors.DataError` when it leaves no validation or test session."""
    logs.require_positive_feedback("fit a simulator from")
    split = half_of_users(logs, config).split_by_time(config.valid_fraction, config.test_fraction)
    embeddings = catalog_vectors(logs, config.text_encoder)
    topics = item_topics(logs, embeddings, config)
    user_features = user_feature_matrix(logs.users)
    train, valid, test = (build_steps(part, config.history_length, history_from=logs) for part in split)
    if not len(valid.user) or not len(test.user):
        raise DataError("too few sessions to split into train / valid / test (need at least 3)")
    base_retention = 0.8
    tensors = {
        name: _tensors(steps, user_features, *topic_exposure(steps, topics, base_retention))
        for name, steps in (("train", train), ("valid", valid), ("test", test))
    }
    theta = position_bias_em(train, logs.n_items)
    side = item_feature_matrix(logs, split.train)
    return FitInputs(
        train, valid, test, tensors, embeddings, topics, user_features, theta, side, logs.n_users, config.net
    )


def train_simulator(logs: LoggedData, config: FitConfig) -> FitResult:
    """Fit the response network, its calibration, the dynamics and the leave hazard on the time
    split of ``logs`` (call under :func:`encoders.device.deterministic_torch`)."""
    inputs = fit_inputs(logs, config)
    train, valid, test, tensors, topics, theta = (
        inputs.train, inputs.valid, inputs.test, inputs.tensors, inputs.topics, inputs.theta
    )  # fmt: skip
    make_net = inputs.make_net
    net = make_net()
    training = train_response_net(net, tensors["train"], tensors["valid"], config.net)
    valid_static, _ = static_logits(net, tensors["valid"])
    calibrations = [
        fit_calibration(valid_static, theta, *topic_exposure(valid, topics, rho), valid, rho)
        for rho in config.retention_grid
    ]
    best = min(calibrations, key=lambda c: c.valid_nll)
    n_topics = int(topics.max()) + 1
    history, _ = logs.padded_histories(config.history_length)
    breadth = centred_breadth(history_breadth(history, topics, n_topics))
    beta, best, breadth_nll = fit_breadth_boredom(
        valid_static,
        theta,
        *topic_exposure(valid, topics, best.retention),
        valid,
        best.retention,
        breadth,
        best,
    )
    boredom_only = UserTraits(np.exp(beta * breadth), np.zeros(logs.n_users))
    cap = int(max(train.session_length.max(), valid.session_length.max()))
    base_params = dynamics_from_calibration(best, {})
    leave = fit_leave_hazard(train, topics, base_params, cap, boredom_only)
    params = dynamics_from_calibration(best, leave) if leave is not None else base_params
    patience = fit_patience(train, valid, topics, params, cap, boredom_only)
    session_fit = None
    if config.dynamics_fit == "sessions" and leave is not None:
        # Every coefficient at once, from the step-wise fit and the users' patience under it.
        # With random effects the fit returns the users' offsets itself; without, the patience is
        # estimated again under the new coefficients (a second round moves them little).
        folds = (
            cross_fitted_logits(make_net, train, tensors["train"], tensors["valid"], config)
            if config.cross_fit_folds
            else []
        )
        session_fit = fit_session_dynamics(
            valid_static, theta, valid, train, topics, cap, boredom_only.boredom_scale, patience.offsets,
            params, best.scale, best.offset, config.random_effects, folds,
            session_effects=config.session_effects,
        )  # fmt: skip
        if session_fit is not None:  # else the step-wise fit stands
            params = session_fit.params
            best = replace(best, scale=session_fit.scale, offset=session_fit.offset)
            if session_fit.leave_offsets is None:
                patience = fit_patience(train, valid, topics, params, cap, boredom_only)
    interests = None if session_fit is None else session_fit.interests
    offsets = (
        patience.offsets
        if session_fit is None or session_fit.leave_offsets is None
        else session_fit.leave_offsets
    )
    traits = UserTraits(boredom_only.boredom_scale, offsets)
    simulator = _export(
        net,
        logs,
        inputs.embeddings,
        topics,
        inputs.user_features,
        theta,
        best,
        params,
        traits,
        config,
        interests,
    )
    info = {
        "data": logs.source,
        "training": training,
        "history_encoder": config.net.history_encoder,
        "text_encoder": catalog_encoder(logs, config.text_encoder),
        "item_text": logs.item_text,
        "data_notes": list(logs.notes),
        "n_topics": int(topics.max()) + 1,
        "position_bias": [round(x, 4) for x in theta.tolist()],
        "dynamics": asdict(params),
        "dynamics_source": {
            "boredom_and_drift": "fitted" if best.view_coef != 0 or best.click_coef != 0 else "default",
            "leave": "fitted" if leave is not None else "default (all sessions have one length)",
            "retention_search": {str(c.retention): round(c.valid_nll, 6) for c in calibrations},
            "fit": config.dynamics_fit if session_fit is not None else "steps",
            "session_nll": None
            if session_fit is None
            else {"click": round(session_fit.click_nll, 6), "leave": round(session_fit.leave_nll, 6)},
        },
        "calibration": {"scale": best.scale, "offset": best.offset},
        "user_traits": traits_report(beta, breadth_nll, patience, session_fit),
    }
    return FitResult(simulator, net, tensors["test"], test, theta, best, cap, info)


def _export(
    net: ResponseNet,
    logs: LoggedData,
    embeddings: np.ndarray,
    topics: np.ndarray,
    user_features: np.ndarray,
    theta: np.ndarray,
    cal: Calibration,
    params: DynamicsParams,
    traits: UserTraits,
    config: FitConfig,
    interests: np.ndarray | None = None,
) -> FittedSimulator:
    """Static logits for every (user, item), users reading their last logged clicks, plus each
    user's estimated interest in the item's topic (``interests (n_users, n_topics)``, click-logit
    units) when the fit has them."""
    history, _ = logs.padded_histories(config.history_length)
    with torch.no_grad():
        user_vec = net.user_vectors(
            torch.arange(logs.n_users), torch.from_numpy(history), torch.from_numpy(user_features)
        )
        items = net.item_vectors()
        dim = items.shape[1]
        bias = net.item_biases()
        click = user_vec[:, :dim] @ items.T + bias[:, 0] + net.offset[0]
        purchase = user_vec[:, dim:] @ net.purchase_item(items).T + bias[:, 1] + net.offset[1]
    sessions = logs.interactions.drop_duplicates("session_id")["user_id"]
    counts = np.bincount(
        pd.Index(logs.users["user_id"]).get_indexer(sessions), minlength=logs.n_users
    ).astype(np.float64)
    arrays = {
        "click_logit": (
            cal.scale * click.numpy() + cal.offset + (0 if interests is None else interests[:, topics])
        ).astype(np.float32),
        "purchase_logit": purchase.numpy().astype(np.float32),
        "position_bias": theta,
        "item_topic": topics,
        "user_weight": counts / counts.sum(),
        "history": history,
        "item_embedding": embeddings.astype(np.float32),
        "has_purchases": np.asarray("purchase" in logs.interactions.columns),
        "boredom_scale": traits.boredom_scale,
        "leave_offset": traits.leave_offset,
    }
    return FittedSimulator(arrays, params)
