"""How users come back: the gaps between a user's sessions in real logs, and what a session
changes about the next visit (the measurements a cross-session retention world starts from).

``python -m benchmarks.returns --json FILE [--data movielens]``

On the logs' sessions (:func:`simulators.fit.returns.session_gaps`; on MovieLens-100K a session
is the loader's: ratings less than an hour apart), reported:

- the return curve: the Kaplan-Meier estimate of returning within 1, 7 and 28 days of a
  session's end, and the median gap, with the censoring at the log's end counted;
- the Weibull proportional-hazards fit (:func:`simulators.fit.returns.fit_returns`, truncated at
  the hour below which no gap can be) with the user means beside each covariate (within-user
  effects), and without them (pooled): each covariate's hazard ratio per standard deviation with
  its 95% CI;
- the fit's own check: the largest distance between the Kaplan-Meier curve and the fitted
  model's marginal return curve (the mean of each session's fitted survival), on a grid of days;
- the model the simulators use (``frailty``): the session's covariates and a gamma frailty shared
  by each user's gaps (:func:`simulators.fit.returns.fit_sessions_process`), and how it predicts
  gaps it never saw (``held_out``): fitted on the first two thirds of the log's days, against the
  curve of the sessions that start in the last third
  (:func:`simulators.fit.returns.held_out_distance`, the KS statistic with censoring);
- on a shop (``--data shop:returns``), the true return model beside the fits (``truth``).

Writes the JSON, its tables (``.md``) and the two return curves (``.png``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.plots import save_png
from simulators.core.storage import check_output_file, input_files, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.datasets import load_logs
from simulators.datasets.shop import truth_of
from simulators.fit.returns import (
    ReturnModel,
    design,
    fit_returns,
    fit_sessions_process,
    held_out_distance,
    kaplan_meier,
    session_gaps,
)
from simulators.retention import COVARIATES, MIN_GAP_DAYS

DAYS = np.array([1.0, 7.0, 28.0])
"""The return horizons reported (day 1, week 1, the month)."""
GRID = np.geomspace(1.0 / 24, 365.0, 200)
"""Days at which the fitted and the Kaplan-Meier curves are compared (an hour to a year)."""


def effects(model: ReturnModel, x: np.ndarray) -> list[dict[str, Any]]:
    """Each covariate's hazard ratio per standard deviation of it, with its 95% CI."""
    rows = []
    for j, name in enumerate(model.names):
        sd = float(x[:, j].std())
        b, se = model.beta[j], model.se[2 + j]
        rows.append({
            "covariate": name, "beta": b, "se": se, "sd": sd, "hazard_ratio_per_sd": float(np.exp(b * sd)),
            "ci95": [float(np.exp((b - 1.96 * se) * sd)), float(np.exp((b + 1.96 * se) * sd))],
        })  # fmt: skip
    return rows


def log_topics(logs: LoggedData) -> pd.Series | None:
    """Each item's topic (``item_id`` -> its category, else its provider: on MovieLens-100K its
    first genre), or ``None`` for logs whose items carry neither."""
    column = next((c for c in ("category", "provider") if c in logs.items.columns), None)
    return logs.items.set_index("item_id")[column] if column is not None else None


def measure(data: str = "movielens") -> dict[str, Any]:
    """The figures of the module docstring on ``data``."""
    logs = load_logs(data)
    sessions = session_gaps(logs.interactions, log_topics(logs))
    gaps, observed = sessions["gap"].to_numpy(), sessions["observed"].to_numpy()
    km = kaplan_meier(gaps, observed, DAYS)
    curve = kaplan_meier(gaps, observed, GRID)
    report: dict[str, Any] = {
        "data": data,
        "sessions": len(sessions),
        "users": int(sessions["user_id"].nunique()),
        "observed_gaps": int(observed.sum()),
        "return_within_days": {f"{d:g}": float(1 - s) for d, s in zip(DAYS, km, strict=True)},
        "median_gap_days": float(GRID[np.argmax(curve <= 0.5)]) if (curve <= 0.5).any() else None,
        "session_covariates": {
            name: {"mean": float(sessions[name].mean()), "sd": float(sessions[name].std())}
            for name in ("like_rate", "log_length", "topic_repeat", "log_sessions_before")
        },
    }
    for label, within in (("within_user", True), ("pooled", False)):
        x, names = design(sessions, within)
        model = fit_returns(gaps, observed, x, names, MIN_GAP_DAYS)
        fitted = np.array([model.survival(np.full(len(x), t), x).mean() for t in GRID])
        report[label] = {
            "shape": model.shape, "scale_days": model.scale, "log_likelihood": model.log_likelihood,
            "effects": effects(model, x), "curve_distance": float(np.abs(fitted - curve).max()),
        }  # fmt: skip
        report.setdefault("_curves", {})[label] = fitted
    report["_curves"]["kaplan_meier"] = curve
    # the model the simulators use: the session's covariates and a gamma frailty per user
    users = sessions["user_id"].to_numpy()
    ids = np.unique(users)
    process, model = fit_sessions_process(sessions, ids)
    raw, rows = sessions[list(COVARIATES)].to_numpy(), np.searchsorted(ids, users)
    centred = raw - process.centre
    fitted = np.array([process.survival(np.full(len(raw), t), raw, rows).mean() for t in GRID])
    report["frailty"] = {
        "shape": model.shape, "scale_days": model.scale, "frailty_variance": model.frailty_variance,
        "log_likelihood": model.log_likelihood, "effects": effects(model, centred),
        "curve_distance": float(np.abs(fitted - curve).max()),
    }  # fmt: skip
    report["_curves"]["frailty"] = fitted
    report["held_out"] = held_out_distance(sessions, GRID, logs.users["user_id"])
    truth = truth_of(logs)
    if truth is not None:
        process = truth.return_process()
        report["truth"] = {
            "returns_enabled": truth.config.returns.enabled, "shape": process.shape, "scale_days": process.scale,
            "min_gap_days": process.min_gap, "beta": dict(zip(COVARIATES, map(float, process.beta), strict=True)),
        }  # fmt: skip
    return report


def plot(report: dict[str, Any], path: Path) -> None:
    """The Kaplan-Meier return curve and the two fits' marginal curves, against days."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.0, 3.8))
    curves = report["_curves"]
    axis.step(GRID, 1 - curves["kaplan_meier"], where="post", color="black", label="logs (Kaplan-Meier)")
    for label, colour in (("within_user", "tab:orange"), ("pooled", "tab:blue"), ("frailty", "tab:green")):
        axis.plot(GRID, 1 - curves[label], color=colour, label=f"Weibull PH, {label.replace('_', ' ')}")
    axis.set_xscale("log")
    axis.set_xlabel("days since the session ended")
    axis.set_ylabel("share of users back")
    axis.set_title(f"Return curve ({report['data']})")
    axis.legend(frameon=False)
    figure.tight_layout()
    save_png(figure, path, dpi=120)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure and write the JSON, its tables and the plot."""
    parser = ArgumentParser(prog="python -m benchmarks.returns", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument(
        "--data", default="movielens", help="logs with sessions over time (default: movielens)"
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", inputs=input_files(args.data), beside=(".md", ".png"))
    report = measure(args.data)
    plot(report, args.json.with_suffix(".png"))
    del report["_curves"]
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"), report_markdown("How users come back (benchmarks.returns)", report)
    )
    print(json.dumps({k: v for k, v in report.items() if k not in ("within_user", "pooled")}, indent=2))


if __name__ == "__main__":
    main()
