"""RL agents against the static baselines on ``ecommerce-v0``.

``python -m benchmarks.policies --json FILE [--quick] [--seeds S] [--timesteps N]``

PPO and DQN, started at the best static re-ranker (``static``, the main job's default), cold
(``--warm-start none``) and warm-started from the CTR model (``ctr``), each over
several seeds, next to every static baseline on the same evaluation users: the myopic CTR,
popularity and random rankings and the re-rankers tuned in the fitted simulator (best-fixed,
tuned-weights, MMR); warm-started PPO again at a positive fairness lambda.

Every comparison is paired: each row's difference to the best static baseline on the same
sessions (the same users and session keys), with its 95% interval (across seeds for the agents,
whose training randomness dominates; across sessions for a single policy). The ceiling of each
world is a rollout planner over the best static re-ranker (:mod:`agents.policies.planner`):
``planner:fitted`` in the fitted simulator (what an agent trained there can hope to capture) and
``planner:true`` in the true shop; each agent's "share of the ceiling" is its paired gain over the
best static baseline divided by the planner's.

Agents train in the fitted simulator only. Every policy is then also played in the true shop
(the sim-to-real check), next to the ceiling and the *oracle-adaptive* reference
(:mod:`agents.evaluation.oracle`): the best static baseline (every discrete strategy included) per
user type, chosen with the users' true parameters. ``--data shop:homogeneous`` runs it all on the shop whose users do not differ;
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

from agents.evaluation.load import make_planner, policy_env_options
from agents.evaluation.oracle import captured_share, oracle_adaptive, user_types
from agents.evaluation.paired import paired_cell, paired_difference, session_covariates
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.evaluation.tuning import TUNING_SEED, TuningBudget, load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.policies.planner import PlannerConfig
from agents.policies.protocol import Policy
from agents.studies.backend import Backend, backend_of, in_trial_threads
from agents.training.config import DEFAULT_ACTION_MODE, TrainConfig
from agents.training.curves import Curve, read_curve
from agents.training.train import prepare_caches, train
from benchmarks.plans import parse_plan
from envs.config import STRATEGIES, EnvConfig
from envs.world import build_world
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.metrics import mean_ci95, seed_ci95
from simulators.core.plots import save_png
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
    true_episodes: int = 1_000
    """Sessions per policy in the true shop (and again for the oracle's choice per type): enough
    for the ceiling's paired interval to exclude 0 (``benchmarks.headroom`` measures it)."""
    planner_rollouts: int = 64
    """Futures per candidate action of the planners (the ceiling rows); 0 = no planner rows."""

    def __post_init__(self) -> None:
        names = ("seeds", "timesteps", "eval_episodes", "n_envs", "tuning_sessions", "tuning_generations",
                 "true_episodes")  # fmt: skip
        check_at_least_one(self, names, "--")
        if self.planner_rollouts < 0:
            raise ConfigError(
                f"--planner-rollouts must be >= 0 (0: no planner rows), got {self.planner_rollouts}"
            )
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
        curve_episodes=plan.eval_episodes, out=str(folder / "runs" / f"{name}-s{seed}"), tuning_sessions=plan.tuning_sessions,
        tuning_generations=plan.tuning_generations, n_envs=plan.n_envs,
    )  # fmt: skip


def train_row(
    name: str, algorithm: str, warm: str, seed: int, plan: Plan, folder: Path
) -> tuple[dict[str, Any], Curve]:
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
    curves: dict[str, list[Curve]] = {}
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
    """Per row: the mean over seeds of the return and of its paired difference to the best static
    baseline (each seed's run compares them on its own evaluation sessions), with Student-t 95%
    intervals across seeds; per baseline, the first seed's figures with the paired interval across
    its sessions."""
    table: dict[str, Any] = {}

    def entry(reports: list[dict[str, Any]], diffs: list[dict[str, Any] | None]) -> dict[str, Any]:
        returns = np.array([r["return_mean"] for r in reports])
        mean, lo, hi = seed_ci95(returns) if len(returns) > 1 else (returns[0], *reports[0]["return_ci95"])
        row = {"return_mean": mean, "return_ci95": [lo, hi], "seeds": len(returns),
               "clicks_per_session": float(np.mean([r["clicks_per_session"] for r in reports])),
               "session_length": float(np.mean([r["session_length"] for r in reports])),
               "protected_exposure_share": float(np.mean([r["protected_exposure_share"] for r in reports])),
               "exposure_gini": float(np.mean([r["exposure_gini"] for r in reports]))}  # fmt: skip
        known = [d for d in diffs if d is not None]
        if len(known) > 1:
            gain, glo, ghi = seed_ci95(np.array([d["mean"] for d in known]))
            row["minus_best_static"] = {"mean": gain, "ci95": [glo, ghi], "across": "seeds"}
        elif known:
            row["minus_best_static"] = {**known[0], "across": "sessions"}
        return row

    for name, reports in runs.items():
        table[name] = entry([r["policy"] for r in reports], [r["paired"].get("policy") for r in reports])
        initial = [r["initial_policy"] for r in reports if "initial_policy" in r]
        if initial:
            table[name]["initial_return_mean"] = float(np.mean([r["return_mean"] for r in initial]))
    first = next(iter(runs.values()))
    for baseline in BASELINES:
        table[baseline] = entry(
            [r["baselines"][baseline] for r in first], [r["paired"].get(baseline) for r in first]
        )
    table["best_static"] = first[0]["paired"]["reference"]
    return table


def fitted_ceiling(plan: Plan, reference: str) -> dict[str, Any]:
    """``planner:fitted`` in the fitted simulator on the first seed's evaluation sessions, against
    the best static baseline ``reference`` on the same sessions: that simulator's ceiling."""
    env = EnvConfig(data=plan.data)
    seed = 10_000  # the first seed's (0) evaluation sessions, as its run's metrics.json
    static = make_static(reference, plan, env)
    base = run_sessions(static, env, plan.eval_episodes, seed, progress=False)
    planner = make_planner(
        "planner:fitted", env, PlannerConfig(rollouts=plan.planner_rollouts), budget_of(plan)
    )
    played = run_sessions(planner, env, plan.eval_episodes, seed, progress=False)
    covariates = session_covariates(build_world(env), base.users)  # type: ignore[arg-type]
    return {"return_mean": float(played.returns.mean()), "sessions": plan.eval_episodes,
            "minus_best_static": {**paired_difference(played, base, covariates).as_json(), "across": "sessions"},
            "planner": planner.report()}  # fmt: skip


def budget_of(plan: Plan) -> TuningBudget:
    """The tuning budget of the re-rankers."""
    return TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)


def make_static(name: str, plan: Plan, env: EnvConfig) -> Policy:
    """A static baseline by name (a re-ranker tuned for ``env``'s world)."""
    return make_baseline(name) if name in POLICY_NAMES else load_or_tune(name, env, budget_of(plan))


def share_of(gain: float | None, ceiling: float | None) -> float | None:
    """A gain over the best static baseline as a share of the ceiling's (``None`` where the
    ceiling gains nothing)."""
    if gain is None or ceiling is None or ceiling <= 0:
        return None
    return gain / ceiling


def steps_to_reach(curves: list[Curve], level: float) -> int | None:
    """First evaluation step at which the seed-averaged curve reaches ``level``."""
    length = min(len(curve.steps) for curve in curves)
    values = np.mean([curve.means[:length] for curve in curves], axis=0)
    reached = np.flatnonzero(values >= level)
    return int(curves[0].steps[reached[0]]) if len(reached) else None


def plot_rows(curves: dict[str, list[Curve]], path: Path) -> None:
    """Left: each row's learning curve, the mean return over seeds at each point; right: the mean
    over seeds of each point's paired difference to the run's own start (the same sessions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (levels, gains) = plt.subplots(1, 2, figsize=(11, 4))
    for name, runs in curves.items():
        length = min(len(curve.steps) for curve in runs)
        if not length:
            continue
        steps = runs[0].steps[:length]
        levels.plot(
            steps, np.mean([c.means[:length] for c in runs], axis=0), marker="o", markersize=3, label=name
        )
        gain = np.mean([c.paired(c.returns[0])[0][:length] for c in runs], axis=0)
        gains.plot(steps, gain, marker="o", markersize=3, label=name)
    gains.axhline(0.0, color="black", linewidth=0.8)
    levels.set_title("return per session (mean over seeds; fixed sessions per run)", fontsize=9)
    gains.set_title("minus the run's own start, paired (mean over seeds)", fontsize=9)
    for axis in (levels, gains):
        axis.set_xlabel("environment steps")
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    save_png(figure, path)


def markdown(summary: dict[str, Any], warm: dict[str, Any], ceiling: dict[str, Any] | None) -> str:
    """The fitted-simulator table (each row against the best static baseline, paired, and its share
    of the fitted ceiling) and the warm-start figures."""
    best = summary["best_static"]
    top = ceiling["minus_best_static"]["mean"] if ceiling else None
    lines = [f"| policy (fitted simulator) | return [95% CI] | minus {best} (paired, 95% CI) | share of ceiling | clicks | length | protected share | gini |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = {name: m for name, m in summary.items() if isinstance(m, dict)}
    if ceiling:
        rows["planner:fitted (ceiling)"] = ceiling
    for name, m in rows.items():
        label = f"{name} (best static)" if name == best else name
        ret = f"{m['return_mean']:.2f}" + (
            f" [{m['return_ci95'][0]:.2f}, {m['return_ci95'][1]:.2f}]" if "return_ci95" in m else ""
        )
        diff = m.get("minus_best_static")
        cell = paired_cell(diff, reference=name == best)
        share = (
            share_of(diff["mean"] if diff else None, top) if "ceiling" not in name and name != best else None
        )
        extra = [f"{m[k]:.2f}" if k in m else "" for k in ("clicks_per_session", "session_length")]
        extra += [f"{m[k]:.3f}" if k in m else "" for k in ("protected_exposure_share", "exposure_gini")]
        lines.append(
            f"| {label} | {ret} | {cell} | {'' if share is None else f'{share:.0%}'} | "
            + " | ".join(extra)
            + " |"
        )
    lines += ["", f"warm start: {json.dumps(warm)}"]
    if ceiling and ceiling.get("planner"):
        p = ceiling["planner"]
        lines.append(f"the fitted ceiling: planner:fitted on {ceiling['sessions']} sessions, {p['rollouts']} futures per "
                     f"candidate, {100 * p['deviation_rate']:.1f}% of decisions off its base")  # fmt: skip
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


def play_true(policy: Policy | Path | str, seed: int, plan: Plan) -> EvaluationResult:
    """One true-shop trial: ``policy`` (a static one, an agent's run folder, or a planner by name)
    on ``plan.true_episodes`` sessions of users drawn from ``seed``."""
    options: dict[str, Any] = {}
    if isinstance(policy, Path):
        policy = TrainedAgent.load(policy, device="cpu")
        options = policy_env_options(policy)
    env = EnvConfig(**{**options, "data": plan.data, "simulator": "true"})
    if isinstance(policy, str):  # a planner: built in the trial (it holds its own copies of the world)
        policy = make_planner(policy, env, PlannerConfig(rollouts=plan.planner_rollouts), budget_of(plan))
    return run_sessions(policy, env, plan.true_episodes, seed, progress=False)


PLANNERS = ("planner:true", "planner:fitted")
"""The ceiling rows of the true shop: planning in the ground truth, and in the fitted simulator."""


def true_shop(
    plan: Plan, folder: Path, runs: dict[str, list[dict[str, Any]]], backend: Backend | None = None
) -> dict[str, Any]:
    """Every agent (trained in the fitted simulator), every static policy and the planners in the
    true shop on the same sessions, each compared paired with the best static one; the ceiling
    (``planner:true``) and each agent's share of its gain; the oracle-adaptive reference. Each
    policy's play is a trial of ``backend``."""
    menu = static_menu(plan)
    planners = list(PLANNERS) if plan.planner_rollouts else []
    agents = [(name, seed) for name, reports in runs.items() for seed in range(len(reports))]
    trials: list[tuple[Any, ...]] = [(policy, TRUE_EVAL_SEED, plan) for policy in menu.values()]
    trials += [(policy, ORACLE_SEED, plan) for policy in menu.values()]
    trials += [(folder / "runs" / f"{name}-s{seed}", TRUE_EVAL_SEED, plan) for name, seed in agents]
    trials += [(name, TRUE_EVAL_SEED, plan) for name in planners]
    played = (backend or Backend()).map(play_true, trials, first_here=False)  # the training built the caches
    n_menu, n_agents = len(menu), len(agents)
    evaluation = dict(zip(menu, played[:n_menu], strict=True))
    tuning = dict(zip(menu, played[n_menu : 2 * n_menu], strict=True))
    agent_results = played[2 * n_menu : 2 * n_menu + n_agents]
    planner_results = dict(zip(planners, played[2 * n_menu + n_agents :], strict=True))
    world = resolve_data(plan.data).truth
    assert world is not None  # the plan was checked (ground_truth_problem)
    oracle = oracle_adaptive(tuning, evaluation, user_types(world))
    best = max(menu, key=lambda name: float(evaluation[name].returns.mean()))
    reference = evaluation[best]
    covariates = session_covariates(build_world(EnvConfig(data=plan.data, simulator="true")), reference.users)  # type: ignore[arg-type]

    def versus_best(result: EvaluationResult) -> dict[str, Any]:
        return {**paired_difference(result, reference, covariates).as_json(), "across": "sessions"}

    table: dict[str, Any] = {}
    for name, result in [*evaluation.items(), *planner_results.items()]:
        mean, lo, hi = mean_ci95(result.returns)
        table[name] = {"return_mean": mean, "return_ci95": [lo, hi], "sessions": len(result.returns)}
        if name != best:
            table[name]["minus_best_static"] = versus_best(result)
    oracle_result = replace(reference, returns=oracle.returns)
    mean, lo, hi = mean_ci95(oracle.returns)
    table["oracle-adaptive"] = {"return_mean": mean, "return_ci95": [lo, hi], "sessions": len(oracle.returns),
                                "minus_best_static": versus_best(oracle_result)}  # fmt: skip
    ceiling = table.get("planner:true", {}).get("minus_best_static", {}).get("mean")
    by_agent: dict[str, list[EvaluationResult]] = {}
    for (name, _), result in zip(agents, agent_results, strict=True):
        by_agent.setdefault(name, []).append(result)
    for name, results in by_agent.items():
        means = np.array([float(r.returns.mean()) for r in results])
        gains = np.array([versus_best(r)["mean"] for r in results])
        mean, lo, hi = seed_ci95(means) if len(means) > 1 else mean_ci95(results[0].returns)
        gain, glo, ghi = seed_ci95(gains) if len(gains) > 1 else (gains[0], *versus_best(results[0])["ci95"])
        table[name] = {"return_mean": mean, "return_ci95": [lo, hi], "seeds": len(results),
                       "minus_best_static": {"mean": gain, "ci95": [glo, ghi],
                                             "across": "seeds" if len(results) > 1 else "sessions"},
                       "share_of_ceiling": share_of(gain, ceiling),
                       "captured_oracle_gain": captured_share(mean, table[best]["return_mean"],
                                                              table["oracle-adaptive"]["return_mean"])}  # fmt: skip
    return {
        "table": table,
        "best_static": best,
        "ceiling_gain_over_best_static": ceiling,
        "oracle_gain_over_best_static": table["oracle-adaptive"]["return_mean"] - table[best]["return_mean"],
        "oracle_choice": {str(cell): name for cell, name in oracle.choice.items()},
        "episodes": plan.true_episodes,
        "planner_rollouts": plan.planner_rollouts,
    }


def true_markdown(result: dict[str, Any]) -> str:
    """The true-shop table: every policy against the best static one (paired), the share of the
    ceiling each agent earns, and the oracle."""
    table, best = result["table"], result["best_static"]
    lines = [
        f"| policy (true shop) | return [95% CI] | minus {best} (paired, 95% CI) | share of ceiling | share of oracle gain |",
        "|---|---|---|---|---|",
    ]
    for name, m in sorted(table.items(), key=lambda item: -item[1]["return_mean"]):
        lo, hi = m["return_ci95"]
        cell = paired_cell(m.get("minus_best_static"), reference=name == best)
        share, oracle = m.get("share_of_ceiling"), m.get("captured_oracle_gain")
        label = (
            f"{name} (best static)"
            if name == best
            else f"{name} (ceiling)"
            if name == "planner:true"
            else name
        )
        lines.append(f"| {label} | {m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}] | {cell} | "
                     f"{'' if share is None else f'{share:.0%}'} | {'' if oracle is None else f'{oracle:.0%}'} |")  # fmt: skip
    ceiling = result.get("ceiling_gain_over_best_static")
    lines += ["", f"{result['episodes']} sessions per policy (agents: each seed's run), the same sessions for every row; "
              f"the ceiling (planner:true, {result['planner_rollouts']} futures per candidate) gains "
              f"{'nothing measured' if ceiling is None else f'{ceiling:+.2f} per session'} over the best static baseline; "
              f"the oracle {result['oracle_gain_over_best_static']:+.2f}; oracle choice per type (variety bin * 3 + "
              f"patience bin): {result['oracle_choice']}"]  # fmt: skip
    return "\n".join(lines) + "\n"


QUICK = {"seeds": 1, "timesteps": 3_072, "eval_episodes": 100, "tuning_sessions": 16, "tuning_generations": 1,
         "true_episodes": 200, "planner_rollouts": 4}  # fmt: skip
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
    ceiling = fitted_ceiling(plan, summary["best_static"]) if plan.planner_rollouts else None
    warm: dict[str, Any] = {"ctr_return": summary["ctr"]["return_mean"], "timesteps": plan.timesteps}
    if "ppo-cold" in summary and "ppo-warm" in summary:  # the warm-start figures need both rows
        cold_final = summary["ppo-cold"]["return_mean"]
        warm |= {
            "ppo_warm_initial_return": summary["ppo-warm"].get("initial_return_mean"),
            "ppo_cold_final_return": cold_final,
            "ppo_warm_steps_to_cold_final": steps_to_reach(results["curves"]["ppo-warm"], cold_final),
        }
    report = {"plan": plan.__dict__, "summary": summary, "fitted_ceiling": ceiling, "true_shop": true,
              "true_shop_skipped": no_truth,
              "warm_start": warm,
              "seconds": round(time.perf_counter() - started, 1),
              "runs": {name: [{k: r[k] for k in ("policy", "baselines", "timesteps")} for r in reports]
                       for name, reports in results["runs"].items()}}  # fmt: skip
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    true_text = f"no true shop: {no_truth}\n" if true is None else true_markdown(true)
    write_text_atomic(args.json.with_suffix(".md"), markdown(summary, warm, ceiling) + "\n" + true_text)
    plot_rows(results["curves"], args.json.with_suffix(".png"))
    print(markdown(summary, warm, ceiling))
    print(true_text)


if __name__ == "__main__":
    main()
