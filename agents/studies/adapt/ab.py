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


def play_arm(policy: Any, config: AdaptConfig, week: int, day: float) -> tuple[np.ndarray, float | None]:
    """One A/B arm: ``policy`` (a run folder, or a re-ranker) on week ``week``'s true-shop sessions
    of ``day``: each session's engagement, and the protected exposure share."""
    if isinstance(policy, Path):
        policy = TrainedAgent.load(policy, device="cpu")
    env = EnvConfig(**{**policy_env_options(policy), "fairness_lambda": 0.0, "user_fairness_lambda": 0.0,
                       "data": config.data, "simulator": "true", "true_day": day})  # fmt: skip
    result = run_sessions(policy, env, config.eval_sessions, AB_SEED + week, progress=False)
    return result.returns, result.fairness.get("protected_exposure_share")


def ab_test(
    policies: dict[str, Any], config: AdaptConfig, week: int, day: float, backend: Backend | None = None
) -> dict[str, Any]:
    """Each policy (a run folder or a re-ranker) on the same true-shop sessions of ``day``, each arm
    a trial of ``backend``: engagement with CIs, and the paired adapted - frozen."""
    names = list(policies)
    played = (backend or Backend()).map(
        play_arm, [(policies[name], config, week, day) for name in names], first_here=False
    )
    results: dict[str, Any] = {}
    engagement = {name: returns for name, (returns, _) in zip(names, played, strict=True)}
    for name, (returns, protected) in zip(names, played, strict=True):
        mean, low, high = mean_ci95(returns)
        results[name] = {"engagement": mean, "ci95": [low, high], "protected_exposure_share": protected}
    if "adapted" in engagement:
        mean, low, high = mean_ci95(engagement["adapted"] - engagement["frozen"])
        results["adapted_minus_frozen"] = {"mean": mean, "ci95": [low, high]}
    return results


def pool(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per week, each arm's engagement averaged over the seeds, and the paired adapted - frozen,
    both with Student-t 95% CIs across seeds; the recovery of the mean curves."""
    weeks = []
    for rows in zip(*(r["weeks"] for r in reports), strict=True):
        ab: dict[str, Any] = {}
        for name in ("frozen", "adapted", "static"):
            if name in rows[0]["ab"]:
                values = np.array([row["ab"][name]["engagement"] for row in rows])
                mean, low, high = seed_ci95(values)
                if np.all(values == values[0]):  # one policy for every seed (the static one): its users' CI
                    low, high = rows[0]["ab"][name]["ci95"]
                ab[name] = {"engagement": mean, "ci95": [low, high], "by_seed": values.tolist()}
        if "adapted" in ab:
            diffs = np.array([row["ab"]["adapted_minus_frozen"]["mean"] for row in rows])
            mean, low, high = seed_ci95(diffs)
            ab["adapted_minus_frozen"] = {"mean": mean, "ci95": [low, high], "by_seed": diffs.tolist()}
        weeks.append({"week": rows[0]["week"], "day": rows[0]["day"], "ab": ab})
    return {"weeks": weeks, "recovery": recovery(weeks), "seeds": len(reports)}
