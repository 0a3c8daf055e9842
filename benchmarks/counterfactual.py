"""Counterfactual fidelity of the fitted simulator, and which mechanism is wrong: ``python -m
benchmarks.counterfactual --json FILE``

A family of policies (:func:`agents.evaluation.counterfactual.policy_family`, 30+: static
re-rankers, perturbations of ``tuned-weights``, the discrete strategies, state-dependent switches
and the trained agents of ``--agents``) is played on the same sessions in the true shop, in the
fitted simulator and in mixtures of the two (:mod:`simulators.fit.mixed`):

- **the fit**: the figures of :func:`agents.evaluation.counterfactual.figures` (Spearman, Pearson,
  advantage slope, sign share, advantage RMSE) over the whole family and over its neighbourhood of
  the reference (the policies whose true advantage lies within ``--near`` per session: the choices
  an agent warm-started at ``tuned-weights`` meets);
- **swapped in**: the fit with one mechanism taken from the truth: how much of the fit's advantage
  error that mechanism alone removes;
- **swapped out**: the truth with one mechanism taken from the fit (every other mechanism true):
  how much error that mechanism alone brings.

Policies that play the same sessions alike in every world (e.g. ``ctr`` and ``always greedy_ctr``)
are counted once. Writes the JSON, a markdown table beside it (``FILE.md``) and the fitted against
the true advantage of every policy (``FILE.png``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from agents.evaluation.counterfactual import (
    REFERENCE,
    Advantages,
    advantages,
    ensemble,
    figures,
    policy_family,
)
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.evaluation.tuning import TuningBudget
from agents.policies.protocol import Policy
from agents.studies.backend import backend_of
from benchmarks.plans import parse_plan
from envs.config import EnvConfig
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png
from simulators.core.storage import write_text_atomic
from simulators.datasets import resolve_data
from simulators.fit.mixed import MECHANISMS

EVAL_SEED = 72_000
"""Seed of the evaluation sessions (no training, tuning or other benchmark uses it)."""


@dataclass(frozen=True)
class CounterfactualPlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """Logs with a ground truth (a shop)."""
    sessions: int = 500
    """Sessions per policy and world (the same sessions everywhere)."""
    near: float = 2.5
    """The neighbourhood of the reference: policies whose true advantage lies within this (per session)."""
    swaps: bool = True
    """Also play the mixtures (each mechanism swapped in and out)."""
    ensemble: int = 4
    """Members of the fit's ensemble played (each fitted on half the users; 0 = none)."""
    kappa: float = 1.0
    """The pessimistic view's penalty: advantage minus kappa times the members' spread."""
    agents: tuple[str, ...] = ()
    """Trained agents' run folders to add to the family (named by their folder)."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned."""
    tuning_generations: int = 5
    """CEM generations of ``tuned-weights``."""

    def __post_init__(self) -> None:
        check_at_least_one(self, ("sessions", "tuning_sessions", "tuning_generations"), "--")
        if self.ensemble == 1 or not 0 <= self.ensemble <= 64:
            raise ConfigError(f"--ensemble: 0 (none) or 2 to 64 members, got {self.ensemble}")
        if not (np.isfinite(self.kappa) and self.kappa >= 0):
            raise ConfigError(f"--kappa must be a number >= 0, got {self.kappa}")
        if not self.near > 0:
            raise ConfigError(f"--near must be > 0, got {self.near}")
        if resolve_data(self.data).truth is None:
            raise ConfigError(
                f"--data {self.data!r}: counterfactual fidelity needs logs with a ground truth (a shop)"
            )
        for path in self.agents:
            if not Path(path).is_dir():
                raise ConfigError(f"--agents {path!r}: not a run folder")
        names = [Path(path).name for path in self.agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"--agents: two run folders share a name: {names}")


def worlds(plan: CounterfactualPlan) -> dict[str, EnvConfig]:
    """The worlds played, by label: the truth, the fit, then the mixtures."""
    fitted = EnvConfig(data=plan.data)
    out = {"truth": replace(fitted, simulator="true"), "fit": fitted}
    for k in range(1, plan.ensemble + 1):
        out[f"fit sample {k}"] = replace(fitted, fit_sample=k)
    if plan.swaps:
        for name in MECHANISMS:
            out[f"fit + true {name}"] = replace(fitted, true_parts=name)
        for name in MECHANISMS:
            rest = ",".join(m for m in MECHANISMS if m != name)
            out[f"truth + fitted {name}"] = replace(fitted, true_parts=rest)
    return out


def distinct(played: dict[str, dict[str, EvaluationResult]]) -> list[str]:
    """The policies whose sessions differ from every earlier policy's in some world (a copy, e.g.
    ``fair-topk`` where its constraint never binds, would count one policy twice); the reference
    first."""
    names = list(next(iter(played.values())))
    keep: list[str] = [REFERENCE] if REFERENCE in names else []
    for name in names:
        if not any(
            all(np.array_equal(results[name].returns, results[other].returns) for results in played.values())
            for other in keep
        ):
            keep.append(name)
    return keep


def subset(values: Advantages, names: list[str]) -> Advantages:
    """``values`` restricted to ``names``."""
    return Advantages(
        {n: values.values[n] for n in names},
        {n: values.advantage[n] for n in names},
        {n: values.ci95[n] for n in names},
    )


def measure(plan: CounterfactualPlan) -> dict[str, Any]:
    """Play the family in every world and score each world against the truth (module docstring)."""
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    fitted = EnvConfig(data=plan.data)
    agents = {Path(path).name: Path(path) for path in plan.agents}
    family: dict[str, Policy] = policy_family(fitted, budget, agents)
    played: dict[str, dict[str, EvaluationResult]] = {}
    envs = worlds(plan)
    with tqdm(total=len(envs) * len(family), desc="counterfactual", unit="policy") as bar:
        for label, env in envs.items():
            played[label] = {}
            for name, policy in family.items():
                played[label][name] = run_sessions(policy, env, plan.sessions, EVAL_SEED, progress=False)
                bar.update(1)
    names = distinct(played)
    valued = {label: subset(advantages(played[label], envs[label]), names) for label in envs}
    truth = valued["truth"]
    near = [n for n in names if abs(truth.advantage[n]) <= plan.near]
    members = [valued.pop(f"fit sample {k}") for k in range(1, plan.ensemble + 1)]
    views = ensemble(valued["fit"], members, plan.kappa) if members else None
    scored = dict(valued)
    if views is not None:
        scored |= {"ensemble mean": views.mean, f"fit, pessimistic (kappa {plan.kappa:g})": views.pessimistic}
    scores = {
        label: {
            "all": figures(values, truth),
            "near": figures(subset(values, near), subset(truth, near)),
        }
        for label, values in scored.items()
        if label != "truth"
    }
    uncertainty = None
    if views is not None:
        others = [n for n in names if n != REFERENCE]
        error = [abs(valued["fit"].advantage[n] - truth.advantage[n]) for n in others]
        spread = [views.spread[n] for n in others]
        uncertainty = {
            "members": plan.ensemble,
            "kappa": plan.kappa,
            "spread_median": float(np.median(spread)),
            "error_median": float(np.median(error)),
            "error_vs_spread_spearman": float(spearmanr(error, spread)[0]),
        }
    policies = {
        name: {
            label: {
                "return": valued[label].values[name],
                "advantage": valued[label].advantage[name],
                "ci95": list(valued[label].ci95[name]),
            }
            for label in ("truth", "fit")
        }
        | {"near": name in near, "spread": None if views is None else views.spread[name]}
        for name in names
    }
    return {
        "plan": asdict(plan), "reference": REFERENCE, "seed": EVAL_SEED, "policies_played": len(family),
        "distinct": len(names), "near": len(near), "scores": scores, "uncertainty": uncertainty,
        "policies": policies,
    }  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    """The tables: each world's figures (whole family and the reference's neighbourhood), the
    ensemble's uncertainty, then every policy's return and advantage in the fit and in the truth."""
    near = report["plan"]["near"]
    fit_error = {part: report["scores"]["fit"][part]["advantage_rmse"] for part in ("all", "near")}
    lines = [
        f"{report['distinct']} distinct policies ({report['policies_played']} played), {report['plan']['sessions']} "
        f"sessions each in every world, the same sessions (seed {report['seed']}); advantages are paired "
        f"differences to {report['reference']}. 'near': the {report['near']} policies whose true advantage lies "
        f"within {near:g} per session. 'gains (false)': the policies the world says beat {report['reference']} "
        "(of them, those that do not in the truth).",
        "",
        "| world | Spearman | Pearson | slope | right sign | advantage RMSE | error removed | gains (false) | near: Spearman | near: slope | near: right sign | near: advantage RMSE | near: error removed | near: gains (false) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for label, score in report["scores"].items():
        cells = []
        for part in ("all", "near"):
            s = score[part]
            removed = 1 - s["advantage_rmse"] / fit_error[part] if fit_error[part] > 0 else float("nan")
            cells += [
                f"{s['spearman']:.2f}", f"{s['slope']:.2f}",
                f"{s['sign_share']:.0%} of {s['sign_policies']}", f"{s['advantage_rmse']:.2f}",
                "" if label == "fit" else f"{removed:+.0%}", f"{s['gains']} ({s['false_gains']})",
            ]  # fmt: skip
            if part == "all":
                cells.insert(1, f"{s['pearson']:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if (u := report.get("uncertainty")) is not None:
        lines += [
            "",
            f"The fit's own uncertainty: {u['members']} fits on a random half of the users each; a policy's "
            f"spread is the members' standard deviation of its advantage (median {u['spread_median']:.2f}, against "
            f"a median error of the fit {u['error_median']:.2f}); Spearman of the fit's error |A_fit - A_true| "
            f"with the spread: {u['error_vs_spread_spearman']:+.2f}. The pessimistic row is the fit minus "
            f"{u['kappa']:g} x the spread.",
        ]
    lines += [
        "",
        "| policy | return: fit | return: truth | advantage: fit | advantage: truth [95% CI] | spread | near |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in sorted(report["policies"].items(), key=lambda item: -item[1]["truth"]["advantage"]):
        fit, true = row["fit"], row["truth"]
        lo, hi = true["ci95"]
        spread = "" if row.get("spread") is None else f"{row['spread']:.2f}"
        lines.append(
            f"| {name} | {fit['return']:.2f} | {true['return']:.2f} | {fit['advantage']:+.2f} | "
            f"{true['advantage']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {spread} | {'yes' if row['near'] else ''} |"
        )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Any) -> None:
    """True against fitted advantage of every policy (whole family, and the neighbourhood)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    rows = report["policies"].values()
    for axis, only_near, title in (
        (axes[0], False, "every policy"),
        (axes[1], True, f"within {report['plan']['near']:g} of the reference"),
    ):
        chosen = [row for row in rows if row["near"] or not only_near]
        x = np.array([row["fit"]["advantage"] for row in chosen])
        y = np.array([row["truth"]["advantage"] for row in chosen])
        err = np.array(
            [
                [
                    row["truth"]["advantage"] - row["truth"]["ci95"][0],
                    row["truth"]["ci95"][1] - row["truth"]["advantage"],
                ]
                for row in chosen
            ]
        ).T
        axis.errorbar(x, y, yerr=err, fmt="o", markersize=3, capsize=2, alpha=0.8)
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        axis.plot([low, high], [low, high], color="grey", linewidth=0.8, label="model right")
        axis.axhline(0, color="black", linewidth=0.5)
        axis.axvline(0, color="black", linewidth=0.5)
        axis.set_xlabel(f"advantage over {report['reference']} in the fitted simulator")
        axis.set_title(title, fontsize=9)
    axes[0].set_ylabel("advantage in the true shop (paired, 95% CI)")
    axes[0].legend(fontsize=8)
    save_png(figure, path)


QUICK = {"sessions": 32, "swaps": False, "ensemble": 0, "tuning_sessions": 16, "tuning_generations": 1}
"""The plan of ``--quick`` (a minute or two)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write JSON, markdown and PNG."""
    args, plan = parse_plan(
        "python -m benchmarks.counterfactual",
        (__doc__ or "").splitlines()[0],
        CounterfactualPlan,
        QUICK,
        argv,
    )
    backend_of(args)  # the flags are checked; the worlds are played one after another, here
    started = time.perf_counter()
    report = measure(plan) | {"seconds": 0.0}
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(args.json.with_suffix(".md"), markdown(report) + "\n")
    plot(report, args.json.with_suffix(".png"))
    print(markdown(report))


if __name__ == "__main__":
    main()
