"""The fidelity report of a fitted simulator: held-out click and purchase AUC, calibration,
session-length KS against the logs, and the same figures for the shop's true model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.core.metrics import expected_calibration_error, ks_distance, roc_auc
from simulators.core.storage import write_text_atomic
from simulators.data.logs import LoggedData
from simulators.data.plackett_luce import PlackettLuceSlates, mixed_weights
from simulators.data.steps import StepTable, build_steps
from simulators.dynamics import sigmoid
from simulators.fit.config import FitConfig
from simulators.fit.simulator import FittedSimulator
from simulators.fit.train import FitResult, static_logits
from simulators.fit.traits import history_breadth
from simulators.response import UserSimulator
from simulators.rollout import replay, replay_probabilities, rollout
from simulators.shop.world import ShopWorld

ENV_SESSION_CAP = 20
"""The environments' default session cap (``EnvConfig.max_steps``): the report also compares
session lengths clipped there, the part of a session an episode plays."""


def simulate_session_lengths(
    simulator: UserSimulator,
    users: np.ndarray,
    policy: PlackettLuceSlates,
    cap: int,
    rng: np.random.Generator,
    first: np.ndarray | None = None,
) -> np.ndarray:
    """Session lengths (steps) of ``users`` shown slates drawn from ``policy`` (``first``: the
    sessions that are their user's first visit, :func:`~simulators.rollout.rollout`)."""
    lengths = np.zeros(len(users), dtype=np.int64)

    def choose(active: np.ndarray, g: np.random.Generator) -> np.ndarray:
        return policy.sample(len(active), g)

    for step in rollout(simulator, users, choose, cap, rng, first=first):
        lengths[step.active] += 1
    return lengths


def logged_slates(steps: StepTable, n_items: int) -> PlackettLuceSlates:
    """The slates a report's simulated sessions are shown: drawn by the logged items' impression
    shares (plus one each), the logging policy as a popularity distribution."""
    impressions = np.bincount(steps.items[steps.slot_mask], minlength=n_items) + 1.0
    return PlackettLuceSlates(mixed_weights(impressions / impressions.sum(), 1.0, 1e-3), steps.items.shape[1])


def held_out_figures(simulator: FittedSimulator, steps: StepTable, cap: int, seed: int) -> dict[str, Any]:
    """A simulator scored on logged sessions ``steps`` it may not have learned from (another half
    of the users): the click AUC of its probabilities with its own session state replayed from
    the logged slates and clicks, and the KS distance of its session lengths (the same users,
    shown :func:`logged_slates`, at most ``cap`` steps) to the logged ones."""
    click, _ = replay_probabilities(steps, simulator)
    shown = steps.slot_mask
    lengths = simulate_session_lengths(
        simulator,
        steps.session_user,
        logged_slates(steps, simulator.n_items),
        cap,
        np.random.default_rng(seed),
        steps.session_first,
    )
    return {
        "steps": len(steps.user),
        "sessions": steps.n_sessions,
        "click_auc": roc_auc(steps.clicks[shown], click[shown]),
        "session_length_ks": ks_distance(lengths, steps.session_length),
        "session_length_ks_at_env_cap": ks_distance(
            np.minimum(lengths, ENV_SESSION_CAP), np.minimum(steps.session_length, ENV_SESSION_CAP)
        ),
    }


def dynamic_terms(steps: StepTable, simulator: FittedSimulator) -> np.ndarray:
    """``(S, K)`` what the session state adds to each logged slot's click logit under the
    simulator's own dynamics and user traits (drift minus weighted boredom), its state replayed
    from the logged slates and clicks."""
    terms = np.zeros(steps.items.shape)
    weight = simulator.dynamics.boredom_weight
    for part in replay(steps, simulator.item_topic, simulator.dynamics, simulator.user_traits):
        drift = np.take_along_axis(part.before.interest_drift, part.topics, axis=1)
        boredom = np.take_along_axis(part.before.boredom, part.topics, axis=1)
        terms[part.rows] = drift - weight * boredom
    return terms * steps.slot_mask


def fidelity_report(result: FitResult, config: FitConfig) -> dict[str, Any]:
    """Held-out click/purchase AUC, calibration error and session-length KS on the test split."""
    simulator, test, theta, cal = result.simulator, result.test, result.theta, result.calibration
    static_click, static_buy = static_logits(result.net, result.test_tensors)
    shown = test.slot_mask
    bias = theta[: test.items.shape[1]][None, :]
    raw = bias * sigmoid(static_click)
    calibrated = bias * sigmoid(cal.scale * static_click + cal.offset + dynamic_terms(test, simulator))
    purchase = calibrated * sigmoid(static_buy)
    rng = np.random.default_rng(config.seed)
    lengths = simulate_session_lengths(
        simulator,
        test.session_user,
        logged_slates(test, simulator.n_items),
        result.cap,
        rng,
        test.session_first,
    )
    breadth = history_breadth(simulator.history, simulator.item_topic, int(simulator.item_topic.max()) + 1)
    return {
        "test_steps": len(test.user),
        "click_auc": roc_auc(test.clicks[shown], calibrated[shown]),
        "purchase_auc": roc_auc(test.purchases[shown], purchase[shown]),
        "calibration_error": expected_calibration_error(test.clicks[shown], calibrated[shown]),
        "calibration_error_before_calibration": expected_calibration_error(test.clicks[shown], raw[shown]),
        "session_length_ks": ks_distance(lengths, test.session_length),
        "session_length_ks_at_env_cap": ks_distance(
            np.minimum(lengths, ENV_SESSION_CAP), np.minimum(test.session_length, ENV_SESSION_CAP)
        ),
        "session_length_ks_returning": _returning_ks(lengths, test),
        "session_length_mean": float(lengths.mean()),
        "session_length_mean_logged": float(test.session_length.mean()),
        "session_cap": result.cap,
        "leave_rate_by_breadth_decile": leave_rate_by_decile(
            breadth[test.session_user], lengths, test.session_length, result.cap
        ),
    }


def _returning_ks(lengths: np.ndarray, steps: StepTable) -> float:
    """The session-length KS over the sessions that are not their user's first visit (what the
    envs play; NaN when there are none)."""
    returning = np.ones(steps.n_sessions, bool) if steps.session_first is None else ~steps.session_first
    return (
        ks_distance(lengths[returning], steps.session_length[returning]) if returning.any() else float("nan")
    )


def leave_rate_by_decile(
    covariate: np.ndarray, simulated: np.ndarray, logged: np.ndarray, cap: int
) -> dict[str, list[float]]:
    """Leaves per step (sessions that end before ``cap`` over steps played) of simulated and
    logged sessions ``(n,)`` each, by decile of a per-session ``covariate`` (NaN: left out)."""
    known = np.isfinite(covariate)
    edges = np.quantile(covariate[known], np.linspace(0, 1, 11))
    decile = np.clip(np.searchsorted(edges, covariate, side="right") - 1, 0, 9)
    out: dict[str, list[float]] = {"simulated": [], "logged": []}
    for d in range(10):
        rows = known & (decile == d)
        for name, lengths in (("simulated", simulated), ("logged", logged)):
            steps = lengths[rows].sum()
            out[name].append(round(float((lengths[rows] < cap).sum() / steps), 4) if steps else float("nan"))
    return out


def shop_ground_truth(
    logs: LoggedData, world: ShopWorld, report: dict[str, Any], config: FitConfig, simulator: FittedSimulator
) -> dict[str, Any]:
    """The same figures for the shop's true model on the same test rows, and how well the
    fitted users' traits track the true ones (Pearson correlation over users who logged a
    session; NaN when either side does not vary)."""
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
        test.session_first,
    )
    return {
        "click_auc_ground_truth": roc_auc(test.clicks[shown], truth[shown]),
        "purchase_auc_ground_truth": roc_auc(test.purchases[shown], (truth * buy)[shown]),
        "calibration_error_ground_truth": expected_calibration_error(test.clicks[shown], truth[shown]),
        "session_length_ks_ground_truth": ks_distance(lengths, test.session_length),
        "traits_correlation": _traits_correlation(world, simulator, logs),
    }


def _traits_correlation(world: ShopWorld, simulator: FittedSimulator, logs: LoggedData) -> dict[str, float]:
    users = np.unique(logs.interactions["user_id"].to_numpy())
    rows = pd.Index(logs.users["user_id"]).get_indexer(users)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")

    true, fitted = world.user_traits, simulator.user_traits
    return {
        "boredom_scale": round(corr(np.log(true.boredom_scale[rows]), np.log(fitted.boredom_scale[rows])), 4),
        "leave_offset": round(corr(true.leave_offset[rows], fitted.leave_offset[rows]), 4),
        "variety_vs_history_breadth": round(
            corr(
                world.user_variety[rows],
                np.nan_to_num(
                    history_breadth(simulator.history, simulator.item_topic, world.config.n_categories)[rows]
                ),
            ),
            4,
        ),
    }


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
        ("return-gap KS distance (last third of the days)", "return_gap_ks", "return_gap_ks_ground_truth"),
    ]
    lines = [
        f"# Simulator fidelity: {report.get('data', '')}",
        "",
        "| figure | fitted | ground truth |",
        "| --- | --- | --- |",
    ]
    for name, fitted, truth in rows:
        if fitted not in report:  # (logs where no user comes back have no return figures)
            continue
        value = report.get(fitted)
        gt = report.get(truth)
        lines.append(f"| {name} | {_fmt(value)} | {_fmt(gt) if gt is not None else 'n/a'} |")
    lines += [
        "",
        f"Item encoder: {report.get('text_encoder')} (items' text: {report.get('item_text', 'text')})",
    ]
    lines += [f"- {note}" for note in report.get("data_notes", [])]
    lines += [
        "",
        f"Dynamics: {report.get('dynamics_source', {})}",
        "",
        f"Fitted in {report.get('fit_seconds')} s.",
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
