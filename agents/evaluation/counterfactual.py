"""Counterfactual fidelity: does a simulator value *other* policies the way the truth does?

A fit scored on the logging policy's own sessions (click AUC, session-length KS) can still be
wrong about what happens when one ranks differently, which is the only question an agent
trained in it asks. Here a family of policies (:func:`policy_family`: static re-rankers, their
perturbations, the discrete strategies, state-dependent switches, trained agents) is played in a
model and in the truth on the same sessions (the same users and session keys), and the model is
scored on the figures of :func:`figures`:

- ``spearman`` / ``pearson``: rank and linear correlation of the policies' mean returns, model
  against truth;
- ``slope``: the least-squares slope of the true advantage over the reference on the model's
  (``A_true ~ a + slope * A_model``; 1 = the model's advantages are right in scale, 0 = they
  carry no information about the truth's, negative = backwards);
- ``sign_share``: among the policies whose true advantage's paired 95% interval excludes 0, the
  share whose advantage in the model has the same sign;
- ``advantage_rmse``: the root mean square of ``A_model - A_true`` over the family (the error
  the mechanism swaps of ``benchmarks.counterfactual`` take apart);
- ``gains`` / ``false_gains``: how many policies the model says beat the reference, and how many
  of those do not in the truth (the deviations an agent or a planner trusting the model would
  chase for nothing).

:func:`ensemble` turns an ensemble of fits (``EnvConfig.fit_sample``) into the model's own
uncertainty: each policy's spread of advantages over the members, their mean, and the
pessimistic advantage ``A_fit - kappa * spread`` (the penalty of MOPO, Yu et al., NeurIPS 2020,
applied to whole policies).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from agents.evaluation.load import load_policy
from agents.evaluation.paired import paired_difference, session_covariates
from agents.evaluation.sessions import EvaluationResult, run_sessions
from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, StaticReranker
from agents.policies.fair import FAIR_NAMES
from agents.policies.protocol import Policy
from agents.policies.switch import ContextSwitch
from envs.config import FEATURES, STRATEGIES, EnvConfig
from envs.world import build_world
from simulators.core.errors import ConfigError

REFERENCE = "tuned-weights"
"""The policy every advantage is measured against (the best static re-ranker)."""
PERTURBATION = 0.5
"""How far each weight of ``tuned-weights`` is moved in its perturbations (weights lie in [-1, 1])."""


def policy_family(
    env: EnvConfig, budget: TuningBudget | None = None, agents: Mapping[str, Path] = {}
) -> dict[str, Policy]:
    """The policies a model is scored on, by name: every named static policy (the re-rankers tuned
    in ``env``'s fitted simulator), ``tuned-weights`` with each feature weight moved by
    ±:data:`PERTURBATION` and with its one-per-topic switch flipped, each discrete strategy played
    every step, state-dependent switches (by the step, by the session's clicks, by the user's
    taste for repeats), and the trained ``agents`` (name -> run folder)."""
    family: dict[str, Policy] = {}
    for name in (*POLICY_NAMES, *RERANKER_NAMES, *FAIR_NAMES):
        if name != "best-fixed":  # it is one of the discrete strategies below
            family[name] = load_policy(name, env=env, budget=budget)
    tuned = load_or_tune(REFERENCE, env, budget)
    weights = np.asarray(tuned.weights, dtype=np.float64)
    for i, feature in enumerate(FEATURES):
        for sign, label in ((1, "+"), (-1, "-")):
            moved = weights.copy()
            moved[i] = np.clip(moved[i] + sign * PERTURBATION, -1, 1)
            family[f"tuned-weights {feature}{label}"] = replace(tuned, weights=tuple(float(w) for w in moved))
    flipped = weights.copy()
    flipped[-1] = -flipped[-1] if flipped[-1] != 0 else 1.0
    diversify = "off" if weights[-1] > 0 else "on"
    family[f"tuned-weights one-per-topic {diversify}"] = replace(
        tuned, weights=tuple(float(w) for w in flipped)
    )
    for index, strategy in enumerate(STRATEGIES):
        family[f"always {strategy}"] = StaticReranker(
            "best-fixed", tuned.item_topic, strategy=index, purchase_weight=env.purchase_weight,
            slate_size=env.slate_size,
        )  # fmt: skip
    family.update(_switches(env, weights))
    for name, path in agents.items():
        if name in family:
            raise ConfigError(f"agent name {name!r} is taken by a policy of the family")
        family[name] = load_policy(str(path), device="cpu", env=env)
    return family


def _switches(env: EnvConfig, weights: np.ndarray) -> dict[str, ContextSwitch]:
    on, off = weights.copy(), weights.copy()
    on[-1], off[-1] = abs(weights[-1]) or 1.0, -(abs(weights[-1]) or 1.0)
    w_on, w_off = tuple(float(w) for w in on), tuple(float(w) for w in off)
    s = {name: (float(i),) for i, name in enumerate(STRATEGIES)}
    cap = env.max_steps

    def last(steps: int) -> float:
        return (cap - steps) / cap

    def switch(
        name: str, mode: str, before: tuple[float, ...], after: tuple[float, ...], feature: str, at: float
    ) -> tuple[str, ContextSwitch]:
        return name, ContextSwitch(name, mode, before, after, feature, at)

    return dict([
        switch("one-per-topic off for the last 3 steps", "weights", w_on, w_off, "step_fraction", last(3)),
        switch("one-per-topic off for the last 6 steps", "weights", w_on, w_off, "step_fraction", last(6)),
        switch("one-per-topic from step 5", "weights", w_off, w_on, "step_fraction", 5 / cap),
        switch("one-per-topic while the user clicks under 0.5 per step", "weights", w_on, w_off, "clicks_per_step", 0.5),
        switch("one-per-topic off once repeats get clicked", "weights", w_on, w_off, "repeat_click_rate", 0.2),
        switch("one_per_topic, greedy_ctr for the last 5 steps", "discrete", s["one_per_topic"], s["greedy_ctr"], "step_fraction", last(5)),
        switch("greedy_ctr, one_per_topic from step 5", "discrete", s["greedy_ctr"], s["one_per_topic"], "step_fraction", 5 / cap),
        switch("fresh_topics while the user clicks under 0.5 per step", "discrete", s["fresh_topics"], s["greedy_ctr"], "clicks_per_step", 0.5),
        switch("one_per_topic for broad users, greedy_ctr for narrow", "discrete", s["greedy_ctr"], s["one_per_topic"], "history_breadth", 0.5),
    ])  # fmt: skip


def value_family(
    family: Mapping[str, Policy], env: EnvConfig, sessions: int, seed: int
) -> dict[str, EvaluationResult]:
    """Each policy of ``family`` played on the same ``sessions`` of ``env`` (its own action mode)."""
    return {
        name: run_sessions(policy, env, sessions, seed, progress=False) for name, policy in family.items()
    }


@dataclass(frozen=True)
class Advantages:
    """Each policy's paired advantage over the reference in one world."""

    values: dict[str, float]
    """Mean return of each policy."""
    advantage: dict[str, float]
    """Mean paired difference to the reference (0 for the reference itself)."""
    ci95: dict[str, tuple[float, float]]
    """The advantage's paired 95% interval."""


def advantages(
    results: Mapping[str, EvaluationResult], env: EnvConfig, reference: str = REFERENCE
) -> Advantages:
    """The paired advantages over ``reference`` of every policy in ``results`` (one world)."""
    if reference not in results:
        raise ConfigError(f"the reference {reference!r} was not played")
    base = results[reference]
    covariates = session_covariates(build_world(env), base.users) if base.users is not None else None
    values, advantage, ci95 = {}, {}, {}
    for name, result in results.items():
        values[name] = float(result.returns.mean())
        if name == reference:
            advantage[name], ci95[name] = 0.0, (0.0, 0.0)
            continue
        diff = paired_difference(result, base, covariates)
        advantage[name], ci95[name] = diff.mean, diff.ci95
    return Advantages(values, advantage, ci95)


def figures(model: Advantages, truth: Advantages, reference: str = REFERENCE) -> dict[str, Any]:
    """How well ``model`` values the family against ``truth`` (module docstring): ``spearman``,
    ``pearson``, ``slope``, ``sign_share`` (with ``sign_policies``, how many policies it is over),
    ``advantage_rmse`` and ``value_rmse``."""
    names = [name for name in truth.values if name in model.values]
    if len(names) < 3:
        raise ConfigError(f"figures need at least 3 policies valued in both worlds, got {len(names)}")
    v_model = np.array([model.values[n] for n in names])
    v_true = np.array([truth.values[n] for n in names])
    others = [n for n in names if n != reference]
    a_model = np.array([model.advantage[n] for n in others])
    a_true = np.array([truth.advantage[n] for n in others])
    clear = [i for i, n in enumerate(others) if truth.ci95[n][0] > 0 or truth.ci95[n][1] < 0]
    agree = [np.sign(a_model[i]) == np.sign(a_true[i]) for i in clear]
    slope = float(np.polyfit(a_model, a_true, 1)[0]) if np.ptp(a_model) > 0 else float("nan")
    gains = [i for i in range(len(others)) if a_model[i] > 0]
    return {
        "policies": len(names),
        "spearman": _correlation(spearmanr, v_model, v_true),
        "pearson": _correlation(pearsonr, v_model, v_true),
        "slope": slope,
        "sign_share": float(np.mean(agree)) if agree else float("nan"),
        "sign_policies": len(clear),
        "advantage_rmse": float(np.sqrt(np.mean((a_model - a_true) ** 2))),
        "value_rmse": float(np.sqrt(np.mean((v_model - v_true) ** 2))),
        "gains": len(gains),
        "false_gains": sum(1 for i in gains if a_true[i] <= 0),
    }


@dataclass(frozen=True)
class Ensemble:
    """What an ensemble of fits says about a family (:func:`ensemble`)."""

    spread: dict[str, float]
    """Each policy's standard deviation of advantages over the members."""
    mean: Advantages
    """The members' mean values and advantages (intervals: the fit's)."""
    pessimistic: Advantages
    """The fit's values and advantages minus ``kappa`` times their spread over the members."""


def ensemble(fit: Advantages, members: list[Advantages], kappa: float = 1.0) -> Ensemble:
    """The spread, mean and pessimistic view of ``members`` (fits of half the users each) around
    ``fit`` (the fit on every user)."""
    if len(members) < 2:
        raise ConfigError(f"an ensemble needs at least 2 members, got {len(members)}")
    names = list(fit.values)
    adv = {n: np.array([m.advantage[n] for m in members]) for n in names}
    val = {n: np.array([m.values[n] for m in members]) for n in names}
    spread = {n: float(adv[n].std(ddof=1)) for n in names}
    value_spread = {n: float(val[n].std(ddof=1)) for n in names}
    mean = Advantages(
        {n: float(val[n].mean()) for n in names}, {n: float(adv[n].mean()) for n in names}, fit.ci95
    )
    pessimistic = Advantages(
        {n: fit.values[n] - kappa * value_spread[n] for n in names},
        {n: fit.advantage[n] - kappa * spread[n] for n in names},
        fit.ci95,
    )
    return Ensemble(spread, mean, pessimistic)


def _correlation(test: Any, x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(test(x, y)[0])
