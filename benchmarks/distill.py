"""Does a fast policy distilled from the planner keep what the planner finds? ``python -m benchmarks.distill --json FILE``

For each planner model (``fitted``: the simulator fitted to the shop's logs, what any logs allow;
``true``: the shop's ground truth), the planner is distilled in the world it models
(:mod:`agents.training.distill`: ``rounds`` rounds of ``sessions`` labelled sessions, DAgger after
the first), and then played, at each deviation ``threshold``, on the same sessions as the planners'
base (``tuned-weights``), the best fixed strategy (``best-fixed``) and the planners themselves:

- in the fitted simulator: ``tuned-weights``, ``best-fixed``, ``planner:fitted`` (that world's
  ceiling, what an agent trained in it can hope to capture) and ``distilled:fitted``;
- in the true shop: ``tuned-weights``, ``best-fixed``, ``planner:true`` (the ceiling),
  ``planner:fitted`` and both distilled policies.

Each row: the return, the paired differences to ``tuned-weights`` and to the world's best static
policy (the higher-earning of the two static rows; 95% CI, CUPED on the session's user
covariates), the share of its planner's gain it keeps (the planner it was distilled from, in the
same world, on the same sessions; only where that gain's CI lies above 0), its share of decisions
off the base policy and its decisions per second. ``--data shop:homogeneous --max-steps 100`` is
the check that a gain comes from adapting: there users do not differ and the cap never binds.
Writes the JSON, a markdown table (``FILE.md``) and the paired gains (``FILE.png``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agents.evaluation.evaluate import best_static
from agents.evaluation.load import load_policy, make_planner
from agents.evaluation.paired import paired_difference, session_covariates, share_of_ceiling
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.policies.planner import PlannerConfig
from agents.policies.protocol import Policy
from agents.training.distill import DistillConfig, learn
from benchmarks.plans import run_in_process
from envs.config import EnvConfig
from envs.world import build_world
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png
from simulators.datasets import resolve_data

EVAL_SEED = 70_000
"""Seed of the evaluation sessions (the headroom benchmark's; no labelling uses it)."""
LABEL_SEED = 5_000
"""Seed of the labelled sessions (round r: LABEL_SEED + r)."""


@dataclass(frozen=True)
class DistillPlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """Logs with a ground truth (a shop)."""
    models: tuple[str, ...] = ("fitted", "true")
    """The planner models distilled (each labelled in the world it models)."""
    sessions: int = 512
    """Labelled sessions per round."""
    rounds: int = 2
    """Labelling rounds (DAgger after the first)."""
    eval_sessions: int = 1_000
    """Evaluation sessions per policy and world (the same sessions for each)."""
    rollouts: int = 64
    """The planners' futures per candidate action (labelling and evaluation)."""
    thresholds: tuple[float, ...] = (0.0, 0.25, 0.5)
    """Deviation thresholds the distilled policies are played at (predicted gain per session)."""
    max_steps: int | None = None
    """Session cap of every session, labelled and played (default: the env's, the logs' 20)."""

    def __post_init__(self) -> None:
        check_at_least_one(self, ("sessions", "rounds", "eval_sessions", "rollouts"), "--")
        if not self.models or set(self.models) - {"fitted", "true"}:
            raise ConfigError(f"--models: fitted and/or true, got {list(self.models)}")
        if not self.thresholds or any(not (np.isfinite(t) and t >= 0) for t in self.thresholds):
            raise ConfigError(f"--thresholds: numbers >= 0, got {list(self.thresholds)}")
        if resolve_data(self.data).truth is None:
            raise ConfigError(f"--data {self.data!r}: the benchmark needs logs with a ground truth (a shop)")


def _row(result: EvaluationResult, reference: EvaluationResult, covariates: Any, seconds: float,
         report: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    paired = None if result is reference else paired_difference(result, reference, covariates).as_json()
    decisions = (report or {}).get("decisions")
    return {
        "return_mean": float(result.returns.mean()),
        "sessions": len(result.returns),
        "minus_tuned_weights": paired,
        "minus_best_static": None,  # (set once every static row is played)
        "deviation_rate": (report or {}).get("deviation_rate"),
        "decisions_per_second": decisions / seconds if decisions and seconds else None,
        "seconds": round(seconds, 1),
    }


def _play(policy: Policy, env: EnvConfig, plan: DistillPlan) -> tuple[EvaluationResult, float]:
    started = time.perf_counter()
    result = run_sessions(policy, env, plan.eval_sessions, EVAL_SEED, progress=False)
    return result, time.perf_counter() - started


def measure(plan: DistillPlan) -> dict[str, Any]:
    """Distil each model's planner, then play every policy in each world (module docstring)."""
    planner_config = PlannerConfig(rollouts=plan.rollouts)
    distilled = {}
    labelling = {}
    for model in plan.models:
        config = DistillConfig(
            data=plan.data, model=model, sessions=plan.sessions, rounds=plan.rounds, seed=LABEL_SEED,
            eval_episodes=0, planner=planner_config, max_steps=plan.max_steps,
        )  # fmt: skip
        result = learn(config, progress=False)
        distilled[model] = result.policy
        labelling[model] = result.history
        print(f"distilled planner:{model}: {sum(h['labels'] for h in result.history)} labels, "
              f"{result.history[-1]['seconds']:.0f} s", flush=True)  # fmt: skip
    worlds: dict[str, Any] = {}
    for world in ("fitted", "true"):
        env = EnvConfig(data=plan.data, simulator=world)
        if plan.max_steps is not None:
            env = replace(env, max_steps=plan.max_steps)
        models = [m for m in plan.models if world == "true" or m == "fitted"]
        if not models:
            continue
        base_policy = next(iter(distilled.values())).base
        reference, seconds = _play(base_policy, env, plan)
        covariates = session_covariates(build_world(env), reference.users)  # type: ignore[arg-type]
        rows: dict[str, Any] = {"tuned-weights": _row(reference, reference, covariates, seconds, None)}
        played_by = {"tuned-weights": reference}
        fixed, seconds = _play(load_policy("best-fixed", env=env), env, plan)
        rows["best-fixed"], played_by["best-fixed"] = _row(fixed, reference, covariates, seconds, None), fixed
        planners = ["fitted", "true"] if world == "true" else ["fitted"]
        for model in planners:
            planner = make_planner(f"planner:{model}", env, planner_config)
            played, seconds = _play(planner, env, plan)
            rows[f"planner:{model}"] = _row(played, reference, covariates, seconds, planner.report())
            played_by[f"planner:{model}"] = played
            print(f"{world}: planner:{model} {rows[f'planner:{model}']['minus_tuned_weights']['mean']:+.2f}",
                  flush=True)  # fmt: skip
        for model in models:
            for threshold in plan.thresholds:
                policy = replace(distilled[model], threshold=threshold)
                played, seconds = _play(policy, env, plan)
                row = _row(played, reference, covariates, seconds, policy.report())
                ceiling = rows[f"planner:{model}"]["minus_tuned_weights"]
                row["share_of_planner"] = share_of_ceiling(row["minus_tuned_weights"], ceiling)
                rows[f"distilled:{model} (threshold {threshold:g})"] = row
                played_by[f"distilled:{model} (threshold {threshold:g})"] = played
        best = best_static(rows)  # (of the two static rows)
        for name, row in rows.items():
            if name != best:
                row["minus_best_static"] = paired_difference(
                    played_by[name], played_by[best], covariates
                ).as_json()
        worlds[world] = {"best_static": best, "rows": rows}
    return {"labelling": labelling, "worlds": worlds}


def markdown(report: dict[str, Any]) -> str:
    """One table per world."""
    lines = []

    def cell(d: dict[str, Any] | None) -> str:
        return "reference" if d is None else f"{d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"

    for world, played in report["worlds"].items():
        cap = report["plan"]["max_steps"]
        lines += [
            f"Played in the {'fitted simulator' if world == 'fitted' else 'true shop'} "
            f"({report['plan']['eval_sessions']} sessions, seed {EVAL_SEED}"
            f"{'' if cap is None else f', session cap {cap}'}; best static: {played['best_static']}):",
            "",
            "| policy | return | minus tuned-weights (paired, 95% CI) | minus the best static | share of its planner's gain | off base | decisions/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in played["rows"].items():
            share = "" if row.get("share_of_planner") is None else f"{row['share_of_planner']:.0%}"
            off = "" if row["deviation_rate"] is None else f"{row['deviation_rate']:.1%}"
            rate = "" if row["decisions_per_second"] is None else f"{row['decisions_per_second']:,.0f}"
            lines.append(
                f"| {name} | {row['return_mean']:.2f} | {cell(row['minus_tuned_weights'])} | "
                f"{cell(row['minus_best_static'])} | {share} | {off} | {rate} |"
            )
        lines.append("")
    for model, history in report["labelling"].items():
        lines.append(
            f"distilled:{model}: "
            + "; ".join(
                f"round {h['round']} played by the {h['played_by']}, {h['decisions']} decisions"
                for h in history
            )
            + f"; {history[-1]['seconds']:.0f} s"
        )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Any) -> None:
    """The paired gain over tuned-weights of every policy in each world, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(report["worlds"]), figsize=(11, 4.2), squeeze=False)
    for axis, (world, played) in zip(axes[0], report["worlds"].items(), strict=True):
        named = [
            (name, row["minus_tuned_weights"])
            for name, row in played["rows"].items()
            if row["minus_tuned_weights"]
        ]
        x = np.arange(len(named))
        means = np.array([d["mean"] for _, d in named])
        low = means - np.array([d["ci95"][0] for _, d in named])
        high = np.array([d["ci95"][1] for _, d in named]) - means
        axis.errorbar(x, means, yerr=[low, high], fmt="o", capsize=4)
        axis.axhline(0.0, color="black", linewidth=0.8)
        axis.set_xticks(x, [name.replace(" (", "\n(") for name, _ in named], fontsize=6, rotation=30)
        axis.set_title(f"played in the {world} world", fontsize=9)
        axis.set_ylabel("minus tuned-weights, per session (paired, 95% CI)", fontsize=8)
    save_png(figure, path)


QUICK = {"sessions": 16, "rounds": 2, "eval_sessions": 32, "rollouts": 4, "thresholds": (0.0,)}
"""The plan of ``--quick`` (a few minutes)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write JSON, markdown and PNG."""
    run_in_process("python -m benchmarks.distill", __doc__, DistillPlan, QUICK, argv, measure, markdown, plot)


if __name__ == "__main__":
    main()
