"""OPE on the shop's logs, against the shop's ground truth (:mod:`agents.ope.truth`).

The estimators run on an independent log of the same shop and logger (:data:`OPE_LOG_SEED`,
as many sessions as the shop's logs), not on the logs themselves: the CTR model, the
popularity counts and every trained agent learned from those, and estimating a policy on the
logs it learned from is biased upward (it has seen which of their items were clicked).
Measured on the default shop, first slot, ``ctr`` target: IPS 0.742 on the shop's own logs
against 0.644 +- 0.015 (sd over ten independent logs) and a truth of 0.645.
"""

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

OPE_LOG_SEED = 20_011
"""``log_seed`` of the independent log the estimators run on (not :data:`~agents.ope.truth.TRUTH_LOG_SEED`)."""


def shop_target(policy: str, world: ShopWorld, logs: LoggedData, logs_spec: str) -> PLPolicy:
    """A named shop policy (:data:`SHOP_POLICIES`) or a run folder (trained agent, distilled planner), as a target."""
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
    n_sessions = int(logs.interactions["session_id"].nunique())
    steps = build_steps(world.simulate_logs(n_sessions, log_seed=OPE_LOG_SEED))
    rng = np.random.default_rng(seed)
    slates, sessions = slate_inputs(
        steps, shop_logging_policy(world), target, folds=folds, rng=rng, segment=user_segments(logs.users)
    )
    truth = ShopTruth.build(world, truth_sessions).value(target, rng, np.random.default_rng(seed + 1))
    return {
        "policy": policy,
        "logs": logs_spec,
        "evaluated_on": (
            f"an independent log of the same shop and logger ({n_sessions:,} sessions, log_seed {OPE_LOG_SEED}): "
            "the targets learned from the shop's own logs, and estimates on a policy's training logs are biased"
        ),
        "n": len(steps.step),
        "reward": "clicks per step (slate)",
        **estimate_all(SLATE_ESTIMATORS, slates, wanted, n_bootstrap, seed),
        "ground_truth": truth["slate"],
        "ground_truth_se": truth["slate_se"],
        "truth_sessions": truth_sessions,
        "naive": float(slates.reward.sum(axis=1).mean()),
        "first_slot": {
            **estimate_all(BANDIT_ESTIMATORS, slates.first_slot(), wanted, n_bootstrap, seed),
            "ground_truth": truth["first_slot"],
        },
        "sessions": {
            "n": int(steps.n_sessions),
            **estimate_all(SESSION_ESTIMATORS, sessions, wanted, n_bootstrap, seed),
            "ground_truth": truth["session"],
            "ground_truth_se": truth["session_se"],
        },
    }
