"""RL agents against the static baselines on ``ecommerce-v0``.

``python -m benchmarks.policies --json FILE [--quick] [--seeds S] [--timesteps N]``

PPO and DQN, started at the best static re-ranker (``static``, the main job's default), cold
(``--warm-start none``) and warm-started from the CTR model (``ctr``), each over
several seeds, next to every static baseline on the same evaluation users: the myopic CTR,
popularity and random rankings and the re-rankers tuned in the fitted simulator (best-fixed,
tuned-weights, MMR); warm-started PPO again at a positive fairness lambda.

Agents train in the fitted simulator only. Every policy is then also played in the true shop
(the sim-to-real check), next to the *oracle-adaptive* reference (:mod:`agents.oracle`): the
best static baseline (every discrete strategy included) per user type, chosen with the users'
true parameters. ``--data shop:homogeneous`` runs it all on the shop whose users do not differ;
``--data movielens`` (or any logs without a ground truth) runs the fitted half only.
Writes the JSON, a markdown table (``FILE.md``) and the learning curves (``FILE.png``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.load import policy_env_options
from agents.evaluation.oracle import captured_share, oracle_adaptive, user_types
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.evaluation.tuning import TUNING_SEED, TuningBudget, load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.policies.protocol import Policy
from agents.studies.backend import Backend, backend_of, in_trial_threads
from agents.training.config import DEFAULT_ACTION_MODE, TrainConfig
from agents.training.curves import plot_curves, read_curve
from agents.training.train import prepare_caches, train
from benchmarks.plans import parse_plan
from envs.config import STRATEGIES, EnvConfig
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.metrics import mean_ci95
from simulators.core.storage import write_text_atomic
from simulators.datasets import resolve_data

AGENTS = {
    "ppo-static": ("ppo", "static"),
    "ppo-cold": ("ppo", "none"),
    "ppo-warm": ("ppo", "ctr"),
    "dqn-static": ("dqn", "static"),
    "dqn-cold": ("dqn", "none"),
    "dqn-warm": ("dqn", "ctr"),
}
"""Benchmark row -> (algorithm, warm start)."""
BASELINES = (*POLICY_NAMES, *RERANKER_NAMES)
"""Every static baseline of a run's ``metrics.json``."""


@dataclass(frozen=True)
class Plan:
    """How much to run (the benchmark's flags)."""

    seeds: int = 5
    """Training seeds per agent."""
    timesteps: int = 30_000
    """Environment steps per training run."""
    eval_episodes: int = 500
    """Sessions per policy per seed in the final comparison."""
    fairness_lambda: float = 1.0
    """Lambda of the extra warm-started PPO run (its exposure gap is compared with lambda 0)."""
    n_envs: int = 16
    """Parallel users per training run."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (once per world)."""
    tuning_generations: int = 5
    """CEM generations of ``tuned-weights``."""
    data: str = "shop"
    """Logs to fit the simulator on (``load_logs``): ``shop`` (users who differ),
    ``shop:homogeneous`` (they do not), ``movielens`` or a folder; the true-shop half needs a shop."""
    agents: tuple[str, ...] = (*AGENTS, "ppo-warm-lambda")
    """Rows to train (of ``AGENTS``, and ``ppo-warm-lambda``: warm PPO at ``fairness_lambda``)."""
    true_episodes: int = 2_000
    """Sessions per policy in the true shop (and again for the oracle's choice per type)."""

    def __post_init__(self) -> None:
        names = ("seeds", "timesteps", "eval_episodes", "n_envs", "tuning_sessions", "tuning_generations",
                 "true_episodes")  # fmt: skip
        check_at_least_one(self, names, "--")
        if unknown := sorted(set(self.agents) - {*AGENTS, "ppo-warm-lambda"}):
            raise ConfigError(f"--agents: unknown row(s) {unknown}; rows: {[*AGENTS, 'ppo-warm-lambda']}")
        if not self.agents:
            raise ConfigError("--agents: name at least one row")
        if not np.isfinite(self.fairness_lambda) or self.fairness_lambda < 0:
            raise ConfigError(f"--fairness-lambda must be a finite number >= 0, got {self.fairness_lambda}")


def row_config(name: str, algorithm: str, warm: str, seed: int, plan: Plan, folder: Path) -> TrainConfig:
    """The training run of row ``name`` at ``seed`` (its folder ``folder/runs/NAME-sSEED``)."""
    fairness = plan.fairness_lambda if "lambda" in name else 0.0
    env = EnvConfig(data=plan.data, action_mode=DEFAULT_ACTION_MODE[algorithm], fairness_lambda=fairness)
    return TrainConfig(
        algorithm, timesteps=plan.timesteps, seed=seed, warm_start=warm, env_options=env,
        eval_episodes=plan.eval_episodes, eval_freq=max(plan.timesteps // 6, 512),
        out=str(folder / "runs" / f"{name}-s{seed}"), tuning_sessions=plan.tuning_sessions,
        tuning_generations=plan.tuning_generations, n_envs=plan.n_envs,
    )  # fmt: skip


def train_row(
    name: str, algorithm: str, warm: str, seed: int, plan: Plan, folder: Path
) -> tuple[dict[str, Any], tuple[list[int], list[float]]]:
    """One trial: train row ``name`` at ``seed``; its report (with its wall time) and learning curve."""
    config = row_config(name, algorithm, warm, seed, plan, folder)
    started = time.perf_counter()
    report = train(config, overwrite=True)  # the benchmark's own folder: rerunning replaces it
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{name} seed {seed}: return {report['policy']['return_mean']:.2f} "
          f"(ctr {report['baselines']['ctr']['return_mean']:.2f})", flush=True)  # fmt: skip
    return report, read_curve(config.folder)


def run_all(plan: Plan, folder: Path, backend: Backend | None = None) -> dict[str, Any]:
    """Train every agent for every seed (each a trial on ``backend``); gather metrics and curves."""
    rows = {name: AGENTS[name] for name in plan.agents if name in AGENTS}
    if "ppo-warm-lambda" in plan.agents:
        rows[f"ppo-warm-lambda{plan.fairness_lambda:g}"] = ("ppo", "ctr")
    trials = [(name, algorithm, warm, seed, plan, folder) for name, (algorithm, warm) in rows.items()
              for seed in range(plan.seeds)]  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {}
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    prepared: set[str] = set()
    for trial in trials:  # every cache the trials read, built here once: then they only read them
        config = row_config(*trial)
        env = json.dumps(asdict(config.options), sort_keys=True)
        if env not in prepared:
            prepared.add(env)
            in_trial_threads(prepare_caches, config)
    played = (backend or Backend()).map(train_row, trials, first_here=False)
    for trial, (report, curve) in zip(trials, played, strict=True):
        runs.setdefault(trial[0], []).append(report)
        curves.setdefault(trial[0], []).append(curve)
    return {"runs": runs, "curves": curves}


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Mean and 95% CI over seeds of each policy's mean return and fairness figures."""
    table: dict[str, Any] = {}

    def entry(reports: list[dict[str, Any]]) -> dict[str, Any]:
        returns = np.array([r["return_mean"] for r in reports])
        mean, lo, hi = mean_ci95(returns)
        return {"return_mean": mean, "return_ci95": [lo, hi], "seeds": len(returns),
                "clicks_per_session": float(np.mean([r["clicks_per_session"] for r in reports])),
                "session_length": float(np.mean([r["session_length"] for r in reports])),
                "protected_exposure_share": float(np.mean([r["protected_exposure_share"] for r in reports])),
                "exposure_gini": float(np.mean([r["exposure_gini"] for r in reports]))}  # fmt: skip

    for name, reports in runs.items():
        table[name] = entry([r["policy"] for r in reports])
        initial = [r["initial_policy"] for r in reports if "initial_policy" in r]
        if initial:
            table[name]["initial_return_mean"] = float(np.mean([r["return_mean"] for r in initial]))
    first = next(iter(runs.values()))
    for baseline in BASELINES:
        table[baseline] = entry([r["baselines"][baseline] for r in first])
    return table


def steps_to_reach(curves: list[tuple[list[int], list[float]]], level: float) -> int | None:
    """First evaluation step at which the seed-averaged curve reaches ``level``."""
    length = min(len(steps) for steps, _ in curves)
    steps = np.array(curves[0][0][:length])
    values = np.mean([v[:length] for _, v in curves], axis=0)
    reached = np.flatnonzero(values >= level)
    return int(steps[reached[0]]) if len(reached) else None


def markdown(summary: dict[str, Any], warm: dict[str, Any]) -> str:
    """The benchmark table and the warm-start figures."""
    lines = ["| policy | return (mean over seeds) [95% CI] | vs best static | vs static CTR | clicks | length | protected share | gini |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ctr = summary["ctr"]["return_mean"]
    best = max(BASELINES, key=lambda name: summary[name]["return_mean"])
    top = summary[best]["return_mean"]
    for name, m in summary.items():
        lo, hi = m["return_ci95"]
        label = f"{name} (best static)" if name == best else name
        lines.append(f"| {label} | {m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}] | {100 * (m['return_mean'] / top - 1):+.1f}% | "
                     f"{100 * (m['return_mean'] / ctr - 1):+.1f}% | "
                     f"{m['clicks_per_session']:.2f} | {m['session_length']:.2f} | {m['protected_exposure_share']:.3f} | "
                     f"{m['exposure_gini']:.3f} |")  # fmt: skip
    lines += ["", f"warm start: {json.dumps(warm)}"]
    return "\n".join(lines) + "\n"


TRUE_EVAL_SEED = 50_000
"""Seed of the true-shop evaluation users (every policy meets the same ones)."""
ORACLE_SEED = TUNING_SEED + 5_000
"""Seed of the true-shop sessions on which the oracle picks a baseline per type (no evaluation uses it)."""


def static_menu(plan: Plan) -> dict[str, Policy]:
    """Every static baseline, the tuned re-rankers and each discrete strategy played alone."""
    env = EnvConfig(data=plan.data)
    menu: dict[str, Policy] = {name: make_baseline(name) for name in POLICY_NAMES}
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    for name in RERANKER_NAMES:
        menu[name] = load_or_tune(name, env, budget)
    fixed = menu["best-fixed"]
    for index, strategy in enumerate(STRATEGIES):
        menu[f"fixed:{strategy}"] = replace(fixed, strategy=index)  # type: ignore[type-var]
    return menu


def ground_truth_problem(data: str) -> str | None:
    """Why ``data`` has no true shop to play in (``None`` when it has one)."""
    if resolve_data(data).truth is None:
        return f"{data}: no ground truth is known for these logs (not the shop's)"
    return None


def play_true(policy: Policy | Path, seed: int, plan: Plan) -> EvaluationResult:
    """One true-shop trial: ``policy`` (a static one, or an agent's run folder) on ``plan.true_episodes``
    sessions of users drawn from ``seed``."""
    options: dict[str, Any] = {}
    if isinstance(policy, Path):
        policy = TrainedAgent.load(policy, device="cpu")
        options = policy_env_options(policy)
    env = EnvConfig(**{**options, "data": plan.data, "simulator": "true"})
    return run_sessions(policy, env, plan.true_episodes, seed, progress=False)


def true_shop(
    plan: Plan, folder: Path, runs: dict[str, list[dict[str, Any]]], backend: Backend | None = None
) -> dict[str, Any]:
    """Every agent (trained in the fitted simulator) and every static policy in the true shop on
    the same users, the oracle-adaptive reference, and the share of its gain each agent earns;
    each policy's play a trial of ``backend``."""
    menu = static_menu(plan)
    agents = [(name, seed) for name, reports in runs.items() for seed in range(len(reports))]
    trials: list[tuple[Any, ...]] = [(policy, TRUE_EVAL_SEED, plan) for policy in menu.values()]
    trials += [(policy, ORACLE_SEED, plan) for policy in menu.values()]
    trials += [(folder / "runs" / f"{name}-s{seed}", TRUE_EVAL_SEED, plan) for name, seed in agents]
    played = (backend or Backend()).map(play_true, trials, first_here=False)  # the training built the caches
    evaluation = dict(zip(menu, played[: len(menu)], strict=True))
    tuning = dict(zip(menu, played[len(menu) : 2 * len(menu)], strict=True))
    by_agent: dict[str, list[float]] = {}
    for (name, _), result in zip(agents, played[2 * len(menu) :], strict=True):
        by_agent.setdefault(name, []).append(float(result.returns.mean()))
    world = resolve_data(plan.data).truth
    assert world is not None  # the plan was checked (ground_truth_problem)
    oracle = oracle_adaptive(tuning, evaluation, user_types(world))
    table: dict[str, Any] = {}
    for name, result in evaluation.items():
        mean, lo, hi = mean_ci95(result.returns)
        table[name] = {"return_mean": mean, "return_ci95": [lo, hi], "sessions": len(result.returns)}
    mean, lo, hi = mean_ci95(oracle.returns)
    table["oracle-adaptive"] = {"return_mean": mean, "return_ci95": [lo, hi], "sessions": len(oracle.returns)}
    best = max(menu, key=lambda name: table[name]["return_mean"])
    for name, seed_means in by_agent.items():
        mean, lo, hi = mean_ci95(np.array(seed_means))
        table[name] = {"return_mean": mean, "return_ci95": [lo, hi], "seeds": len(seed_means),
                       "captured_oracle_gain": captured_share(mean, table[best]["return_mean"],
                                                              table["oracle-adaptive"]["return_mean"])}  # fmt: skip
    return {
        "table": table,
        "best_static": best,
        "oracle_gain_over_best_static": table["oracle-adaptive"]["return_mean"] - table[best]["return_mean"],
        "oracle_choice": {str(cell): name for cell, name in oracle.choice.items()},
        "episodes": plan.true_episodes,
    }


def true_markdown(result: dict[str, Any]) -> str:
    """The true-shop table: every policy against the best static one and the oracle."""
    table, best = result["table"], result["best_static"]
    top = table[best]["return_mean"]
    lines = [
        "| policy (true shop) | return [95% CI] | vs best static | share of oracle gain |",
        "|---|---|---|---|",
    ]
    for name, m in sorted(table.items(), key=lambda item: -item[1]["return_mean"]):
        lo, hi = m["return_ci95"]
        share = m.get("captured_oracle_gain")
        label = f"{name} (best static)" if name == best else name
        lines.append(f"| {label} | {m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{100 * (m['return_mean'] / top - 1):+.1f}% | {'' if share is None else f'{share:.0%}'} |")  # fmt: skip
    lines += ["", f"oracle gain over the best static baseline: {result['oracle_gain_over_best_static']:+.2f} per session; "
              f"choice per type (variety bin * 3 + patience bin): {result['oracle_choice']}"]  # fmt: skip
    return "\n".join(lines) + "\n"


QUICK = {"seeds": 1, "timesteps": 3_072, "eval_episodes": 100, "tuning_sessions": 16, "tuning_generations": 1,
         "true_episodes": 200}  # fmt: skip
"""The plan of ``--quick`` (a few minutes)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Run, summarise, write JSON, markdown and PNG."""
    args, plan = parse_plan("python -m benchmarks.policies", __doc__.splitlines()[0], Plan, QUICK, argv)
    folder = args.json.with_suffix("")
    started = time.perf_counter()
    backend = backend_of(args)
    with backend.running():  # one Ray for the training trials and the true-shop plays
        results = run_all(plan, folder, backend)
        no_truth = ground_truth_problem(plan.data)
        true = None if no_truth else true_shop(plan, folder, results["runs"], backend)
    summary = summarise(results["runs"])
    warm: dict[str, Any] = {"ctr_return": summary["ctr"]["return_mean"], "timesteps": plan.timesteps}
    if "ppo-cold" in summary and "ppo-warm" in summary:  # the warm-start figures need both rows
        cold_final = summary["ppo-cold"]["return_mean"]
        warm |= {
            "ppo_warm_initial_return": summary["ppo-warm"].get("initial_return_mean"),
            "ppo_cold_final_return": cold_final,
            "ppo_warm_steps_to_cold_final": steps_to_reach(results["curves"]["ppo-warm"], cold_final),
        }
    report = {"plan": plan.__dict__, "summary": summary, "true_shop": true, "true_shop_skipped": no_truth,
              "warm_start": warm,
              "seconds": round(time.perf_counter() - started, 1),
              "runs": {name: [{k: r[k] for k in ("policy", "baselines", "timesteps")} for r in reports]
                       for name, reports in results["runs"].items()}}  # fmt: skip
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    true_text = f"no true shop: {no_truth}\n" if true is None else true_markdown(true)
    write_text_atomic(args.json.with_suffix(".md"), markdown(summary, warm) + "\n" + true_text)
    mean_curves = {}
    for name, curve_list in results["curves"].items():
        length = min(len(s) for s, _ in curve_list)
        mean_curves[name] = (
            np.array(curve_list[0][0][:length]),
            np.mean([v[:length] for _, v in curve_list], axis=0),
        )
    plot_curves(mean_curves, {"ctr": summary["ctr"]}, args.json.with_suffix(".png"))
    print(markdown(summary, warm))
    print(true_text)


if __name__ == "__main__":
    main()
