"""How much can adapting earn, and where does it come from? ``python -m benchmarks.headroom --json FILE``

The ceiling of the headroom issue: a rollout planner (``agents.policies.planner``) against the best
static re-ranker (``tuned-weights``), paired on the same sessions, for two session caps: the env's
default (20) and one that binds for fewer than 5% of the static re-ranker's sessions in the true
shop (measured here), so that adapting can be told apart from an end-of-horizon effect. Per cap:

- how often sessions reach the cap: in the logs (their own cap), in the fitted simulator and in
  the true shop under ``tuned-weights`` (re-tuned for that cap, in the fitted simulator as always);
- ``planner:true`` in the true shop (the ceiling: it plans in the ground truth and sees the true
  state; a lower bound on what the best adaptive policy earns), ``planner:fitted`` in the fitted
  simulator (that simulator's own ceiling, what an agent trained in it can hope to capture) and
  in the true shop (what planning in the fitted model earns in the truth);
- each planner's decisions per second, its share of decisions off the base policy, its wall time.

Writes the JSON, a markdown table beside it (``FILE.md``) and the paired gains with their 95%
intervals (``FILE.png``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from agents.evaluation.load import make_planner
from agents.evaluation.paired import paired_difference, session_covariates
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.planner import PlannerConfig
from agents.studies.backend import backend_of
from benchmarks.plans import parse_plan, write_outputs
from envs.config import MAX_STEPS, EnvConfig
from envs.world import build_world
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png
from simulators.datasets import resolve_data

EVAL_SEED = 70_000
"""Seed of the evaluation sessions (no training, tuning or other benchmark uses it)."""
CAP_SEED = 71_000
"""Seed of the sessions on which the long cap is measured (other sessions than the evaluation's)."""
UNCAPPED = 1_000
"""A cap no session of the shop reaches (its users leave long before): their natural lengths."""
BINDING_SHARE = 0.05
"""The long cap binds for fewer than this share of the static re-ranker's sessions in the true shop."""


@dataclass(frozen=True)
class HeadroomPlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """Logs with a ground truth (a shop)."""
    sessions: int = 1_000
    """Evaluation sessions per policy in the true shop (the same sessions for each)."""
    fitted_sessions: int = 500
    """Evaluation sessions per policy in the fitted simulator."""
    rollouts: int = 64
    """The planners' futures per candidate action."""
    long_rollouts: int = 32
    """The planners' futures per candidate action at the long cap (its futures are longer)."""
    caps: tuple[int, ...] = (20, 0)
    """Session caps; 0 = the cap that binds for fewer than 5% of the static re-ranker's true-shop sessions."""
    cap_sessions: int = 2_000
    """Sessions on which that cap is measured."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-ranker is tuned (per cap)."""
    tuning_generations: int = 5
    """CEM generations of ``tuned-weights``."""

    def __post_init__(self) -> None:
        names = ("sessions", "fitted_sessions", "rollouts", "long_rollouts", "cap_sessions", "tuning_sessions",
                 "tuning_generations")  # fmt: skip
        check_at_least_one(self, names, "--")
        if not self.caps or any(not 0 <= cap <= MAX_STEPS for cap in self.caps):
            raise ConfigError(
                f"--caps: session caps in [1, {MAX_STEPS}], or 0 for the measured one; got {self.caps}"
            )
        if resolve_data(self.data).truth is None:
            raise ConfigError(f"--data {self.data!r}: the headroom needs logs with a ground truth (a shop)")


def cap_shares(plan: HeadroomPlan) -> dict[str, Any]:
    """How often sessions reach a cap: the logs' own sessions, and the static re-ranker's (tuned
    for the default cap) with a cap far above any session, so their natural lengths show."""
    logs = resolve_data(plan.data).logs
    logged = logs.interactions.groupby("session_id")["timestamp"].nunique().to_numpy()
    truth = resolve_data(plan.data).truth
    assert truth is not None
    lengths: dict[str, np.ndarray] = {}
    static = load_or_tune("tuned-weights", EnvConfig(data=plan.data), budget(plan))  # the default cap's
    for simulator in ("fitted", "true"):
        env = EnvConfig(data=plan.data, simulator=simulator, max_steps=UNCAPPED)
        lengths[simulator] = run_sessions(static, env, plan.cap_sessions, CAP_SEED, progress=False).lengths
    long_cap = int(np.ceil(np.quantile(lengths["true"], 1 - BINDING_SHARE))) + 1
    return {
        "logs_cap": truth.config.max_steps,
        "logs_at_cap": float((logged >= truth.config.max_steps).mean()),
        "lengths": {
            name: {
                "mean": float(x.mean()),
                "p95": float(np.quantile(x, 0.95)),
                "p99": float(np.quantile(x, 0.99)),
            }
            for name, x in lengths.items()
        },
        "at_cap": {
            str(cap): {name: float((x >= cap).mean()) for name, x in lengths.items()}
            for cap in (20, long_cap)
        },
        "long_cap": long_cap,
    }


def budget(plan: HeadroomPlan) -> TuningBudget:
    """The tuning budget of the static re-ranker."""
    return TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)


def measure_cap(plan: HeadroomPlan, cap: int, rollouts: int) -> dict[str, Any]:
    """The static re-ranker and the planners at session cap ``cap``, paired (module docstring)."""
    true_env = EnvConfig(data=plan.data, simulator="true", max_steps=cap)
    fitted_env = replace(true_env, simulator="fitted")
    static = load_or_tune("tuned-weights", fitted_env, budget(plan))
    config = PlannerConfig(rollouts=rollouts)
    rows: dict[str, Any] = {}
    for where, env, sessions in (
        ("fitted", fitted_env, plan.fitted_sessions),
        ("true", true_env, plan.sessions),
    ):
        base = run_sessions(static, env, sessions, EVAL_SEED, progress=False)
        covariates = session_covariates(build_world(env), base.users)  # type: ignore[arg-type]
        rows[f"tuned-weights @ {where}"] = _row(base, None, None, 0.0)
        for model in ("true", "fitted") if where == "true" else ("fitted",):
            planner = make_planner(f"planner:{model}", env, config, budget(plan))
            started = time.perf_counter()
            played = run_sessions(planner, env, sessions, EVAL_SEED)
            seconds = time.perf_counter() - started
            rows[f"planner:{model} @ {where}"] = _row(
                played, paired_difference(played, base, covariates).as_json(), planner.report(), seconds
            )
    return {"cap": cap, "rollouts": rollouts, "static_knobs": static.knobs, "rows": rows}


def _row(
    result: EvaluationResult, paired: dict[str, Any] | None, planner: dict[str, Any] | None, seconds: float
) -> dict[str, Any]:
    return {
        "return_mean": float(result.returns.mean()),
        "sessions": len(result.returns),
        "session_length": float(result.lengths.mean()),
        "minus_tuned_weights": paired,
        "planner": planner,
        "seconds": round(seconds, 1),
    }


def markdown(report: dict[str, Any]) -> str:
    """The tables: where sessions end, and each cap's paired gains."""
    shares = report["cap_shares"]
    lines = [
        f"Sessions at the cap: the logs (their own cap {shares['logs_cap']}): {shares['logs_at_cap']:.1%}; "
        f"tuned-weights' sessions, uncapped lengths: "
        + "; ".join(
            f"{name} mean {v['mean']:.1f}, p95 {v['p95']:.0f}, p99 {v['p99']:.0f}"
            for name, v in shares["lengths"].items()
        ),
        "",
        "| cap | fitted at cap | true at cap |",
        "|---|---|---|",
        *(f"| {cap} | {v['fitted']:.1%} | {v['true']:.1%} |" for cap, v in shares["at_cap"].items()),
        "",
    ]
    for block in report["caps"]:
        lines += [
            f"Cap {block['cap']} ({block['rollouts']} futures per candidate; tuned-weights knobs {block['static_knobs']}):",
            "",
            "| policy @ world played | return | sessions | length | minus tuned-weights (paired, 95% CI) | variance cut by CUPED | off base | decisions/s | seconds |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in block["rows"].items():
            diff, planner = row["minus_tuned_weights"], row["planner"] or {}
            cell = (
                ""
                if diff is None
                else f"{diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]"
            )
            cut = (
                ""
                if diff is None or diff["variance_reduction"] is None
                else f"{diff['variance_reduction']:.1%}"
            )
            off = f"{planner['deviation_rate']:.1%}" if planner else ""
            rate = (
                f"{planner['decisions_per_second']:.0f}"
                if planner and planner["decisions_per_second"]
                else ""
            )
            lines.append(f"| {name} | {row['return_mean']:.2f} | {row['sessions']} | {row['session_length']:.1f} | "
                         f"{cell} | {cut} | {off} | {rate} | {row['seconds'] or ''} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Any) -> None:
    """The paired gain over tuned-weights of each planner, per cap, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.8))
    labels, means, lows, highs = [], [], [], []
    for block in report["caps"]:
        for name, row in block["rows"].items():
            if row["minus_tuned_weights"] is not None:
                d = row["minus_tuned_weights"]
                labels.append(f"{name}\ncap {block['cap']}")
                means.append(d["mean"])
                lows.append(d["mean"] - d["ci95"][0])
                highs.append(d["ci95"][1] - d["mean"])
    x = np.arange(len(labels))
    axis.errorbar(x, means, yerr=[lows, highs], fmt="o", capsize=4)
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(x, labels, fontsize=7)
    axis.set_ylabel("minus tuned-weights, per session (paired, 95% CI)")
    save_png(figure, path)


QUICK = {"sessions": 64, "fitted_sessions": 32, "rollouts": 4, "long_rollouts": 4, "cap_sessions": 128,
         "tuning_sessions": 16, "tuning_generations": 1}  # fmt: skip
"""The plan of ``--quick`` (a few minutes)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write JSON, markdown and PNG."""
    args, plan = parse_plan(
        "python -m benchmarks.headroom", (__doc__ or "").splitlines()[0], HeadroomPlan, QUICK, argv
    )
    backend_of(args)  # the flags are checked; the planner's futures run in one batch per step, here
    started = time.perf_counter()
    shares = cap_shares(plan)
    caps = [cap or shares["long_cap"] for cap in plan.caps]
    blocks = [measure_cap(plan, cap, plan.rollouts if cap <= 20 else plan.long_rollouts) for cap in caps]
    report = {"plan": asdict(plan), "cap_shares": shares, "caps": blocks,
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_outputs(args.json, report, markdown, plot)


if __name__ == "__main__":
    main()
