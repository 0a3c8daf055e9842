"""The engagement-fairness frontier: PPO over a sweep of the fairness weight against the fair
re-rankers over a sweep of their knobs, and the static baselines, on the same users.

``python -m benchmarks.fairness --json FILE [--quick] [--seeds S] [--lambdas 0 0.5 1 2 4] ...``

PPO trains in the fitted shop at each ``fairness_lambda`` (merit-based target) and once more
with the user-side penalty (``user_fairness_lambda``). Every point (each PPO run, each fair
re-ranker at each knob: FA*IR's minimum share, the exposure LP's allowed gap, FairCo's gain;
the static baselines) is then played in the fitted and in the true shop on the same users with
no penalty in the reward, so ``return`` is the engagement (clicks + purchases) every point
earns. Per point: return with its 95% CI (over seeds for PPO, over sessions otherwise), the
protected exposure share, its merit-based target and the gap (share - target), the exposure
Gini, the tail's share and the user-group engagement gap. Writes the JSON, a markdown table
(``FILE.md``) and the frontier (``FILE.png``: return against the exposure gap, CIs as bars),
and picks the default ``fairness_lambda``: the smallest of the sweep whose PPO keeps the
protected share at or above its target - 0.02 in both shops for every seed, with a return at or
above the static CTR ranking's.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.load import policy_env_options
from agents.evaluation.paired import paired_difference
from agents.evaluation.report import SHARE_TOLERANCE
from agents.evaluation.sessions import EvaluationResult, metrics, run_sessions
from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.policies.fair import FAIR_NAMES, KNOBS, make_fair
from agents.policies.protocol import Policy
from agents.studies.backend import Backend, backend_of
from agents.training.config import TrainConfig
from agents.training.train import train
from benchmarks.plans import parse_plan
from benchmarks.policies import TRUE_EVAL_SEED
from envs.config import EnvConfig
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.metrics import mean_ci95, seed_ci95
from simulators.core.plots import save_png
from simulators.core.storage import write_text_atomic

FITTED_EVAL_SEED = 10_000
"""Seed of the fitted-shop evaluation users (every point meets the same ones)."""
WORLDS = ("fitted", "true")


@dataclass(frozen=True)
class FairnessPlan:
    """How much to run (the benchmark's flags)."""

    seeds: int = 3
    """Training seeds per PPO point."""
    timesteps: int = 30_000
    """Environment steps per training run."""
    lambdas: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    """PPO's fairness_lambda sweep (merit-based target)."""
    user_lambda: float = 1.0
    """user_fairness_lambda of the one user-side point (PPO at fairness_lambda 0)."""
    fair_topk: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
    """FA*IR's minimum protected share p."""
    exposure_lp: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
    """The exposure LP's allowed gap delta (share of the slate's exposure)."""
    fairco: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    """FairCo's controller gain."""
    eval_episodes: int = 500
    """Sessions per point in the fitted shop."""
    true_episodes: int = 2_000
    """Sessions per point in the true shop."""
    n_envs: int = 16
    """Parallel users per training run."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (once per world)."""
    tuning_generations: int = 5
    """CEM generations of tuned-weights."""

    def __post_init__(self) -> None:
        names = ("seeds", "timesteps", "eval_episodes", "true_episodes", "n_envs", "tuning_sessions",
                 "tuning_generations")  # fmt: skip
        check_at_least_one(self, names, "--")
        for name in ("lambdas", "fair_topk", "exposure_lp", "fairco"):
            values = getattr(self, name)
            if not values or not all(np.isfinite(v) and v >= 0 for v in values):
                raise ConfigError(
                    f"--{name.replace('_', '-')}: one or more finite numbers >= 0, got {values}"
                )
        if any(p > 1 for p in self.fair_topk):
            raise ConfigError(f"--fair-topk: shares in [0, 1], got {self.fair_topk}")
        if not np.isfinite(self.user_lambda) or self.user_lambda < 0:
            raise ConfigError(f"--user-lambda must be a finite number >= 0, got {self.user_lambda}")


def train_point(name: str, env: EnvConfig, seed: int, plan: FairnessPlan, folder: Path) -> Path:
    """One trial: PPO at one point of the sweep and ``seed``; its run folder."""
    out = folder / "runs" / f"{name.replace(' ', '-').replace('=', '')}-s{seed}"
    config = TrainConfig(
        "ppo", timesteps=plan.timesteps, seed=seed, env_options=env, eval_episodes=100, curve_episodes=100,
        eval_freq=max(plan.timesteps // 4, 512), out=str(out), n_envs=plan.n_envs,
        tuning_sessions=plan.tuning_sessions, tuning_generations=plan.tuning_generations,
    )  # fmt: skip
    train(config, overwrite=True)  # the benchmark's own folder: rerunning replaces it
    print(f"{name} seed {seed}: trained", flush=True)
    return out


def train_points(plan: FairnessPlan, folder: Path, backend: Backend | None = None) -> dict[str, list[Path]]:
    """Train PPO at each lambda (and the user-side point) for every seed, each a trial on
    ``backend``; run folders per point."""
    points = {
        f"ppo lambda={lam:g}": EnvConfig(action_mode="weights", fairness_lambda=lam) for lam in plan.lambdas
    }
    points[f"ppo user-lambda={plan.user_lambda:g}"] = EnvConfig(
        action_mode="weights", user_fairness_lambda=plan.user_lambda
    )
    trials = [(name, env, seed, plan, folder) for name, env in points.items() for seed in range(plan.seeds)]
    runs: dict[str, list[Path]] = {}
    for trial, out in zip(trials, (backend or Backend()).map(train_point, trials), strict=True):
        runs.setdefault(trial[0], []).append(out)
    return runs


def baseline_points(plan: FairnessPlan) -> dict[str, tuple[Policy, dict[str, float]]]:
    """Every static baseline and every fair re-ranker at every knob: name -> (policy, knob)."""
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    points: dict[str, tuple[Policy, dict[str, float]]] = {
        name: (make_baseline(name), {}) for name in POLICY_NAMES
    }
    for name in RERANKER_NAMES:
        points[name] = (load_or_tune(name, EnvConfig(), budget), {})
    sweeps = {"fair-topk": plan.fair_topk, "exposure-lp": plan.exposure_lp, "fairco": plan.fairco}
    for name in FAIR_NAMES:
        for knob in sweeps[name]:
            points[f"{name} {KNOBS[name]}={knob:g}"] = (make_fair(name, knob), {KNOBS[name]: knob})
    return points


def play(
    policy: Policy, world: str, plan: FairnessPlan, **options: Any
) -> tuple[dict[str, Any], EvaluationResult]:
    """``policy`` on the world's evaluation sessions, with no penalty in the reward: its metrics
    object and its sessions (every point meets the same ones)."""
    episodes, seed = (
        (plan.eval_episodes, FITTED_EVAL_SEED) if world == "fitted" else (plan.true_episodes, TRUE_EVAL_SEED)
    )
    env = EnvConfig(**{**options, "simulator": world, "fairness_lambda": 0.0, "user_fairness_lambda": 0.0})
    result = run_sessions(policy, env, episodes, seed, progress=False)
    return metrics(result, "ecommerce-v0", getattr(policy, "name", "agent"), seed), result


FIGURES = ("protected_exposure_share", "protected_exposure_target", "exposure_gini", "tail_exposure_share",
           "user_group_gap")  # fmt: skip


def point_entry(reports: list[dict[str, Any]], family: str, knob: dict[str, float]) -> dict[str, Any]:
    """One point of the table: the return with its CI (over seeds when there are several runs,
    else over sessions) and the mean of each fairness figure."""
    if len(reports) > 1:
        mean, lo, hi = mean_ci95(np.array([r["return_mean"] for r in reports]))
    else:
        mean, (lo, hi) = reports[0]["return_mean"], reports[0]["return_ci95"]
    entry: dict[str, Any] = {
        "family": family,
        "knob": knob,
        "return_mean": mean,
        "return_ci95": [lo, hi],
        "runs": len(reports),
    }
    entry |= {name: float(np.mean([r[name] for r in reports])) for name in FIGURES}
    entry["exposure_gap"] = entry["protected_exposure_share"] - entry["protected_exposure_target"]
    gaps = [r["protected_exposure_share"] - r["protected_exposure_target"] for r in reports]
    entry["worst_exposure_gap"] = float(min(gaps))  # the seed furthest below its target
    entry["per_run"] = [{k: r[k] for k in ("return_mean", "protected_exposure_share", "protected_exposure_target")}
                        for r in reports]  # fmt: skip
    return entry


def evaluate_points(
    plan: FairnessPlan, runs: dict[str, list[Path]], baselines: dict[str, tuple[Policy, dict[str, float]]]
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """world -> point -> entry, every point on the same sessions and compared paired with the best
    static baseline of its world (across seeds for PPO, across sessions otherwise)."""
    table: dict[str, dict[str, Any]] = {world: {} for world in WORLDS}
    for world in WORLDS:
        played: dict[str, list[EvaluationResult]] = {}
        for name, folders in runs.items():
            reports = []
            for folder in folders:
                agent = TrainedAgent.load(folder, device="cpu")
                report, result = play(agent, world, plan, **policy_env_options(agent))
                reports.append(report)
                played.setdefault(name, []).append(result)
            knob = (
                {"user_fairness_lambda": plan.user_lambda}
                if "user" in name
                else {"fairness_lambda": float(name.split("=")[1])}
            )
            table[world][name] = point_entry(reports, "ppo", knob)
        for name, (policy, knob) in baselines.items():
            family = name.split(" ")[0] if name.split(" ")[0] in FAIR_NAMES else "static"
            report, result = play(policy, world, plan)
            played[name] = [result]
            table[world][name] = point_entry([report], family, knob)
            print(f"{world}: {name} {table[world][name]['return_mean']:.2f}", flush=True)
        static = [name for name, m in table[world].items() if m["family"] == "static"]
        best = max(static, key=lambda name: table[world][name]["return_mean"])
        for name, results in played.items():
            diffs = [paired_difference(result, played[best][0]) for result in results]
            if len(diffs) > 1:
                mean, lo, hi = seed_ci95(np.array([d.mean for d in diffs]))
                table[world][name]["minus_best_static"] = {"mean": mean, "ci95": [lo, hi], "across": "seeds"}
            else:
                table[world][name]["minus_best_static"] = {**diffs[0].as_json(), "across": "sessions"}
        table[world][best]["best_static"] = True
    return table


def choose_default(table: dict[str, dict[str, Any]], lambdas: tuple[float, ...]) -> dict[str, Any]:
    """The smallest lambda whose PPO keeps its protected share >= target - tolerance in both
    shops for every seed (the main job is one seed), with a mean return at or above the static
    CTR ranking's (``None`` when none does)."""
    checks = []
    for lam in sorted(lambdas):
        name = f"ppo lambda={lam:g}"
        verdict = {"fairness_lambda": lam}
        for world in WORLDS:
            point, ctr = table[world][name], table[world]["ctr"]
            verdict[f"{world}_share_ok"] = point["worst_exposure_gap"] >= -SHARE_TOLERANCE
            verdict[f"{world}_return_ok"] = point["return_mean"] >= ctr["return_mean"]
        checks.append(verdict)
        if all(v for k, v in verdict.items() if k.endswith("_ok")):
            return {"fairness_lambda": lam, "checks": checks}
    return {"fairness_lambda": None, "checks": checks}


def markdown(table: dict[str, dict[str, Any]], default: dict[str, Any]) -> str:
    """One table per shop, and the chosen default."""
    lines = []
    for world in WORLDS:
        best = next((name for name, m in table[world].items() if m.get("best_static")), "")
        lines += [f"## {world} shop", "",
                  f"| point | return [95% CI] | minus {best} (paired, 95% CI) | protected share | target | gap (worst seed) | gini | tail share | user gap |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, m in table[world].items():
            lo, hi = m["return_ci95"]
            short = " (short)" if m["worst_exposure_gap"] < -SHARE_TOLERANCE else ""
            d = m.get("minus_best_static")
            vs = (
                "reference"
                if m.get("best_static")
                else ""
                if d is None
                else (f"{d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}] ({d['across']})")
            )
            lines.append(
                f"| {name} | {m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}] | {vs} | {m['protected_exposure_share']:.3f}{short} | "
                f"{m['protected_exposure_target']:.3f} | {m['exposure_gap']:+.3f} ({m['worst_exposure_gap']:+.3f}) | {m['exposure_gini']:.3f} | "
                f"{m['tail_exposure_share']:.3f} | {m['user_group_gap']:.2f} |"
            )
        lines.append("")
    lines.append(
        f"default fairness_lambda: {default['fairness_lambda']} (checks: {json.dumps(default['checks'])})"
    )
    return "\n".join(lines) + "\n"


def plot_frontier(table: dict[str, dict[str, Any]], path: Path) -> None:
    """Return against the exposure gap per shop: PPO's sweep as a line, each fair re-ranker's
    sweep as its own, the static baselines as points; 95% CIs as vertical bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(WORLDS), figsize=(12, 4.5))
    for axis, world in zip(axes, WORLDS, strict=True):
        points = table[world]
        families: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for name, m in points.items():
            key = (
                "ppo (lambda sweep)"
                if name.startswith("ppo lambda")
                else name
                if m["family"] in ("static", "ppo")
                else m["family"]
            )
            families.setdefault(key, []).append((name, m))
        colours = plt.get_cmap("tab20")
        for index, (family, members) in enumerate(families.items()):
            members = sorted(members, key=lambda named: named[1]["exposure_gap"])
            x = [m["exposure_gap"] for _, m in members]
            y = [m["return_mean"] for _, m in members]
            err = np.array([[m["return_mean"] - m["return_ci95"][0], m["return_ci95"][1] - m["return_mean"]]
                            for _, m in members]).T  # fmt: skip
            style = "-o" if len(members) > 1 else "s"
            width = 2.5 if family.startswith("ppo") else 1.2
            axis.errorbar(x, y, yerr=err, fmt=style, markersize=4, capsize=2, label=family, color=colours(index % 20),
                          linewidth=width)  # fmt: skip
        axis.axvline(0.0, color="gray", linestyle=":", linewidth=1)
        axis.set_xlabel("exposure gap (protected share - merit target)")
        axis.set_ylabel("return (clicks + purchases per session)")
        axis.set_title(f"{world} shop")
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    save_png(figure, path)


QUICK = {"seeds": 1, "timesteps": 2_048, "lambdas": (0.0, 2.0), "fair_topk": (0.3,), "exposure_lp": (0.0,),
         "fairco": (2.0,), "eval_episodes": 60, "true_episodes": 100, "n_envs": 8, "tuning_sessions": 16,
         "tuning_generations": 1}  # fmt: skip
"""The plan of ``--quick`` (a few minutes)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Train, evaluate, choose the default; write JSON, markdown and PNG."""
    args, plan = parse_plan(
        "python -m benchmarks.fairness", __doc__.splitlines()[0], FairnessPlan, QUICK, argv
    )
    folder = args.json.with_suffix("")
    started = time.perf_counter()
    runs = train_points(plan, folder, backend_of(args))
    table = evaluate_points(plan, runs, baseline_points(plan))
    default = choose_default(table, plan.lambdas)
    report = {"plan": {k: list(v) if isinstance(v, tuple) else v for k, v in plan.__dict__.items()},
              "table": table, "default": default, "share_tolerance": SHARE_TOLERANCE,
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(args.json.with_suffix(".md"), markdown(table, default))
    plot_frontier(table, args.json.with_suffix(".png"))
    print(markdown(table, default))


if __name__ == "__main__":
    main()
