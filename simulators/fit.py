"""Fit a user simulator from logs, report its fidelity, and cache it on disk.

``fit_simulator(logs) -> (FittedSimulator, report)``;
``python -m simulators.fit --data shop|movielens|PATH --out DIR --report`` writes
``DIR/simulator.npz``, ``DIR/fidelity.json`` and ``DIR/fidelity.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from encoders.device import deterministic_torch
from encoders.text import TEXT_ENCODERS, text_encoder_by_name
from encoders.training import tensor_batches, train_early_stopping
from simulators import dynamics
from simulators.dynamics import DynamicsParams, SessionState, sigmoid
from simulators.errors import DataError, cli_entry
from simulators.fit_config import FitConfig, ResponseNetConfig
from simulators.logs import LoggedData, item_feature_matrix, user_feature_matrix
from simulators.metrics import expected_calibration_error, ks_distance, roc_auc
from simulators.response import UserSimulator
from simulators.response_net import ResponseNet
from simulators.shop import LoggingPolicy
from simulators.simulator import FittedSimulator
from simulators.steps import StepTable, build_steps, position_bias_em
from simulators.storage import write_text_atomic


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
    n_topics = int(item_topic.max()) + 1
    params = DynamicsParams(
        drift_per_click=1.0,
        drift_retention=retention,
        boredom_per_view=1.0,
        boredom_per_click=0.0,
        boredom_retention=retention,
    )
    state = SessionState.fresh(steps.n_sessions, n_topics)
    views = np.zeros(steps.items.shape, dtype=np.float32)
    clicks = np.zeros(steps.items.shape, dtype=np.float32)
    topics = np.where(steps.slot_mask, item_topic[np.maximum(steps.items, 0)], 0)
    for t in range(int(steps.step.max()) + 1):
        rows = np.flatnonzero(steps.step == t)
        sessions = steps.session[rows]
        views[rows] = state.boredom[sessions[:, None], topics[rows]]
        clicks[rows] = state.interest_drift[sessions[:, None], topics[rows]]
        sub = state.take(sessions)
        shown = steps.slot_mask[rows].astype(np.int8)
        dynamics.advance(params, sub, topics[rows], steps.clicks[rows], shown)
        state.boredom[sessions], state.interest_drift[sessions] = sub.boredom, sub.interest_drift
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
    history = train_early_stopping(
        net, train, valid, epochs=config.epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
        weight_decay=config.weight_decay, patience=config.patience, seed=config.seed, description="fit response",
        tolerance=1e-5,
    )  # fmt: skip
    return {"valid_loss": history, "epochs": len(history)}


def _static_logits(net: ResponseNet, data: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    clicks, buys = [], []
    with torch.no_grad():
        items = net.item_vectors()
        for batch in tensor_batches(data, 4096):
            user_vec = net.user_vectors(batch["user"], batch["history"], batch["user_features"])
            c, p = net.static_logits(user_vec, batch["items"], items)
            clicks.append(c.numpy())
            buys.append(p.numpy())
    return np.concatenate(clicks), np.concatenate(buys)


@dataclass
class Calibration:
    """Click logit ``scale * static + offset + view_coef * views + click_coef * clicks``."""

    scale: float
    offset: float
    view_coef: float
    click_coef: float
    retention: float
    valid_nll: float


def _fit_calibration(
    static: np.ndarray,
    theta: np.ndarray,
    views: np.ndarray,
    clicked: np.ndarray,
    steps: StepTable,
    retention: float,
) -> Calibration:
    """Maximum likelihood of the four calibration/dynamics parameters (LBFGS, full batch)."""
    shown = torch.from_numpy(steps.slot_mask)
    s, v, c = (torch.from_numpy(np.asarray(x, dtype=np.float64))[shown] for x in (static, views, clicked))
    t = torch.from_numpy(np.broadcast_to(theta[: steps.items.shape[1]], steps.items.shape).copy())[shown]
    y = torch.from_numpy(steps.clicks.astype(np.float64))[shown]
    params = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([params], max_iter=100, line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        p = (t * torch.sigmoid(params[0] * s + params[1] + params[2] * v + params[3] * c)).clamp(
            1e-7, 1 - 1e-7
        )
        return -(y * torch.log(p) + (1 - y) * torch.log1p(-p)).mean()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        final = float(objective())
    a, b, gv, gc = (float(x) for x in params.detach())
    return Calibration(a, b, gv, gc, retention, final)


def dynamics_from_calibration(cal: Calibration, leave: dict[str, float]) -> DynamicsParams:
    """Map fitted coefficients onto :class:`DynamicsParams` (one retention for both states).

    ``leave`` may carry ``boredom_per_click``: boredom from clicks that the leave hazard sees.
    Its effect on clicks is then added back to the drift, so the click model is unchanged
    (both states share the retention, so the two terms cancel exactly in the click logit).
    """
    leave = dict(leave)
    per_click = leave.pop("boredom_per_click", 0.0)
    return DynamicsParams(
        drift_per_click=max(cal.click_coef, 0.0) + per_click,
        drift_retention=cal.retention,
        boredom_per_view=max(-cal.view_coef, 0.0),
        boredom_per_click=max(-cal.click_coef, 0.0) + per_click,
        boredom_retention=cal.retention,
        boredom_weight=1.0,
        **leave,
    )


def _irls(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, iterations: int = 25) -> np.ndarray:
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


def fit_leave_hazard(
    steps: StepTable, topics: np.ndarray, params: DynamicsParams, cap: int
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
    n_topics = int(topics.max()) + 1
    state = SessionState.fresh(steps.n_sessions, n_topics)
    recent_clicks = np.zeros((steps.n_sessions, n_topics))
    features = np.zeros((len(steps.user), 5))
    topic = np.where(steps.slot_mask, topics[np.maximum(steps.items, 0)], 0)
    for t in range(int(steps.step.max()) + 1):
        rows = np.flatnonzero(steps.step == t)
        sessions = steps.session[rows]
        sub = state.take(sessions)
        shown = steps.slot_mask[rows]
        dynamics.advance(params, sub, topic[rows], steps.clicks[rows], shown)
        state.boredom[sessions], state.interest_drift[sessions] = sub.boredom, sub.interest_drift
        recent_clicks[sessions] = recent_clicks[
            sessions
        ] * params.boredom_retention + dynamics.slate_category_counts(
            topic[rows], steps.clicks[rows] * shown, n_topics
        )
        boredom = np.take_along_axis(sub.boredom, topic[rows], axis=1)
        clicked = np.take_along_axis(recent_clicks[sessions], topic[rows], axis=1)
        count = np.maximum(shown.sum(1), 1)
        n_clicks = (steps.clicks[rows] * shown).sum(1)
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
    keep = ~censored
    w = _irls(features[keep], last[keep].astype(np.float64))
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


def replay_probabilities(steps: StepTable, simulator: UserSimulator) -> tuple[np.ndarray, np.ndarray]:
    """P(click) and P(purchase | click) of every logged slot under ``simulator``, its session
    state replayed from the logged slates and clicks: ``(S, K)`` each (0 in empty slots)."""
    topics = simulator.item_topic
    state = SessionState.fresh(steps.n_sessions, int(topics.max()) + 1)
    click = np.zeros(steps.items.shape)
    purchase = np.zeros(steps.items.shape)
    items = np.maximum(steps.items, 0)
    for t in range(int(steps.step.max()) + 1):
        rows = np.flatnonzero(steps.step == t)
        sessions = steps.session[rows]
        sub = state.take(sessions)
        click[rows] = simulator.click_probability(steps.user[rows], items[rows], sub)
        purchase[rows] = simulator.purchase_probability(steps.user[rows], items[rows], sub)
        dynamics.advance(
            simulator.dynamics, sub, topics[items[rows]], steps.clicks[rows], steps.slot_mask[rows]
        )
        state.boredom[sessions], state.interest_drift[sessions] = sub.boredom, sub.interest_drift
    return click * steps.slot_mask, purchase * steps.slot_mask


def simulate_session_lengths(
    simulator: UserSimulator, users: np.ndarray, policy: LoggingPolicy, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """Session lengths (steps) of ``users`` shown slates drawn from ``policy``."""
    from simulators.response import respond

    n = len(users)
    state = SessionState.fresh(n, int(simulator.item_topic.max()) + 1)
    lengths = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for _ in range(cap):
        if not len(active):
            break
        slates = policy.sample(len(active), rng)
        sub = state.take(active)
        response = respond(
            simulator, users[active], slates, sub, rng.random((len(active), 2 * slates.shape[1] + 1))
        )
        state.boredom[active], state.interest_drift[active] = sub.boredom, sub.interest_drift
        lengths[active] += 1
        active = active[~response.leave]
    return lengths


def fit_simulator(
    logs: LoggedData, config: FitConfig | None = None
) -> tuple[FittedSimulator, dict[str, Any]]:
    """Fit a :class:`FittedSimulator` from validated logs; return it with a fidelity report.

    Deterministic on CPU for a given ``config.seed``.
    """
    config = config or FitConfig()
    with deterministic_torch(config.seed):
        return _fit(logs, config)


def _fit(logs: LoggedData, config: FitConfig) -> tuple[FittedSimulator, dict[str, Any]]:
    start = time.perf_counter()
    split = logs.split_by_time(config.valid_fraction, config.test_fraction)
    embeddings = text_encoder_by_name(config.text_encoder).encode(logs.items["text"].tolist(), progress=True)
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
    net = ResponseNet(embeddings, side, logs.n_users, user_features.shape[1], theta, config.net)
    training = train_response_net(net, tensors["train"], tensors["valid"], config.net)
    valid_static, _ = _static_logits(net, tensors["valid"])
    calibrations = [
        _fit_calibration(valid_static, theta, *topic_exposure(valid, topics, rho), valid, rho)
        for rho in config.retention_grid
    ]
    best = min(calibrations, key=lambda c: c.valid_nll)
    cap = int(max(train.session_length.max(), valid.session_length.max()))
    base_params = dynamics_from_calibration(best, {})
    leave = fit_leave_hazard(train, topics, base_params, cap)
    params = dynamics_from_calibration(best, leave) if leave is not None else base_params
    simulator = _export(net, logs, embeddings, topics, user_features, theta, best, params, config)
    report = fidelity_report(net, simulator, tensors["test"], test, theta, best, cap, config)
    report |= {
        "data": logs.source,
        "fit_seconds": round(time.perf_counter() - start, 1),
        "training": training,
        "history_encoder": config.net.history_encoder,
        "text_encoder": config.text_encoder,
        "n_topics": int(topics.max()) + 1,
        "position_bias": [round(x, 4) for x in theta.tolist()],
        "dynamics": asdict(params),
        "dynamics_source": {
            "boredom_and_drift": "fitted" if best.view_coef != 0 or best.click_coef != 0 else "default",
            "leave": "fitted" if leave is not None else "default (all sessions have one length)",
            "retention_search": {str(c.retention): round(c.valid_nll, 6) for c in calibrations},
        },
        "calibration": {"scale": best.scale, "offset": best.offset},
    }
    return simulator, report


def _export(
    net: ResponseNet,
    logs: LoggedData,
    embeddings: np.ndarray,
    topics: np.ndarray,
    user_features: np.ndarray,
    theta: np.ndarray,
    cal: Calibration,
    params: DynamicsParams,
    config: FitConfig,
) -> FittedSimulator:
    """Static logits for every (user, item), users reading their last logged clicks."""
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
        "click_logit": (cal.scale * click.numpy() + cal.offset).astype(np.float32),
        "purchase_logit": purchase.numpy().astype(np.float32),
        "position_bias": theta,
        "item_topic": topics,
        "user_weight": counts / counts.sum(),
        "history": history,
        "item_embedding": embeddings.astype(np.float32),
        "has_purchases": np.asarray("purchase" in logs.interactions.columns),
    }
    return FittedSimulator(arrays, params)


def fidelity_report(
    net: ResponseNet,
    simulator: FittedSimulator,
    test_tensors: dict[str, torch.Tensor],
    test: StepTable,
    theta: np.ndarray,
    cal: Calibration,
    cap: int,
    config: FitConfig,
) -> dict[str, Any]:
    """Held-out click/purchase AUC, calibration error and session-length KS on the test split."""
    static_click, static_buy = _static_logits(net, test_tensors)
    views, clicked = topic_exposure(test, simulator.item_topic, cal.retention)
    shown = test.slot_mask
    bias = theta[: test.items.shape[1]][None, :]
    raw = bias * sigmoid(static_click)
    calibrated = bias * sigmoid(
        cal.scale * static_click + cal.offset + cal.view_coef * views + cal.click_coef * clicked
    )
    purchase = calibrated * sigmoid(static_buy)
    rng = np.random.default_rng(config.seed)
    impressions = np.bincount(test.items[shown], minlength=simulator.n_items) + 1.0
    policy = LoggingPolicy(impressions / impressions.sum(), 1.0, 1e-3, test.items.shape[1])
    lengths = simulate_session_lengths(simulator, test.session_user, policy, cap, rng)
    return {
        "test_steps": len(test.user),
        "click_auc": roc_auc(test.clicks[shown], calibrated[shown]),
        "purchase_auc": roc_auc(test.purchases[shown], purchase[shown]),
        "calibration_error": expected_calibration_error(test.clicks[shown], calibrated[shown]),
        "calibration_error_before_calibration": expected_calibration_error(test.clicks[shown], raw[shown]),
        "session_length_ks": ks_distance(lengths, test.session_length),
        "session_length_mean": float(lengths.mean()),
        "session_length_mean_logged": float(test.session_length.mean()),
        "session_cap": cap,
    }


def shop_ground_truth(logs: LoggedData, report: dict[str, Any], config: FitConfig) -> dict[str, Any]:
    """The same figures for the shop's true model on the same test rows."""
    from simulators.datasets.shop import shop_config_of
    from simulators.shop import ShopWorld

    world = ShopWorld(shop_config_of(logs))
    test = build_steps(
        logs.split_by_time(config.valid_fraction, config.test_fraction).test,
        config.history_length,
        history_from=logs,
    )
    truth, buy = replay_probabilities(test, world)
    shown = test.slot_mask
    lengths = simulate_session_lengths(
        world,
        test.session_user,
        world.logging_policy,
        report["session_cap"],
        np.random.default_rng(config.seed),
    )
    return {
        "click_auc_ground_truth": roc_auc(test.clicks[shown], truth[shown]),
        "purchase_auc_ground_truth": roc_auc(test.purchases[shown], (truth * buy)[shown]),
        "calibration_error_ground_truth": expected_calibration_error(test.clicks[shown], truth[shown]),
        "session_length_ks_ground_truth": ks_distance(lengths, test.session_length),
    }


def fit_and_report(logs: LoggedData, config: FitConfig) -> tuple[FittedSimulator, dict[str, Any]]:
    """:func:`fit_simulator`, plus the ground-truth figures when the logs are the shop's."""
    simulator, report = fit_simulator(logs, config)
    if logs.origin is not None and logs.source.startswith("shop("):
        report |= shop_ground_truth(logs, report, config)
    return simulator, report


def write_outputs(simulator: FittedSimulator, report: dict[str, Any], folder: Path) -> None:
    """``simulator.npz``, ``dynamics.json``, ``fidelity.md`` and (last) ``fidelity.json``."""
    simulator.save(folder)
    write_text_atomic(folder / "fidelity.md", fidelity_markdown(report))
    write_text_atomic(folder / "fidelity.json", json.dumps(report, indent=2) + "\n")


def fidelity_markdown(report: dict[str, Any]) -> str:
    """The report's headline figures as a markdown table."""
    rows = [
        ("click AUC (held-out)", "click_auc", "click_auc_ground_truth"),
        ("purchase AUC (held-out)", "purchase_auc", "purchase_auc_ground_truth"),
        ("click calibration error (ECE)", "calibration_error", "calibration_error_ground_truth"),
        ("session-length KS distance", "session_length_ks", "session_length_ks_ground_truth"),
    ]
    lines = [
        f"# Simulator fidelity: {report.get('data', '')}",
        "",
        "| figure | fitted | ground truth |",
        "| --- | --- | --- |",
    ]
    for name, fitted, truth in rows:
        value = report.get(fitted)
        gt = report.get(truth)
        lines.append(f"| {name} | {_fmt(value)} | {_fmt(gt) if gt is not None else 'n/a'} |")
    lines += [
        "",
        f"Dynamics: {report.get('dynamics_source', {})}",
        "",
        f"Fitted in {report.get('fit_seconds')} s.",
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``python -m simulators.fit --data shop|movielens|PATH --out DIR [--report]``."""
    from simulators.datasets import load_logs

    parser = argparse.ArgumentParser(prog="python -m simulators.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--report", action="store_true", help="print the fidelity table")
    parser.add_argument("--history-encoder", choices=["mean", "lstm"], default="mean")
    parser.add_argument("--text-encoder", choices=list(TEXT_ENCODERS), default="minilm")
    parser.add_argument("--epochs", type=int, default=ResponseNetConfig.epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logs = load_logs(args.data)
    net = replace(
        ResponseNetConfig(), history_encoder=args.history_encoder, epochs=args.epochs, seed=args.seed
    )
    config = FitConfig(text_encoder=args.text_encoder, net=net, seed=args.seed)
    simulator, report = fit_and_report(logs, config)
    write_outputs(simulator, report, args.out)
    if args.report:
        print(fidelity_markdown(report))
    print(f"wrote {args.out / 'simulator.npz'} and {args.out / 'fidelity.json'}")


if __name__ == "__main__":
    main()
