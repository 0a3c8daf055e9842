"""Counterfactual fidelity of the fitted simulator, and which mechanism is wrong: ``python -m
benchmarks.counterfactual --json FILE [--data shop|movielens|obd|FOLDER]``

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

- **two halves** (``--halves``, the report of logs without a ground truth): the fits on the two
  halves of one split of the users (fit samples 1 and 2) scored against each other as if one were
  the truth, and each on the logging policy's sessions of its own half and of the other (click
  AUC, session-length KS). With a ground truth each half is scored against it too, so the shop
  shows how far the halves' agreement vouches for the truth's. ``--data movielens`` (or ``obd``, or
  a folder of your logs) gives this report alone.

Policies that play the same sessions alike in every world (e.g. ``ctr`` and ``always greedy_ctr``)
are counted once. Writes the JSON, a markdown table beside it (``FILE.md``) and the fitted against
the true advantage of every policy (``FILE.png``).
"""

from __future__ import annotations

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
from benchmarks.plans import parse_plan, write_outputs
from envs.config import MAX_FIT_SAMPLE, MAX_PESSIMISM_MEMBERS, EnvConfig
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png
from simulators.data.steps import build_steps
from simulators.datasets import resolve_data
from simulators.fit.cache import load_or_fit
from simulators.fit.config import FitConfig
from simulators.fit.mixed import MECHANISMS
from simulators.fit.report import held_out_figures
from simulators.fit.train import half_of_users

EVAL_SEED = 72_000
"""Seed of the evaluation sessions (no training, tuning or other benchmark uses it)."""


@dataclass(frozen=True)
class CounterfactualPlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """The logs: with a ground truth (a shop) every figure; without one, the two halves'."""
    fit_sample: int = 0
    """The fit scored as "fit" (and swapped into): 0 = the fit on every session; k = the k-th
    fit on half the users (``EnvConfig.fit_sample``), to take apart why one half's fit is wrong."""
    sessions: int = 500
    """Sessions per policy and world (the same sessions everywhere)."""
    near: float = 2.5
    """The neighbourhood of the reference: policies whose true advantage lies within this (per session)."""
    swaps: bool = True
    """Also play the mixtures (each mechanism swapped in and out); only where the logs have a
    ground truth."""
    halves: bool = True
    """Also fit each half of one split of the users (fit samples 1 and 2) and score one half's
    model against the other's and on the other's sessions: the check of logs without a truth."""
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
        if not 0 <= self.fit_sample <= MAX_FIT_SAMPLE:
            raise ConfigError(f"--fit-sample must lie in [0, {MAX_FIT_SAMPLE}], got {self.fit_sample}")
        if self.fit_sample and (self.ensemble or self.halves):
            raise ConfigError("--fit-sample scores one half's fit alone: pass --ensemble 0 --no-halves")
        if resolve_data(self.data).truth is None and not self.halves:
            raise ConfigError(
                f"--data {self.data!r}: logs without a ground truth are scored by their two halves: "
                "pass --halves (--quick leaves them out)"
            )
        for path in self.agents:
            if not Path(path).is_dir():
                raise ConfigError(f"--agents {path!r}: not a run folder")
        names = [Path(path).name for path in self.agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"--agents: two run folders share a name: {names}")


def worlds(plan: CounterfactualPlan) -> dict[str, EnvConfig]:
    """The worlds played, by label: the truth (where the logs have one), the fit, its samples
    (the halves and the ensemble's members), then the mixtures."""
    fitted = EnvConfig(data=plan.data, fit_sample=plan.fit_sample)
    truth = resolve_data(plan.data).truth is not None
    out = {"truth": replace(fitted, simulator="true", fit_sample=0)} if truth else {}
    out["fit"] = fitted
    for k in range(1, max(plan.ensemble, 2 if plan.halves else 0) + 1):
        out[f"fit sample {k}"] = replace(fitted, fit_sample=k)
    if truth and 2 <= plan.ensemble <= MAX_PESSIMISM_MEMBERS and plan.kappa > 0:
        out[pessimistic_env(plan)] = replace(fitted, pessimism=plan.kappa, pessimism_members=plan.ensemble)
    if plan.swaps and truth:
        for name in MECHANISMS:
            out[f"fit + true {name}"] = replace(fitted, true_parts=name)
        for name in MECHANISMS:
            rest = ",".join(m for m in MECHANISMS if m != name)
            out[f"truth + fitted {name}"] = replace(fitted, true_parts=rest)
    return out


def pessimistic_env(plan: CounterfactualPlan) -> str:
    """The label of the fit played with the env's pessimism (``EnvConfig.pessimism``): every step's
    reward minus kappa times the ensemble's disagreement about it."""
    return f"fit, env pessimism (kappa {plan.kappa:g})"


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
    """Play the family in every world and score each world against the truth, and the two halves
    against each other (module docstring)."""
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    fitted = EnvConfig(data=plan.data, fit_sample=plan.fit_sample)
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
    samples = {
        k: valued.pop(f"fit sample {k}") for k in range(1, len(envs) + 1) if f"fit sample {k}" in valued
    }
    truth = valued.get("truth")
    anchor = truth or valued["fit"]  # where "near" is measured: the truth, else the fit
    near = [n for n in names if abs(anchor.advantage[n]) <= plan.near]
    members = [samples[k] for k in range(1, plan.ensemble + 1)]
    views = ensemble(valued["fit"], members, plan.kappa) if members else None
    scores: dict[str, Any] = {}
    if truth is not None:
        penalised = valued.pop(pessimistic_env(plan), None)  # shown after the ensemble's views
        scored = dict(valued)
        if views is not None:
            scored |= {
                "ensemble mean": views.mean,
                f"fit, pessimistic (kappa {plan.kappa:g})": views.pessimistic,
            }
        if penalised is not None:
            scored[pessimistic_env(plan)] = penalised
        scores = {label: both(values, truth, near) for label, values in scored.items() if label != "truth"}
    uncertainty = None
    if views is not None:
        others = [n for n in names if n != REFERENCE]
        spread = [views.spread[n] for n in others]
        uncertainty = {
            "members": plan.ensemble,
            "kappa": plan.kappa,
            "spread_median": float(np.median(spread)),
        }
        if truth is not None:
            error = [abs(valued["fit"].advantage[n] - truth.advantage[n]) for n in others]
            uncertainty |= {
                "error_median": float(np.median(error)),
                "error_vs_spread_spearman": float(spearmanr(error, spread)[0]),
            }
    halves = split_half(plan.data, samples, truth, near) if plan.halves else None
    shown = {"truth": truth, "fit": valued["fit"]} | (
        {"half 1": samples[1], "half 2": samples[2]} if plan.halves else {}
    )
    policies = {
        name: {
            label: {
                "return": values.values[name],
                "advantage": values.advantage[name],
                "ci95": list(values.ci95[name]),
            }
            for label, values in shown.items()
            if values is not None
        }
        | {"near": name in near, "spread": None if views is None else views.spread[name]}
        for name in names
    }
    return {
        "plan": asdict(plan), "reference": REFERENCE, "seed": EVAL_SEED, "policies_played": len(family),
        "distinct": len(names), "near": len(near), "has_truth": truth is not None, "scores": scores,
        "halves": halves, "uncertainty": uncertainty, "policies": policies,
    }  # fmt: skip


def both(model: Advantages, truth: Advantages, near: list[str]) -> dict[str, Any]:
    """:func:`figures` over the whole family and over the ``near`` policies."""
    return {"all": figures(model, truth), "near": figures(subset(model, near), subset(truth, near))}


def split_half(
    data: str, samples: dict[int, Advantages], truth: Advantages | None, near: list[str]
) -> dict[str, Any]:
    """The two-halves report: fit samples 1 and 2 learned from the two halves of one split of the
    users. ``agreement``: each half's model scored against the other's as if it were the truth
    (:func:`figures`; with a ground truth, each half's own scores beside them, to show how far
    agreement between halves vouches for agreement with the truth). ``held_out``: each half's
    model on its own half's sessions and on the other half's (click AUC, session-length KS: the
    logging policy's sessions replayed, :func:`simulators.fit.report.held_out_figures`)."""
    agreement = {"half 1 on half 2": both(samples[1], samples[2], near)}
    agreement["half 2 on half 1"] = both(samples[2], samples[1], near)
    if truth is not None:
        agreement |= {f"half {k} on the truth": both(samples[k], truth, near) for k in (1, 2)}
    logs = resolve_data(data).logs
    config = FitConfig()
    halves = {k: half_of_users(logs, replace(config, sample=k)) for k in (1, 2)}
    steps = {k: build_steps(part, config.history_length, history_from=logs) for k, part in halves.items()}
    cap = int(max(part.session_length.max() for part in steps.values()))
    held_out = {}
    for k in (1, 2):
        simulator, _ = load_or_fit(logs, replace(config, sample=k))
        held_out[f"half {k}"] = {
            "own half": held_out_figures(simulator, steps[k], cap, EVAL_SEED),
            "other half": held_out_figures(simulator, steps[3 - k], cap, EVAL_SEED),
        }
    return {"agreement": agreement, "held_out": held_out}


SCORE_HEADER = (
    "| world | Spearman | Pearson | slope | right sign | advantage RMSE | error removed | gains (false) | near: Spearman "
    "| near: slope | near: right sign | near: advantage RMSE | near: error removed | near: gains (false) |"
)


def number(value: float) -> str:
    """A figure to two decimals; ``n/a`` where it is undefined (e.g. a correlation of constants)."""
    return f"{value:.2f}" if np.isfinite(value) else "n/a"


def score_rows(scores: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    """One table row per world of ``scores``; ``error removed`` against ``baseline``'s RMSE."""
    lines = [SCORE_HEADER, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, score in scores.items():
        cells = []
        for part in ("all", "near"):
            s = score[part]
            base = None if baseline is None else baseline[part]["advantage_rmse"]
            removed = (
                ""
                if base is None or score is baseline or base <= 0
                else f"{1 - s['advantage_rmse'] / base:+.0%}"
            )
            cells += [
                number(s["spearman"]), number(s["slope"]),
                f"{s['sign_share']:.0%} of {s['sign_policies']}" if s["sign_policies"] else "none clear",
                f"{s['advantage_rmse']:.2f}", removed, f"{s['gains']} ({s['false_gains']})",
            ]  # fmt: skip
            if part == "all":
                cells.insert(1, number(s["pearson"]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The tables: each world's figures against the truth (whole family and the reference's
    neighbourhood), the ensemble's uncertainty, the two halves, then every policy's return and
    advantage in each world."""
    near, truth = report["plan"]["near"], report["has_truth"]
    lines = [
        f"{report['distinct']} distinct policies ({report['policies_played']} played), {report['plan']['sessions']} "
        f"sessions each in every world, the same sessions (seed {report['seed']}); advantages are paired "
        f"differences to {report['reference']}. 'near': the {report['near']} policies whose "
        f"{'true' if truth else 'fitted'} advantage lies within {near:g} per session. 'gains (false)': the "
        f"policies the world says beat {report['reference']} (of them, those that do not in the "
        f"{'truth' if truth else 'other half'})."
        + (
            f" 'fit' is the fit on half the users, fit sample {report['plan']['fit_sample']}."
            if report["plan"].get("fit_sample")
            else ""
        ),
    ]
    if truth:
        lines += ["", *score_rows(report["scores"], report["scores"]["fit"])]
    if (u := report.get("uncertainty")) is not None:
        lines += [
            "",
            f"The fit's own uncertainty: {u['members']} fits on half the users each; a policy's spread is the "
            f"members' standard deviation of its advantage (median {u['spread_median']:.2f}"
            + (
                f", against a median error of the fit {u['error_median']:.2f}); Spearman of the fit's error "
                f"|A_fit - A_true| with the spread: {u['error_vs_spread_spearman']:+.2f}. The pessimistic row is "
                f"the fit minus {u['kappa']:g} x the spread."
                if truth
                else ")."
            ),
        ]
    if (halves := report.get("halves")) is not None:
        lines += [
            "",
            "Two halves of the users (fit samples 1 and 2, one split): each half's model scored against the "
            "other's as if it were the truth" + (", and against the truth itself" if truth else "") + ".",
            "",
            *score_rows(halves["agreement"], None),
            "",
            "Each half's model on the logging policy's sessions of its own half and of the other (click AUC "
            "with its state replayed from the logged slates and clicks; session-length KS of its sessions "
            "against the logged ones).",
            "",
            "| model | sessions | click AUC | session-length KS | KS at the env's cap |",
            "|---|---|---|---|---|",
        ]
        for model, parts in halves["held_out"].items():
            for part, f in parts.items():
                lines.append(
                    f"| {model} | {part} ({f['sessions']:,}) | {f['click_auc']:.4f} | "
                    f"{f['session_length_ks']:.3f} | {f['session_length_ks_at_env_cap']:.3f} |"
                )
    worlds = [w for w in ("fit", "truth", "half 1", "half 2") if w in next(iter(report["policies"].values()))]
    key = "truth" if truth else "fit"
    lines += [
        "",
        "| policy | " + " | ".join(f"return: {w}" for w in worlds) + " | "
        + " | ".join(f"advantage: {w}" + (" [95% CI]" if w == key else "") for w in worlds) + " | spread | near |",
        "|---|" + "---|" * (2 * len(worlds) + 2),
    ]  # fmt: skip
    for name, row in sorted(report["policies"].items(), key=lambda item: -item[1][key]["advantage"]):
        cells = [f"{row[w]['return']:.2f}" for w in worlds]
        for w in worlds:
            cell = f"{row[w]['advantage']:+.2f}"
            if w == key:
                lo, hi = row[w]["ci95"]
                cell += f" [{lo:+.2f}, {hi:+.2f}]"
            cells.append(cell)
        spread = "" if row.get("spread") is None else f"{row['spread']:.2f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread} | {'yes' if row['near'] else ''} |")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Any) -> None:
    """True against fitted advantage of every policy (whole family, and the neighbourhood); without
    a ground truth, the second half's against the first half's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_world, y_world = ("fit", "truth") if report["has_truth"] else ("half 1", "half 2")
    labels = {"fit": "the fitted simulator", "truth": "the true shop", "half 1": "the fit on half 1 of the users",
              "half 2": "the fit on half 2 of the users"}  # fmt: skip
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    rows = report["policies"].values()
    for axis, only_near, title in (
        (axes[0], False, "every policy"),
        (axes[1], True, f"within {report['plan']['near']:g} of the reference"),
    ):
        chosen = [row for row in rows if row["near"] or not only_near]
        x = np.array([row[x_world]["advantage"] for row in chosen])
        y = np.array([row[y_world]["advantage"] for row in chosen])
        err = np.array(
            [[row[y_world]["advantage"] - row[y_world]["ci95"][0], row[y_world]["ci95"][1] - row[y_world]["advantage"]]
             for row in chosen]
        ).T  # fmt: skip
        axis.errorbar(x, y, yerr=err, fmt="o", markersize=3, capsize=2, alpha=0.8)
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        axis.plot([low, high], [low, high], color="grey", linewidth=0.8, label="agree")
        axis.axhline(0, color="black", linewidth=0.5)
        axis.axvline(0, color="black", linewidth=0.5)
        axis.set_xlabel(f"advantage over {report['reference']} in {labels[x_world]}")
        axis.set_title(title, fontsize=9)
    axes[0].set_ylabel(f"advantage in {labels[y_world]} (paired, 95% CI)")
    axes[0].legend(fontsize=8)
    save_png(figure, path)


QUICK = {"sessions": 32, "swaps": False, "halves": False, "ensemble": 0, "tuning_sessions": 16,
         "tuning_generations": 1}  # fmt: skip
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
    write_outputs(args.json, report, markdown, plot)


if __name__ == "__main__":
    main()
