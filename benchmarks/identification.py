"""What a shop's logs can tell of its dynamics: the whole-session fit, given the truth's click model.

``python -m benchmarks.identification --json FILE [--data shop]``

The planner's diagnostic (``benchmarks/results/planner-true-parts``) found boredom the mechanism
whose error costs ``planner:fitted`` most: the fit puts a click's boredom at 0.10 click-logit units
against the truth's 0.27, so a click seems to raise its topic's pull for the rest of the session.
This benchmark asks whether the logs can tell it at all. It fits the dynamics by the likelihood of
whole sessions (:func:`~simulators.fit.sessions.fit_session_dynamics`) on the fit's training
sessions of a shop, with the truth's static click logits and examination (no error from the
response network), starting from the truth's coefficients, under what is known of the users:

- ``traits known``: each user's true boredom scale and leave offset;
- ``scales known``: the true boredom scales; interests and leave offsets random effects, as in the
  production fit;
- ``scales unknown``: every boredom scale 1 (what the production fit uses: the logs' history
  breadth tells it nothing of them), interests and leave offsets random effects;
- ``nothing known``: every scale 1 and every leave offset 0, no random effects;

beside ``production fit``: the cached fit of the logs (its own static logits, cross-fitted).
Reported per row: the coefficients in click-logit units beside the truth's, and what a planner
reads of them, a click's net effect on its topic's click logit (drift minus boredom) 1, 5 and 10
steps later.

The production fit's net effect is about twice the truth's; ``errors`` asks which part of the
response network's error does that. The training sessions are scored by networks cross-fitted on
the other fold, as the production fit's are (:func:`~simulators.fit.train.cross_fitted_logits`:
the same folds, other initial weights). A slot's error is the truth's static logit less the
network's calibrated to it (least squares per fold: what the fit's own calibration of each fold
cannot undo). The same whole-session fit (boredom scales unknown, interests and leave offsets
random effects) then reads the folds with:

- ``network``: the network's logits, with the examination the fit estimated;
- ``truth``: the truth's (this row and the ones below with the truth's examination);
- ``user-topic error, each fold's own``: the truth's less the error averaged per user and topic in
  each fold (the folds' networks differ, so a user's error in a topic differs between folds);
- ``error within user-topic``: the truth's less the rest of the error;
- ``user-topic error``: the truth's less the error averaged per user and topic over both folds
  (one per user and topic, as the fit's interests are);
- ``normal user-topic error``: the truth's less a normal error per user and topic, one for both
  folds, with that error's spread (the random effects' own assumption);
- ``user-topic error shuffled``: the truth's less that error shuffled among each user's topics
  (the same errors, no longer tied to the topics they belong to).

Each row adds the spread of its per-(user, topic) error over the shown slots and the interests'
fitted spread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tables import report_markdown
from encoders.device import deterministic_torch
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, input_files, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.data.steps import StepTable, build_steps
from simulators.datasets import resolve_data
from simulators.dynamics import DynamicsParams, SessionState
from simulators.fit.cache import load_or_fit
from simulators.fit.config import FitConfig
from simulators.fit.sessions import fit_session_dynamics
from simulators.fit.train import cross_fitted_logits, fit_inputs, item_topics
from simulators.shop.world import ShopWorld

LAGS = (1, 5, 10)
"""Steps after a click at which its net effect on its topic's click logit is reported."""

SHOWN = (
    "drift_per_click", "drift_retention", "boredom_per_view", "boredom_per_click", "boredom_retention",
    "leave_bias", "leave_per_boredom", "leave_if_no_click", "leave_per_click",
)  # fmt: skip
"""The coefficients reported (click-logit units)."""


def true_static_logits(truth: ShopWorld, steps: StepTable) -> np.ndarray:
    """The truth's static click logits of ``steps``' slots (fresh sessions)."""
    fresh = SessionState.fresh(len(steps.user), truth.config.n_categories)
    return truth.relevance(steps.user, np.maximum(steps.items, 0), fresh)


def training_steps(logs: LoggedData, truth: ShopWorld) -> tuple[StepTable, np.ndarray, np.ndarray]:
    """The fit's training sessions of ``logs`` as steps, the items' topics and the truth's static
    click logits of those steps' slots."""
    config = FitConfig()
    train = build_steps(
        logs.split_by_time(config.valid_fraction, config.test_fraction).train, history_from=logs
    )
    topics = item_topics(logs, np.zeros((logs.n_items, 1)), config)
    return train, topics, true_static_logits(truth, train)


def in_logit_units(params: DynamicsParams) -> dict[str, float]:
    """``params``' :data:`SHOWN` coefficients with boredom counted in click-logit units (the fit's)."""
    w = params.boredom_weight
    scaled = {"boredom_per_view": w, "boredom_per_click": w, "leave_per_boredom": 1 / w if w else 0.0}
    return {name: round(getattr(params, name) * scaled.get(name, 1.0), 4) for name in SHOWN}


def net_click_effect(params: DynamicsParams, lag: int) -> float:
    """A click's drift minus its boredom on its topic's click logit ``lag`` steps later (the
    views' boredom left out)."""
    drift = params.drift_per_click * params.drift_retention ** (lag - 1)
    boredom = params.boredom_weight * params.boredom_per_click * params.boredom_retention ** (lag - 1)
    return round(drift - boredom, 4)


def row(params: DynamicsParams, seconds: float | None = None) -> dict[str, Any]:
    """One table row: the coefficients and the net effects at :data:`LAGS`."""
    effects = {f"net_click_effect_lag{lag}": net_click_effect(params, lag) for lag in LAGS}
    return in_logit_units(params) | effects | ({} if seconds is None else {"fit_seconds": round(seconds, 1)})


def user_topic_means(
    values: np.ndarray, user: np.ndarray, items: np.ndarray, topics: np.ndarray, n_users: int
) -> np.ndarray:
    """``(n_users, n_topics)`` the mean of ``values (S, K)`` over each user's shown slots of each
    topic (0: none); ``user (S,)`` each slate's user, ``items (S, K)`` its items (-1: empty slot)."""
    shown = items >= 0
    n_topics = int(topics.max()) + 1
    groups = (user[:, None] * n_topics + topics[np.maximum(items, 0)])[shown]
    total = np.bincount(groups, weights=values[shown], minlength=n_users * n_topics)
    count = np.bincount(groups, minlength=n_users * n_topics)
    return (total / np.maximum(count, 1)).reshape(n_users, n_topics)


def at_slots(table: np.ndarray, steps: StepTable, topics: np.ndarray) -> np.ndarray:
    """``(S, K)`` the entry of ``table (n_users, n_topics)`` for each slot's user and topic."""
    return table[steps.user[:, None], topics[np.maximum(steps.items, 0)]]


def slot_sd(table: np.ndarray, steps: StepTable, topics: np.ndarray) -> float:
    """The spread of ``table (n_users, n_topics)`` over ``steps``' shown slots."""
    return float(at_slots(table, steps, topics)[steps.slot_mask].std())


def shuffled_in_users(table: np.ndarray, seen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``table`` with each user's ``seen`` entries shuffled among themselves."""
    out = table.copy()
    for user in np.flatnonzero(seen.any(axis=1)):
        topics = np.flatnonzero(seen[user])
        out[user, topics] = table[user, rng.permutation(topics)]
    return out


def calibrated_error(network: np.ndarray, true: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """``(S, K)`` the truth's logits less the network's calibrated to them (least squares over the
    ``shown`` slots; 0 elsewhere): the error a calibration cannot undo (the fit calibrates each fold)."""
    scale, offset = np.polyfit(network[shown], true[shown], 1)
    return np.where(shown, true - (scale * network + offset), 0.0)


ERROR_ROWS = (
    "network", "truth", "user-topic error, each fold's own", "error within user-topic", "user-topic error",
    "normal user-topic error", "user-topic error shuffled",
)  # fmt: skip
"""The rows of ``errors`` (module docstring)."""


def network_errors(logs: LoggedData, truth: ShopWorld, seed: int = 0) -> dict[str, dict[str, Any]]:
    """The ``errors`` table of the module docstring (``seed``: the normal errors' and the shuffle's draws)."""
    config = FitConfig()
    with deterministic_torch(config.seed):
        inputs = fit_inputs(logs, config)
        folds = cross_fitted_logits(
            inputs.make_net, inputs.train, inputs.tensors["train"], inputs.tensors["valid"], config
        )
    topics, users = inputs.topics, logs.n_users
    true = [true_static_logits(truth, steps) for _, steps in folds]
    errors = [
        calibrated_error(network, t, steps.slot_mask) for (network, steps), t in zip(folds, true, strict=True)
    ]
    own = [
        user_topic_means(e, steps.user, steps.items, topics, users)
        for e, (_, steps) in zip(errors, folds, strict=True)
    ]
    user = np.concatenate([steps.user for _, steps in folds])
    items = np.concatenate([steps.items for _, steps in folds])
    pooled = user_topic_means(
        np.concatenate(errors), user, items, topics, users
    )  # one per (user, topic), as the fit's interests
    seen = user_topic_means((items >= 0).astype(np.float64), user, items, topics, users) > 0
    rng = np.random.default_rng(seed)
    spread = np.mean([slot_sd(pooled, steps, topics) for _, steps in folds])
    shared = {
        "user-topic error": pooled,
        "normal user-topic error": np.where(seen, rng.normal(0.0, spread, pooled.shape), 0.0),
        "user-topic error shuffled": shuffled_in_users(pooled, seen, rng),
    }
    variants: dict[str, list[np.ndarray]] = {name: [] for name in ERROR_ROWS}
    for f, (network, steps) in enumerate(folds):
        own_at = at_slots(own[f], steps, topics)
        variants["network"].append(network)
        variants["truth"].append(true[f])
        variants["user-topic error, each fold's own"].append(true[f] - own_at)
        variants["error within user-topic"].append(true[f] - (errors[f] - own_at))
        for name, table in shared.items():
            variants[name].append(true[f] - at_slots(table, steps, topics))

    def error_spread(missed: list[np.ndarray]) -> float:
        """The per-(user, topic) spread of each fold's ``missed`` logits, averaged over the folds."""
        return float(
            np.mean([
                slot_sd(user_topic_means(m, steps.user, steps.items, topics, users), steps, topics)
                for m, (_, steps) in zip(missed, folds, strict=True)
            ])
        )  # fmt: skip

    ones, zeros = np.ones(users), np.zeros(users)
    rows: dict[str, dict[str, Any]] = {}
    for name in ERROR_ROWS:
        theta = inputs.theta if name == "network" else truth.slot_bias(inputs.theta.shape[0])
        fitted = [(v, steps) for v, (_, steps) in zip(variants[name], folds, strict=True)]
        missed = (
            errors
            if name == "network"
            else [np.where(s.slot_mask, t - v, 0.0) for (v, s), t in zip(fitted, true, strict=True)]
        )
        extra = {"user_topic_error_sd": round(error_spread(missed), 4)}
        start = time.perf_counter()
        fit = fit_session_dynamics(
            fitted[0][0], theta, fitted[0][1], inputs.train, topics, truth.config.max_steps, ones, zeros,
            truth.dynamics, random_effects=True, more_clicks=fitted[1:], session_effects=True,
        )  # fmt: skip
        if fit is None:
            rows[name] = {"found": False} | extra
            continue
        seconds = time.perf_counter() - start
        rows[name] = (
            row(fit.params, seconds) | extra | {"interest_sd": round(float(fit.interest_sd or 0.0), 4)}
        )
    return rows


def measure(data: str) -> dict[str, Any]:
    """The rows of the module docstring."""
    source = resolve_data(data)
    if source.truth is None:
        raise ConfigError(f"--data {data}: no ground truth to compare with (a shop's logs are needed)")
    logs, truth = source.logs, source.truth
    train, topics, static = training_steps(logs, truth)
    traits, users = truth.user_traits, logs.n_users
    ones, zeros = np.ones(users), np.zeros(users)
    cases = {  # boredom scales, leave offsets, random effects
        "traits known": (traits.boredom_scale, traits.leave_offset, False),
        "scales known": (traits.boredom_scale, zeros, True),
        "scales unknown": (ones, zeros, True),
        "nothing known": (ones, zeros, False),
    }
    rows: dict[str, dict[str, Any]] = {"truth": row(truth.dynamics)}
    for name, (scales, offsets, random_effects) in cases.items():
        start = time.perf_counter()
        fit = fit_session_dynamics(
            static, truth.slot_bias(static.shape[1]), train, train, topics, truth.config.max_steps, scales,
            offsets, truth.dynamics, random_effects=random_effects, session_effects=random_effects,
        )  # fmt: skip
        rows[name] = {"found": False} if fit is None else row(fit.params, time.perf_counter() - start)
    _, report = load_or_fit(logs)
    rows["production fit"] = row(DynamicsParams(**report["dynamics"]))
    return {
        "data": data,
        "training_sessions": int(train.n_sessions),
        "lags": list(LAGS),
        "rows": rows,
        "errors": network_errors(logs, truth),
    }


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Fit under each case and write the JSON (and its table beside it)."""
    parser = ArgumentParser(prog="python -m benchmarks.identification", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--data", default="shop", help="a shop's logs, with their truth (default: shop)")
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", inputs=input_files(args.data), beside=(".md",))
    report = measure(args.data)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    title = "What a shop's logs can tell of its dynamics (benchmarks.identification)"
    write_text_atomic(args.json.with_suffix(".md"), report_markdown(title, report))
    print(json.dumps(report["rows"], indent=2))


if __name__ == "__main__":
    main()
