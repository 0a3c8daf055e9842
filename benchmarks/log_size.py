"""Does a fit on more logs plan better? ``python -m benchmarks.log_size --json FILE``

The fitted simulator reads a click's net effect on its topic's click logit (drift minus boredom)
as about twice the truth's, and ``planner:fitted`` earns little of what ``planner:true`` earns in
the true shop (``benchmarks.identification`` traces the excess to the response network's error
per user and topic, which the logs' clicks barely show: about one click per user and topic).
More sessions per user give the fit more to tell a user's interests from what a click does. This
benchmark measures how far that goes.

For each shop size (``users[i]`` users and ``sessions[i]`` logged sessions; every other setting,
the seed included, from ``--data``'s shop, so the truth's users are the same wherever ``users``
is) it fits the logs (the production fit, cached like any other) and reports:

- the fit's net click effect 1, 5 and 10 steps after a click, beside the truth's, and its
  interests' fitted spread;
- the held-out click AUC, beside the truth's on the same slates;
- in the true shop, on the same sessions (seed 70000; paired, 95% CI, CUPED on the session's
  user covariates): ``planner:fitted`` and ``planner:true`` minus ``tuned-weights`` (the planners'
  base, tuned in each size's fitted simulator), and ``planner:fitted``'s share of
  ``planner:true``'s gain where that gain's interval lies above 0.

Writes the JSON, a markdown table (``FILE.md``) and the two planners' gains against sessions per
user (``FILE.png``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agents.evaluation.load import load_policy, make_planner
from agents.evaluation.paired import paired_cell, paired_difference, session_covariates, share_of_ceiling
from agents.evaluation.sessions import run_sessions
from agents.policies.planner import PlannerConfig
from benchmarks.identification import LAGS, net_click_effect
from benchmarks.plans import run_in_process
from envs.config import EnvConfig
from envs.world import build_world
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png
from simulators.datasets import resolve_data
from simulators.datasets.shop import shop_config_of, shop_folder
from simulators.dynamics import DynamicsParams
from simulators.fit.cache import load_or_fit
from simulators.shop.config import ShopConfig

EVAL_SEED = 70_000
"""Seed of the evaluation sessions (the headroom and distill benchmarks')."""


@dataclass(frozen=True)
class LogSizePlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """The shop whose settings every size keeps (a shop's name or folder)."""
    users: tuple[int, ...] = (10_000, 10_000, 2_000, 2_000, 2_000)
    """Users of each size (the i-th goes with the i-th of ``sessions``): the embedded shop's and a
    fifth of them."""
    sessions: tuple[int, ...] = (20_000, 100_000, 4_000, 20_000, 100_000)
    """Logged sessions of each size."""
    eval_sessions: int = 500
    """Evaluation sessions per policy and size (the same sessions for each policy)."""
    rollouts: int = 64
    """The planners' futures per candidate action."""

    def __post_init__(self) -> None:
        check_at_least_one(self, ("eval_sessions", "rollouts"), "--")
        if not self.users or len(self.users) != len(self.sessions):
            raise ConfigError(
                f"--users and --sessions: one of each per size, got {len(self.users)} and {len(self.sessions)}"
            )
        if min(self.users) < 1 or min(self.sessions) < 1:
            raise ConfigError(
                f"--users and --sessions must be >= 1, got {list(self.users)}, {list(self.sessions)}"
            )
        self.base()

    def base(self) -> ShopConfig:
        """The shop whose settings every size keeps (one clear error for logs that are not a shop's)."""
        source = resolve_data(self.data)
        if source.truth is None:
            raise ConfigError(
                f"--data {self.data!r}: the benchmark needs a shop's logs (with their ground truth)"
            )
        return shop_config_of(source.logs)


def net_effects(params: DynamicsParams) -> list[float]:
    """A click's net effect at each of :data:`~benchmarks.identification.LAGS`."""
    return [net_click_effect(params, lag) for lag in LAGS]


def measure_size(config: ShopConfig, plan: LogSizePlan) -> dict[str, Any]:
    """One size: the fit's figures and the planners' paired gains in the true shop."""
    data = str(shop_folder(config))
    source = resolve_data(data)
    started = time.perf_counter()
    _, report = load_or_fit(source.logs)
    fit_seconds = time.perf_counter() - started
    env = EnvConfig(data=data, simulator="true")
    planner_config = PlannerConfig(rollouts=plan.rollouts)
    reference = run_sessions(
        load_policy("tuned-weights", env=env), env, plan.eval_sessions, EVAL_SEED, progress=False
    )
    covariates = session_covariates(build_world(env), reference.users)  # type: ignore[arg-type]
    gains: dict[str, Any] = {}
    for model in ("fitted", "true"):
        planner = make_planner(f"planner:{model}", env, planner_config)
        played = run_sessions(planner, env, plan.eval_sessions, EVAL_SEED, progress=False)
        gains[f"planner:{model}"] = paired_difference(played, reference, covariates).as_json() | {
            "return_mean": float(played.returns.mean()),
            "deviation_rate": planner.report().get("deviation_rate"),
        }
        print(f"{config.n_users} users, {config.n_sessions} sessions: planner:{model} "
              f"{gains[f'planner:{model}']['mean']:+.2f}", flush=True)  # fmt: skip
    ceiling = gains["planner:true"]
    truth = source.truth
    assert truth is not None  # (the plan checked the shop)
    return {
        "users": config.n_users,
        "sessions": config.n_sessions,
        "sessions_per_user": round(config.n_sessions / config.n_users, 2),
        "net_click_effect": net_effects(DynamicsParams(**report["dynamics"])),
        "net_click_effect_truth": net_effects(truth.dynamics),
        "interest_sd": report["user_traits"].get("interest_prior_sd"),
        "click_auc": round(float(report["click_auc"]), 4),
        "click_auc_ground_truth": round(float(report["click_auc_ground_truth"]), 4),
        "tuned_weights_return": float(reference.returns.mean()),
        "minus_tuned_weights": gains,
        "share_of_ceiling": share_of_ceiling(gains["planner:fitted"], ceiling),
        "fit_seconds": round(fit_seconds, 1),
    }


def measure(plan: LogSizePlan) -> dict[str, Any]:
    """Every size of the plan (module docstring)."""
    base = plan.base()
    sizes = [
        measure_size(replace(base, n_users=users, n_sessions=sessions), plan)
        for users, sessions in zip(plan.users, plan.sessions, strict=True)
    ]
    return {"eval_seed": EVAL_SEED, "sizes": sizes}


def markdown(report: dict[str, Any]) -> str:
    """One table, a row per size."""

    def effects(values: list[float]) -> str:
        return " / ".join(f"{v:.3f}" for v in values)

    lags = " / ".join(str(lag) for lag in LAGS)
    lines = [
        f"Played in the true shop ({report['plan']['eval_sessions']} sessions per policy, seed "
        f"{report['eval_seed']}); paired differences to tuned-weights, 95% CI. The net click effect is "
        f"the fit's (the truth's) at {lags} steps. Returns compare within a row, not between rows: each "
        "size tunes its own tuned-weights (in its fitted simulator, with its own CTR model) and its users' "
        "histories come from its own logs.",
        "",
        "| users | sessions | per user | net click effect | interests' spread | click AUC (truth's) | "
        "tuned-weights' return | planner:fitted | planner:true | share |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        gains = size["minus_tuned_weights"]
        share = "" if size["share_of_ceiling"] is None else f"{size['share_of_ceiling']:.0%}"
        lines.append(
            f"| {size['users']:,} | {size['sessions']:,} | {size['sessions_per_user']:g} | "
            f"{effects(size['net_click_effect'])} ({effects(size['net_click_effect_truth'])}) | "
            f"{size['interest_sd']} | {size['click_auc']:.4f} ({size['click_auc_ground_truth']:.4f}) | "
            f"{size['tuned_weights_return']:.2f} | {paired_cell(gains['planner:fitted'])} | {paired_cell(gains['planner:true'])} | {share} |"
        )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Any) -> None:
    """Each planner's paired gain over tuned-weights against sessions per user, with its 95% interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.2))
    sizes = report["sizes"]
    x = np.arange(len(sizes))
    for offset, model in ((-0.08, "planner:fitted"), (0.08, "planner:true")):
        gains = [size["minus_tuned_weights"][model] for size in sizes]
        means = np.array([g["mean"] for g in gains])
        low = means - np.array([g["ci95"][0] for g in gains])
        high = np.array([g["ci95"][1] for g in gains]) - means
        axis.errorbar(x + offset, means, yerr=[low, high], fmt="o", capsize=4, label=model)
    axis.axhline(0.0, color="black", linewidth=0.8)
    axis.set_xticks(x, [f"{s['users']:,} users\n{s['sessions']:,} sessions" for s in sizes], fontsize=7)
    axis.set_ylabel("minus tuned-weights, per session (paired, 95% CI)", fontsize=8)
    axis.set_title("played in the true shop", fontsize=9)
    axis.legend(fontsize=8)
    save_png(figure, path)


QUICK = {"users": (10_000,), "sessions": (20_000,), "eval_sessions": 64, "rollouts": 16}
"""The plan of ``--quick`` (the embedded shop only, a few minutes)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write JSON, markdown and PNG."""
    run_in_process(
        "python -m benchmarks.log_size", __doc__, LogSizePlan, QUICK, argv, measure, markdown, plot
    )


if __name__ == "__main__":
    main()
