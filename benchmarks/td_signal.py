"""Why DQN unlearns: the signal its targets carry against their noise. ``python -m benchmarks.td_signal --json FILE``

DQN in ``discrete`` mode must rank eight strategies per state from n-step TD targets
(``sum_{i<n} gamma^i r_{t+i} + gamma^n max_a Q(s_{t+n}, a)``; RecGym's ``n_steps`` 10, ``gamma``
0.95). On states the best fixed strategy (``best-fixed``) visits in the fitted simulator, this
benchmark measures both sides of that ranking:

- **signal**: what choosing well is worth there: ``planner:fitted`` over ``best-fixed`` with the eight
  strategies as its candidates estimates each one's gain in return over ``best-fixed``'s (``rollouts``
  futures each, under common random numbers); per state, the gain of its best strategy and that
  gain less the second best's (what a Q-head must order), the two picked on one set of futures and
  measured on another (the largest of eight estimates overstates its own gain);
- **noise**: the spread of the target's sampled part at the same state: each state copied into
  ``replicas`` independent futures (:meth:`envs.core.SessionCore.clone_into`, fresh dice) played
  ``n_steps`` by ``best-fixed``; per state the standard deviation of their discounted sums (the
  noise a replay sample of that state and action brings), beside the spread of the per-state means
  over states (variance a network can learn, not noise).

From these: the samples of one strategy at one state that a mean needs to tell the mean best
gain from 0 at two standard errors, ``(2 * median noise / mean gain)^2`` (a comparison of two strategies needs
twice that). A 30,000-step run sees each strategy about ``30,000 / 8`` times over all states.
Writes the JSON, a markdown table (``FILE.md``) and both distributions (``FILE.png``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.evaluation.load import make_planner
from agents.evaluation.tuning import load_or_tune
from agents.policies.planner import PlannerConfig
from agents.policies.protocol import Policy
from benchmarks.plans import run_in_process
from envs.config import EnvConfig
from envs.core import SessionCore
from envs.factory import make_vector_env
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError, check_at_least_one
from simulators.core.plots import save_png

SEED = 80_000
"""Seed of the sessions whose states are measured (no other benchmark's)."""


@dataclass(frozen=True)
class SignalPlan:
    """How much to run (the benchmark's flags)."""

    data: str = "shop"
    """Logs the simulator is fitted to (the fitted simulator is where DQN trains)."""
    sessions: int = 64
    """Parallel sessions whose states are measured."""
    decisions: int = 8
    """Steps of those sessions measured (states: about sessions * decisions)."""
    replicas: int = 64
    """Independent futures per state for the noise."""
    rollouts: int = 64
    """The planner's futures per strategy for the signal."""
    n_steps: int = 10
    """The TD target's horizon (DQN's ``n_steps``)."""
    gamma: float = 0.95
    """Discount (the agents')."""

    def __post_init__(self) -> None:
        check_at_least_one(self, ("sessions", "decisions", "rollouts", "n_steps"), "--")
        if self.replicas < 2:
            raise ConfigError(
                f"--replicas must be at least 2 (a spread needs two futures), got {self.replicas}"
            )
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must lie in (0, 1], got {self.gamma}")


def noise_at(
    core: SessionCore, base: Policy, plan: SignalPlan, keys: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """``(B, R)`` the discounted ``n_steps`` sums of rewards of ``R = len(keys) // B`` futures of
    each of ``core``'s sessions, ``base`` playing (a future that ends stops adding); future
    ``b * R + r`` draws its dice from ``keys[b * R + r]`` (fresh keys: independent futures)."""
    batch, replicas = core.batch, len(keys) // core.batch
    copies = SessionCore(core.config, core.world, batch * replicas)
    core.clone_into(copies, np.repeat(np.arange(batch), replicas), keys)
    total, alive, discount = np.zeros(batch * replicas), np.ones(batch * replicas, dtype=bool), 1.0
    for _ in range(plan.n_steps):
        reward, terminated, truncated, _ = copies.step(base.act(copies.observe_ids(), rng))
        total += alive * discount * reward
        alive &= ~(terminated | truncated)
        discount *= plan.gamma
    return total.reshape(batch, replicas)


def measure(plan: SignalPlan) -> dict[str, Any]:
    """Signal and noise on the states ``best-fixed`` visits (module docstring)."""
    env = EnvConfig(data=plan.data, simulator="fitted", action_mode="discrete")
    base = load_or_tune("best-fixed", env)
    planner = make_planner(
        "planner:fitted",
        env,
        PlannerConfig(base="best-fixed", candidates=("strategies",), rollouts=plan.rollouts),
    )
    venv = make_vector_env(env, plan.sessions)
    planner.bind(venv.core)
    rng = np.random.default_rng(SEED)
    venv.reset(seed=SEED)
    best, margin, spread, means = [], [], [], []
    for _ in range(plan.decisions):
        core = venv.core
        keys = np.floor(rng.random(plan.sessions * plan.replicas) * 2.0**53).astype(np.uint64)
        futures = noise_at(core, base, plan, keys, rng)
        spread.append(futures.std(axis=1, ddof=1))
        means.append(futures.mean(axis=1))
        picked = []  # the strategies ranked on one set of futures, their gains read on another
        for _ in range(2):
            planner.act(core.observe_ids(), rng)
            assert planner.last_gains is not None
            picked.append(planner.last_gains[:, 1:])  # each strategy's gain over best-fixed
        order = np.argsort(picked[0], axis=1)
        rows = np.arange(core.batch)
        best.append(picked[1][rows, order[:, -1]])
        margin.append(picked[1][rows, order[:, -1]] - picked[1][rows, order[:, -2]])
        venv.step(np.asarray(base.act(core.observe_ids(), rng)))
    gain, second, noise, state_mean = (np.concatenate(x) for x in (best, margin, spread, means))
    typical = float(np.median(noise))
    mean_gain = float(gain.mean())

    def summary(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean()), "median": float(np.median(x)), "p90": float(np.quantile(x, 0.9))}

    return {
        "states": len(gain),
        "signal": {"best_gain": summary(gain), "best_minus_second": summary(second)},
        "noise": {"within_state_sd": summary(noise), "between_state_sd": float(state_mean.std(ddof=1))},
        "samples_to_resolve_mean_gain": (2.0 * typical / mean_gain) ** 2 if mean_gain > 0 else None,
        "signal_to_noise": mean_gain / typical if typical > 0 else None,
        "distributions": {"best_gain": gain.round(4).tolist(), "within_state_sd": noise.round(4).tolist()},
    }


def markdown(report: dict[str, Any]) -> str:
    """The signal and the noise, per state."""
    signal, noise = report["signal"], report["noise"]
    lines = [
        f"States best-fixed visits in the fitted simulator: {report['states']} "
        f"({report['plan']['n_steps']}-step targets, gamma {report['plan']['gamma']}).",
        "",
        "| per state | mean | median | p90 |",
        "|---|---|---|---|",
    ]
    named = (("signal: best strategy's gain over best-fixed", signal["best_gain"]),
             ("signal: best minus second best", signal["best_minus_second"]),
             ("noise: sd of the target's sampled part", noise["within_state_sd"]))  # fmt: skip
    lines += [
        f"| {name} | {row['mean']:.3f} | {row['median']:.3f} | {row['p90']:.3f} |" for name, row in named
    ]
    resolve = report["samples_to_resolve_mean_gain"]
    lines += [
        "",
        f"Spread of the states' mean targets (learnable, not noise): {noise['between_state_sd']:.2f}.",
        f"Mean signal / median noise: {_figure(report['signal_to_noise'], '.3f')}; samples of one strategy at "
        f"one state to tell the mean gain from 0 at two standard errors: "
        + (f"{resolve:,.0f}." if resolve is not None else "none (no gain)."),
    ]
    return "\n".join(lines)


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def plot(report: dict[str, Any], path: Path) -> None:
    """The per-state gain of the best strategy beside the per-state noise of the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    shown = report["distributions"]
    values = np.concatenate([shown["best_gain"], shown["within_state_sd"], [0.0]])
    bins = np.linspace(
        values.min(), values.max(), 60
    ).tolist()  # (a gain measured on other futures can be < 0)
    axis.hist(shown["best_gain"], bins=bins, alpha=0.6, label="best strategy's gain over best-fixed")
    axis.hist(shown["within_state_sd"], bins=bins, alpha=0.6, label="sd of the TD target's sampled part")
    axis.set_xlabel("return per session, per state")
    axis.set_ylabel("states")
    axis.legend(fontsize=8)
    save_png(figure, path)


QUICK = {"sessions": 16, "decisions": 2, "replicas": 8, "rollouts": 4}
"""The plan of ``--quick`` (a minute)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write JSON, markdown and PNG."""
    run_in_process(
        "python -m benchmarks.td_signal", __doc__, SignalPlan, QUICK, argv, measure, markdown, plot
    )


if __name__ == "__main__":
    main()
