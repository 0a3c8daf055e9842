"""The options of a continuous-optimisation run (``python -m agents.adapt``'s flags)."""

from __future__ import annotations

from dataclasses import dataclass

from agents.training.config import ALGORITHM_KWARGS
from simulators.core.errors import ConfigError, check_seed
from simulators.datasets import resolve_data

LIMITS = {"weeks": 520, "seeds": 100, "initial_timesteps": 10**9, "finetune_timesteps": 10**9,
          "sessions_per_week": 10**6, "eval_sessions": 10**6, "window_weeks": 520, "n_envs": 65_536,
          "tuning_sessions": 10**6, "tuning_generations": 1_000, "train_eval_episodes": 10**6}  # fmt: skip
"""The largest value of each count (what fits a machine's memory and time)."""
AB_SEED = 50_000
"""Seed of the A/B users of week ``w`` is ``AB_SEED + w`` (no training or tuning uses them)."""


@dataclass(frozen=True)
class AdaptConfig:
    """One continuous-optimisation run (the flags of ``python -m agents.adapt``)."""

    out: str
    """Folder of the run (its weeks, table, JSON and plot)."""
    env: str = "ecommerce-v0"
    """Registered env id."""
    data: str = "shop:drift"
    """The shop whose logs start it (``shop:drift``: tastes move; ``shop``: they do not)."""
    weeks: int = 4
    """Simulated weeks after the logs."""
    algorithm: str = "ppo"
    """SB3 algorithm (ppo, a2c; dqn acts by discrete strategies)."""
    initial_timesteps: int = 30_000
    """Training steps of the week-0 policy."""
    finetune_timesteps: int = 10_000
    """Fine-tuning steps per week in the refitted simulator."""
    sessions_per_week: int = 2_000
    """Sessions the deployed policy serves each week (its log)."""
    eval_sessions: int = 1_000
    """Sessions per policy in each week's A/B."""
    temperature: float = 1.0
    """Sampling temperature of the deployed policy (its exploration, so the log has support)."""
    window_weeks: int = 2
    """Weeks of served logs each refit reads (the most recent)."""
    n_envs: int = 16
    """Parallel users while training and fine-tuning."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (week 0)."""
    tuning_generations: int = 5
    """CEM generations of tuned-weights."""
    train_eval_episodes: int = 500
    """Sessions per policy in week 0's training comparison."""
    seed: int = 0
    """Seed of training and deployments (the A/B users of a week are the same for every seed)."""
    seeds: int = 1
    """Independent replicates of the loop (seeds ``seed``, ``seed + 1``, ...), each a trial of
    ``--backend`` in ``DIR/seed-S/``; the report pools them (Student-t CIs across seeds)."""

    def __post_init__(self) -> None:
        check_seed("--seed", self.seed)
        for name in ("weeks", "seeds", "initial_timesteps", "finetune_timesteps", "sessions_per_week", "eval_sessions",
                     "window_weeks", "n_envs", "tuning_sessions", "tuning_generations", "train_eval_episodes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name, most in LIMITS.items():
            if getattr(self, name) > most:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at most {most:,}, got {getattr(self, name):,}"
                )
        if self.algorithm not in ("ppo", "a2c", "dqn"):
            raise ConfigError(f"--algorithm must be ppo, a2c or dqn, got {self.algorithm!r}")
        if not (self.temperature == 0 or 0.05 <= self.temperature <= 100):
            raise ConfigError(f"--temperature must be 0 or lie in [0.05, 100], got {self.temperature}")
        if self.seeds > 1:
            check_seed("--seed + --seeds - 1 (the last loop's seed)", self.seed + self.seeds - 1)
        rollout = ALGORITHM_KWARGS[self.algorithm].get("n_steps", 0) * self.n_envs
        if self.initial_timesteps < rollout:  # checked here, not after the first minutes of work
            raise ConfigError(
                f"--initial-timesteps ({self.initial_timesteps}) is less than one rollout of {self.algorithm} "
                f"(n_steps {rollout // self.n_envs} x --n-envs {self.n_envs} = {rollout})"
            )
        if resolve_data(self.data).truth is None:
            raise ConfigError(
                f"--data {self.data!r}: adapting needs logs with a true shop to deploy to (shop or shop:drift)"
            )
