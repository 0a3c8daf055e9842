"""OPE on the shop's logs, against the shop's ground truth (:mod:`agents.ope.truth`)."""

from __future__ import annotations

import numpy as np

from agents.ope.estimators import BANDIT_ESTIMATORS, SESSION_ESTIMATORS, SLATE_ESTIMATORS, estimate_all
from agents.ope.own import target_policy
from agents.ope.reward_models import user_segments
from agents.ope.slates import slate_inputs
from agents.ope.targets import SHOP_POLICIES, PLPolicy, shop_logging_policy, shop_policy
from agents.ope.truth import TRUTH_SESSIONS, ShopTruth
from simulators.core.errors import ConfigError
from simulators.data.logs import LoggedData
from simulators.data.steps import build_steps
from simulators.datasets import resolve_data
from simulators.shop.world import ShopWorld


def shop_target(policy: str, world: ShopWorld, logs: LoggedData, logs_spec: str) -> PLPolicy:
    """A named shop policy (:data:`SHOP_POLICIES`) or a trained agent's run folder, as a target."""
    return target_policy(
        policy, SHOP_POLICIES, lambda name: shop_policy(name, world, logs.popularity(), logs_spec), logs, logs_spec,
        "shop",
    )  # fmt: skip


def evaluate_shop(
    logs_spec: str, policy: str, wanted: list[str] | None, n_bootstrap: int, folds: int, seed: int,
    truth_sessions: int = TRUTH_SESSIONS,
) -> dict[str, object]:  # fmt: skip
    """OPE of a catalog policy (or agent) on shop logs, with the true shop's ground truth from
    ``truth_sessions`` sessions (the independent log and the on-policy run alike)."""
    source = resolve_data(logs_spec)
    logs, world = source.logs, source.truth
    if world is None:
        raise ConfigError(f"--data {logs_spec}: no ground truth is known for these logs (not the shop's)")
    target = shop_target(policy, world, logs, logs_spec)
    steps = build_steps(logs)
    rng = np.random.default_rng(seed)
    slates, sessions = slate_inputs(
        steps, shop_logging_policy(world), target, folds=folds, rng=rng, segment=user_segments(logs.users)
    )
    truth = ShopTruth.build(world, truth_sessions).value(target, rng, np.random.default_rng(seed + 1))
    return {
        "policy": policy,
        "logs": logs_spec,
        "n": len(steps.step),
        "reward": "clicks per step (slate)",
        "estimates": estimate_all(SLATE_ESTIMATORS, slates, wanted, n_bootstrap, seed),
        "ground_truth": truth["slate"],
        "ground_truth_se": truth["slate_se"],
        "truth_sessions": truth_sessions,
        "naive": float(slates.reward.sum(axis=1).mean()),
        "first_slot": {
            "estimates": estimate_all(BANDIT_ESTIMATORS, slates.first_slot(), wanted, n_bootstrap, seed),
            "ground_truth": truth["first_slot"],
        },
        "sessions": {
            "n": int(steps.n_sessions),
            "estimates": estimate_all(SESSION_ESTIMATORS, sessions, wanted, n_bootstrap, seed),
            "ground_truth": truth["session"],
            "ground_truth_se": truth["session_se"],
        },
    }
