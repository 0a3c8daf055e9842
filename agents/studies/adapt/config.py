"""The options of a continuous-optimisation run (``python -m agents.adapt``'s flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.training.config import ALGORITHM_KWARGS
from simulators.core.errors import ConfigError, check_seed
from simulators.datasets import resolve_data

LIMITS = {"weeks": 520, "seeds": 100, "initial_timesteps": 10**9, "finetune_timesteps": 10**9,
          "sessions_per_week": 10**6, "eval_sessions": 10**6, "window_weeks": 520, "n_envs": 65_536,
          "tuning_sessions": 10**6, "tuning_generations": 1_000, "train_eval_episodes": 10**6,
          "canary_sessions": 10**6, "guard_looks": 100}  # fmt: skip
"""The largest value of each count (what fits a machine's memory and time)."""
AB_SEED = 50_000
"""Seed of the A/B users of week ``w`` is ``AB_SEED + w`` (no training or tuning uses them)."""
CANARY_SEED = 60_000
"""The canary users of week ``w`` in the loop of seed ``s`` come from ``(CANARY_SEED, s, w)``:
fresh for each loop and week, and disjoint from the A/B users."""
REFIT_LOGS = ("served", "pooled")
"""What a week's refit reads (:attr:`AdaptConfig.refit_logs`)."""
GUARDS = ("canary", "none")
"""``canary``: ship a candidate only when the canary shows it better than the deployed policy
(:mod:`agents.studies.adapt.guard`); ``none``: ship every fine-tuned candidate."""


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
    refit_logs: str = "served"
    """What each week's refit reads: the last ``window_weeks`` of served logs (``served``), or
    those and the logs the loop started from (``pooled``)."""
    n_envs: int = 16
    """Parallel users while training and fine-tuning."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (week 0)."""
    tuning_generations: int = 5
    """CEM generations of tuned-weights."""
    train_eval_episodes: int = 500
    """Sessions per policy in week 0's training comparison."""
    guard: str = "canary"
    """What decides whether a week's candidate replaces the deployed policy (``canary`` or ``none``)."""
    canary_sessions: int = 2_000
    """Most sessions the canary plays per policy (paired: the same users for each)."""
    guard_alpha: float = 0.05
    """The canary's chance of shipping a candidate that is not better, at most (one-sided)."""
    guard_looks: int = 4
    """Looks of the sequential canary test (it stops at the first that decides)."""
    policy: str | None = None
    """A trained run folder to start from as week 0's policy (copied in); ``None`` trains one."""
    candidates: tuple[str, ...] = ()
    """Run folders entered in every week's canary beside the fine-tuned policy (a planted study)."""
    seed: int = 0
    """Seed of training and deployments (the A/B users of a week are the same for every seed)."""
    seeds: int = 1
    """Independent replicates of the loop (seeds ``seed``, ``seed + 1``, ...), each a trial of
    ``--backend`` in ``DIR/seed-S/``; the report pools them (Student-t CIs across seeds)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))  # a list when read back from JSON
        check_seed("--seed", self.seed)
        for name in ("weeks", "seeds", "initial_timesteps", "finetune_timesteps", "sessions_per_week", "eval_sessions",
                     "window_weeks", "n_envs", "tuning_sessions", "tuning_generations", "train_eval_episodes",
                     "canary_sessions", "guard_looks"):  # fmt: skip
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
        if self.refit_logs not in REFIT_LOGS:
            raise ConfigError(f"--refit-logs must be one of {REFIT_LOGS}, got {self.refit_logs!r}")
        if self.guard not in GUARDS:
            raise ConfigError(f"--guard must be one of {GUARDS}, got {self.guard!r}")
        if not 0 < self.guard_alpha < 0.5:
            raise ConfigError(f"--guard-alpha must lie in (0, 0.5), got {self.guard_alpha}")
        if self.canary_sessions < 2 * self.guard_looks:
            raise ConfigError(
                f"--canary-sessions ({self.canary_sessions}) must give each of the --guard-looks "
                f"({self.guard_looks}) at least 2 sessions"
            )
        if self.candidates and self.guard == "none":
            raise ConfigError("--candidates enter the canary: they need --guard canary")
        for name, run in (("--policy", self.policy), *(("--candidates", c) for c in self.candidates)):
            if run is not None and not (Path(run) / "config.json").is_file():
                raise ConfigError(f"{name} {run}: not a trained run folder (no config.json)")
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
