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
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tables import report_markdown
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
from simulators.fit.train import item_topics
from simulators.shop.world import ShopWorld

LAGS = (1, 5, 10)
"""Steps after a click at which its net effect on its topic's click logit is reported."""

SHOWN = (
    "drift_per_click", "drift_retention", "boredom_per_view", "boredom_per_click", "boredom_retention",
    "leave_bias", "leave_per_boredom", "leave_if_no_click", "leave_per_click",
)  # fmt: skip
"""The coefficients reported (click-logit units)."""


def training_steps(logs: LoggedData, truth: ShopWorld) -> tuple[StepTable, np.ndarray, np.ndarray]:
    """The fit's training sessions of ``logs`` as steps, the items' topics and the truth's static
    click logits of those steps' slots."""
    config = FitConfig()
    train = build_steps(
        logs.split_by_time(config.valid_fraction, config.test_fraction).train, history_from=logs
    )
    topics = item_topics(logs, np.zeros((logs.n_items, 1)), config)
    fresh = SessionState.fresh(len(train.user), truth.config.n_categories)
    return train, topics, truth.relevance(train.user, np.maximum(train.items, 0), fresh)


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
    return {"data": data, "training_sessions": int(train.n_sessions), "lags": list(LAGS), "rows": rows}


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
