"""Is there anything to gain across sessions? Re-rankers tuned for a user's month, the one tuned
per session, greedy CTR and PPO trained in the fitted retention world, on the same users' months.

``python -m benchmarks.retention --json FILE --out DIR [--seeds 5] [--users 2000] [--planner-users 500]``

The retention env (``ecommerce-retention-v0``: ``shop:returns``, 28 days; :mod:`envs.retention`)
with the engagement reward alone (``fairness_lambda`` 0: the question is retention, not fairness).
Policies:

- ``tuned-weights`` (the reference) and ``best-fixed``: tuned by CEM (a grid) in the fitted
  retention world for the month's engagement, as RLUR's production baseline was tuned;
- ``tuned-weights (per session)``: the weights tuned for one session's engagement
  (``horizon_days=0`` on the same logs), played over the month;
- ``ctr``: greedy by predicted click;
- ``ppo-sN``: the main job's recipe (``python -m agents.train ppo --env ecommerce-retention-v0
  --fairness-price 0``), one run per seed, trained in the fitted world.

Every policy plays the same ``--users`` user-months (the evaluation seed's users, which neither
tuning nor training met) in three worlds: the true retention shop, the fitted one, and the true
one with the return effects off (``return_effects=False``: a session's outcome does not move the
next visit, so nothing a policy does carries across sessions). Reported per world and policy:
engagement per user-month with its 95% CI, the paired difference to ``tuned-weights`` (the same
users and dice), sessions per user and the day-1 and day-7 return rates; and for PPO the pooled
difference over its seeds (each user's mean over the seeds, then the CI over users).

The ceiling (``ceiling``, in the two true worlds): the rollout planner with the true model over
``tuned-weights`` (:mod:`agents.policies.planner`), its futures going on into the user's next
sessions within ``--planner-depth`` steps (``month``) or ending with the session (``per
session``), on ``--planner-users`` user-months: what adapting can earn, and how much of it
comes from across sessions (``month minus per session``, paired). Writes the JSON, its tables
(``.md``) and the paired differences (``.png``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.load import load_policy
from agents.evaluation.paired import paired_difference
from agents.evaluation.sessions import EvaluationResult, retention_metrics, run_sessions
from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.baselines import make_baseline
from agents.policies.planner import PlannerConfig, RolloutPlanner
from agents.policies.protocol import Policy
from agents.training.config import TrainConfig, priced_config
from agents.training.train import train
from benchmarks.tables import report_markdown
from envs.config import EnvConfig
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError
from simulators.core.metrics import mean_ci95
from simulators.core.plots import save_png
from simulators.core.storage import check_output_file, check_output_folder, input_files, write_text_atomic

REFERENCE = "tuned-weights"
WORLDS: dict[str, dict[str, Any]] = {
    "true": {"simulator": "true"},
    "fitted": {"simulator": "fitted"},
    "true, no return effects": {"simulator": "true", "return_effects": False},
}
"""The worlds every policy plays, as env options over the study's."""


@dataclass(frozen=True)
class RetentionPlan:
    """How large the study is (the defaults are the committed result's)."""

    seeds: int = 5
    """PPO runs, one per seed (1..seeds)."""
    users: int = 2_000
    """User-months each policy plays in each world."""
    timesteps: int = 30_000
    """Each PPO run's budget: the main job's."""
    n_envs: int = 16
    """Parallel users in training."""
    train_eval_episodes: int = 200
    """User-months of each run's own evaluation and learning curve."""
    tuning_sessions: int = 256
    """User-months per candidate when the re-rankers are tuned."""
    tuning_generations: int = 5
    """CEM generations of ``tuned-weights``."""
    data: str = "shop:returns"
    """The logs (their truth plays the true worlds)."""
    candidates: str = "ctr"
    """The env's candidate generator (``popularity`` for a quick run without the CTR model)."""
    seed: int = 50_000
    """The evaluation's users and dice."""
    planner_users: int = 500
    """User-months the ceiling's planners play in each true world (0: no ceiling)."""
    planner_rollouts: int = 16
    """Futures per candidate action and decision of the ceiling's planners."""
    planner_depth: int = 20
    """Steps each future is played for (the lookahead's truncated horizon)."""

    def __post_init__(self) -> None:
        for name in ("seeds", "users", "timesteps", "n_envs", "train_eval_episodes", "tuning_sessions",
                     "tuning_generations", "planner_rollouts", "planner_depth"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


def train_config(plan: RetentionPlan, seed: int, folder: Path) -> TrainConfig:
    """The main job's recipe in the retention env, engagement alone, for ``seed``."""
    return TrainConfig(
        "ppo", env="ecommerce-retention-v0", timesteps=plan.timesteps, seed=seed, n_envs=plan.n_envs,
        env_options={"data": plan.data, "candidates": plan.candidates}, fairness_price=0.0,
        eval_episodes=plan.train_eval_episodes, curve_episodes=plan.train_eval_episodes,
        eval_freq=max(plan.timesteps // 4, 512), tuning_sessions=plan.tuning_sessions,
        tuning_generations=plan.tuning_generations, out=str(folder / "runs" / f"ppo-s{seed}"),
    )  # fmt: skip


def policies(plan: RetentionPlan, folder: Path) -> tuple[EnvConfig, dict[str, Policy]]:
    """The study's env options and its policies (tuning and training them first)."""
    config, _ = priced_config(train_config(plan, 1, folder))
    env = config.options
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    chosen: dict[str, Policy] = {
        REFERENCE: load_or_tune(REFERENCE, env, budget),
        "best-fixed": load_or_tune("best-fixed", env, budget),
        "tuned-weights (per session)": load_or_tune(REFERENCE, replace(env, horizon_days=0.0), budget),
        "ctr": make_baseline("ctr"),
    }
    for seed in range(1, plan.seeds + 1):
        run = train_config(plan, seed, folder)
        train(run)
        chosen[f"ppo-s{seed}"] = load_policy(run.out, device="cpu")
    return env, chosen


def world_rows(results: dict[str, EvaluationResult]) -> dict[str, Any]:
    """One world's figures: each policy's, its paired difference to the reference, PPO pooled."""
    reference = results[REFERENCE]
    rows: dict[str, Any] = {}
    for name, result in results.items():
        mean, low, high = mean_ci95(result.returns)
        rows[name] = {"engagement_per_user": mean, "ci95": [low, high], **retention_metrics(result)}
        if name != REFERENCE:
            rows[name]["minus_" + REFERENCE] = paired_difference(result, reference).as_json()
    ppo = [result.returns for name, result in results.items() if name.startswith("ppo-")]
    if ppo:
        mean, low, high = mean_ci95(np.mean(ppo, axis=0) - reference.returns)
        rows[f"ppo ({len(ppo)} seeds)"] = {"minus_" + REFERENCE: {"mean": mean, "ci95": [low, high]}}
    return rows


def ceiling(plan: RetentionPlan, played: EnvConfig, reference: Policy) -> dict[str, Any]:
    """The rollout planner with the true model over ``reference`` in the true world ``played``,
    its futures going on into the user's next sessions (``month``) or ending with the session
    (``per session``), on the same ``planner_users`` user-months as ``reference``."""
    results = {REFERENCE: run_sessions(reference, played, plan.planner_users, plan.seed)}
    for label, across in (("month", True), ("per session", False)):
        config = PlannerConfig(
            rollouts=plan.planner_rollouts, depth=plan.planner_depth, across_sessions=across
        )
        planner = RolloutPlanner(reference, played, config, name=f"planner:true ({label})")
        results[planner.name] = run_sessions(planner, played, plan.planner_users, plan.seed)
    rows = world_rows(results)
    difference = paired_difference(results["planner:true (month)"], results["planner:true (per session)"])
    rows["month minus per session"] = difference.as_json()
    return rows


def run(plan: RetentionPlan, folder: Path) -> dict[str, Any]:
    """Every policy in every world, and the ceiling in the true ones (the module docstring)."""
    env, chosen = policies(plan, folder)
    report: dict[str, Any] = {"plan": asdict(plan), "env": asdict(env), "worlds": {}, "ceiling": {}}
    for world, options in WORLDS.items():
        played = replace(env, **options)
        results = {
            name: run_sessions(policy, played, plan.users, plan.seed) for name, policy in chosen.items()
        }
        report["worlds"][world] = world_rows(results)
        if plan.planner_users and played.simulator == "true":
            report["ceiling"][world] = ceiling(plan, played, chosen[REFERENCE])
    return report


def plot(report: dict[str, Any], path: Path) -> None:
    """Each policy's paired difference to the reference with its 95% CI, per world, the ceiling's
    planners beside them in the true worlds (greedy CTR, far below, is left to the table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "minus_" + REFERENCE
    worlds = list(report["worlds"])
    figure, axes = plt.subplots(1, len(worlds), figsize=(4.6 * len(worlds), 4.2), sharey=True)
    names = [n for n in report["worlds"][worlds[0]] if n not in (REFERENCE, "ctr")]
    names += [n for n in next(iter(report["ceiling"].values()), {}) if n.startswith("planner:")]
    for axis, world in zip(np.atleast_1d(axes), worlds, strict=True):
        rows = {**report["worlds"][world], **report["ceiling"].get(world, {})}
        for y, name in enumerate(names):
            if name not in rows or key not in rows[name]:
                continue
            mean, (low, high) = rows[name][key]["mean"], rows[name][key]["ci95"]
            colour = "tab:red" if name.startswith("planner:") else "tab:blue"
            axis.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=3)
        axis.axvline(0.0, color="black", linewidth=0.8)
        axis.set_yticks(np.arange(len(names)), names)
        axis.set_title(world)
        axis.set_xlabel(f"minus {REFERENCE}, per user-month")
    figure.suptitle("Engagement over a user's month, paired (the planners on their own 500 users)")
    figure.tight_layout()
    save_png(figure, path, dpi=120)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Tune, train and play every policy in every world; write the JSON, its tables and the plot."""
    parser = ArgumentParser(prog="python -m benchmarks.retention", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, required=True, help="where to write the figures (JSON; .md and .png beside)"
    )
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the PPO runs")
    add_config_arguments(parser, RetentionPlan)
    args = parser.parse_args(argv)
    plan = RetentionPlan(**config_kwargs(args, RetentionPlan))
    check_output_file(args.json, "--json", inputs=input_files(plan.data), beside=(".md", ".png"))
    check_output_folder(args.out, "--out")
    if (args.out / "runs").exists() and any((args.out / "runs").iterdir()):
        raise ConfigError(
            f"--out {args.out}: already holds PPO runs (one study per folder); name a new folder"
        )
    report = run(plan, args.out)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"),
        report_markdown("Is there anything to gain across sessions? (benchmarks.retention)", report),
    )
    plot(report, args.json.with_suffix(".png"))
    print(json.dumps({w: {k: v.get("minus_" + REFERENCE, v.get("engagement_per_user")) for k, v in rows.items()}
                      for w, rows in report["worlds"].items()}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
