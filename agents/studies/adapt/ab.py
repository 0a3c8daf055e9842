"""The weekly A/B test of continuous optimisation: each policy on the same true-shop sessions
(paired), and the pooling of several seeds' loops with Student-t CIs across seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.load import policy_env_options
from agents.evaluation.sessions import run_sessions
from agents.policies.agent import TrainedAgent
from agents.studies.adapt.config import AB_SEED, AdaptConfig
from agents.studies.adapt.report import recovery
from agents.studies.backend import Backend
from envs.config import EnvConfig
from simulators.core.metrics import mean_ci95, seed_ci95

PAIRS = (("adapted", "frozen"), ("deployed", "frozen"), ("deployed", "incumbent"))
"""The paired differences an A/B reports (``a_minus_b``): the fine-tuned candidate and the policy
the guard deploys next week against the week-0 one, and the latter against the one it replaces."""


def play_arm(
    policy: Any, config: AdaptConfig, week: int, day: float, seed: int | None = None, sessions: int | None = None
) -> tuple[np.ndarray, float | None]:  # fmt: skip
    """One A/B arm: ``policy`` (a run folder, or a re-ranker) on week ``week``'s true-shop sessions
    of ``day`` (``sessions`` of them from ``seed``; by default the week's A/B users): each
    session's engagement, and the protected exposure share."""
    if isinstance(policy, Path):
        policy = TrainedAgent.load(policy, device="cpu")
    env = EnvConfig(**{**policy_env_options(policy), "fairness_lambda": 0.0, "user_fairness_lambda": 0.0,
                       "data": config.data, "simulator": "true", "true_day": day})  # fmt: skip
    seed = AB_SEED + week if seed is None else seed
    result = run_sessions(policy, env, sessions or config.eval_sessions, seed, progress=False)
    return result.returns, result.fairness.get("protected_exposure_share")


def play_distinct(
    policies: dict[str, Any], config: AdaptConfig, week: int, day: float, backend: Backend | None = None,
    seed: int | None = None, sessions: int | None = None,
) -> dict[str, tuple[np.ndarray, float | None]]:  # fmt: skip
    """:func:`play_arm` for each name, each distinct policy played once as a trial of
    ``backend`` (names for the same run folder share its arm)."""
    key = {name: policy.resolve() if isinstance(policy, Path) else name for name, policy in policies.items()}
    distinct: dict[Any, Any] = {}
    for name, policy in policies.items():
        distinct.setdefault(key[name], policy)
    played = (backend or Backend()).map(
        play_arm,
        [(policy, config, week, day, seed, sessions) for policy in distinct.values()],
        first_here=False,
    )
    arms = dict(zip(distinct, played, strict=True))
    return {name: arms[key[name]] for name in policies}


def ab_test(
    policies: dict[str, Any], config: AdaptConfig, week: int, day: float, backend: Backend | None = None
) -> dict[str, Any]:
    """Each policy (a run folder or a re-ranker) on the same true-shop sessions of ``day``
    (:func:`play_distinct`): engagement with CIs, and the paired differences of :data:`PAIRS`."""
    played = play_distinct(policies, config, week, day, backend)
    results: dict[str, Any] = {}
    for name, (returns, protected) in played.items():
        mean, low, high = mean_ci95(returns)
        results[name] = {"engagement": mean, "ci95": [low, high], "protected_exposure_share": protected}
    for a, b in PAIRS:
        if a in played and b in played:
            mean, low, high = mean_ci95(played[a][0] - played[b][0])
            results[f"{a}_minus_{b}"] = {"mean": mean, "ci95": [low, high]}
    return results


def pool(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per week, each arm's engagement averaged over the seeds, and the paired adapted - frozen,
    both with Student-t 95% CIs across seeds; the recovery of the mean curves."""
    weeks = []
    for rows in zip(*(r["weeks"] for r in reports), strict=True):
        ab: dict[str, Any] = {}
        arms = [
            "frozen",
            "adapted",
            "deployed",
            *sorted(n for n in rows[0]["ab"] if n.startswith("planted-")),
            "static",
        ]
        for name in arms:
            if name in rows[0]["ab"]:
                values = np.array([row["ab"][name]["engagement"] for row in rows])
                mean, low, high = seed_ci95(values)
                if np.all(values == values[0]):  # one policy for every seed (the static one): its users' CI
                    low, high = rows[0]["ab"][name]["ci95"]
                ab[name] = {"engagement": mean, "ci95": [low, high], "by_seed": values.tolist()}
        for name in (f"{a}_minus_{b}" for a, b in PAIRS):
            if name in rows[0]["ab"]:
                diffs = np.array([row["ab"][name]["mean"] for row in rows])
                mean, low, high = seed_ci95(diffs)
                if np.all(diffs == diffs[0]):  # the same two policies for every seed: their users' CI
                    low, high = rows[0]["ab"][name]["ci95"]
                ab[name] = {"mean": mean, "ci95": [low, high], "by_seed": diffs.tolist()}
        pooled_week: dict[str, Any] = {"week": rows[0]["week"], "day": rows[0]["day"], "ab": ab}
        if "guard" in rows[0]:
            pooled_week["guard"] = {
                "shipped": [row["guard"]["shipped"] for row in rows],
                "ship_share": float(np.mean([row["guard"]["decision"] == "ship" for row in rows])),
                "sessions": [row["guard"]["sessions"] for row in rows],
            }
        weeks.append(pooled_week)
    return {
        "weeks": weeks,
        "recovery": recovery(weeks),
        "seeds": len(reports),
        "guard": guard_summary(reports),
    }


def guard_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The guard's record over every week of every seed: its decisions and ships, each ship with
    the A/B's paired gain of the shipped policy over the one it replaced (other users than the
    canary's), the ships the A/B does not find better (mean <= 0) or finds worse (CI below 0),
    and the weeks whose deployed policy the A/B finds worse than the frozen one (CI below 0)."""
    ships, decisions, worse_weeks = [], 0, []
    for seed, report in enumerate(reports):
        for week in report["weeks"][1:]:
            guard, ab = week.get("guard"), week["ab"]
            if guard is None:
                continue
            decisions += 1
            if guard["decision"] == "ship":
                gain = ab.get("deployed_minus_incumbent", {"mean": None, "ci95": [None, None]})
                ships.append(
                    {"seed": seed, "week": week["week"], "shipped": guard["shipped"], "ab_gain": gain}
                )
            if ab["deployed_minus_frozen"]["ci95"][1] < 0:
                worse_weeks.append({"seed": seed, "week": week["week"], **ab["deployed_minus_frozen"]})
    measured = [s["ab_gain"] for s in ships if s["ab_gain"]["mean"] is not None]
    return {
        "alpha": reports[0]["config"].get("guard_alpha") if reports else None,
        "decisions": decisions,
        "ships": ships,
        "ships_not_better_in_ab": sum(g["mean"] <= 0 for g in measured),
        "ships_worse_in_ab": sum(g["ci95"][1] < 0 for g in measured),
        "weeks_deployed_worse_than_frozen": worse_weeks,
    }
