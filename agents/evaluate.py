"""Online evaluation of a policy in a simulator, with the same users for every policy.

``python -m agents.evaluate --policy random|popularity|ctr|RUN_DIR --env ecommerce-v0 --episodes N
--seed S --json FILE`` writes the metrics object of DESIGN.md's contract. Each of the vector
env's slots plays a fixed number of sessions; since users are drawn from each slot's own seeded
generator and never from the policy's actions, every policy meets the same users.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

import envs
from agents.baselines import POLICY_NAMES, make_baseline
from envs.vector import RankingVectorEnv
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError
from simulators.core.metrics import mean_ci95
from simulators.core.storage import write_text_atomic

PARALLEL_SESSIONS = 32
"""Vector-env slots used for evaluation (sessions are split evenly among them)."""


class Policy(Protocol):
    """Anything that turns a batch of observations into a batch of actions."""

    @property
    def action_mode(self) -> str:
        """The env ``action_mode`` its actions are for."""
        ...

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """A batch of actions for a batch of ``observation``."""
        ...


@dataclass
class EvaluationResult:
    """Per-session outcomes and the ledger's fairness metrics."""

    returns: np.ndarray
    clicks: np.ndarray
    purchases: np.ndarray
    lengths: np.ndarray
    penalties: np.ndarray
    fairness: dict[str, float]
    slate_size: int = 5
    """Items shown per step (for the per-impression click rate)."""


def run_sessions(policy: Policy, env_id: str, episodes: int, seed: int, **options: Any) -> EvaluationResult:
    """Play ``episodes`` sessions (a fixed quota per vector slot) and collect their outcomes."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    data = envs.env_data(env_id)
    slots = min(PARALLEL_SESSIONS, episodes)
    quota = np.full(slots, episodes // slots) + (np.arange(slots) < episodes % slots)
    env = RankingVectorEnv(num_envs=slots, **{"data": data, **options, "action_mode": policy.action_mode})
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    totals = np.zeros((slots, 5))  # return, clicks, purchases, length, penalty
    finished: list[np.ndarray] = []
    played = np.zeros(slots, dtype=np.int64)
    with tqdm(total=episodes, desc="evaluate", unit="session") as progress:
        while (played < quota).any():
            actions = policy.act(obs, rng)
            obs, reward, terminated, truncated, info = env.step(actions)
            totals += np.column_stack(
                [reward, info["clicks"], info["purchases"], np.ones(slots), info["fairness_penalty"]]
            )
            for slot in np.flatnonzero(terminated | truncated):
                if played[slot] < quota[slot]:
                    finished.append(totals[slot].copy())
                    progress.update(1)
                played[slot] += 1
                totals[slot] = 0
    table = np.array(finished)
    fairness = env.fairness_metrics()
    return EvaluationResult(
        table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], fairness, env.config.slate_size
    )


def metrics(result: EvaluationResult, env_id: str, policy: str, seed: int) -> dict[str, Any]:
    """The contract's metrics object."""
    mean, lo, hi = mean_ci95(result.returns)
    steps = max(float(result.lengths.sum()), 1.0)
    return {
        "env": env_id,
        "policy": policy,
        "seed": seed,
        "episodes": len(result.returns),
        "return_mean": mean,
        "return_ci95": [lo, hi],
        "clicks_per_session": float(result.clicks.mean()),
        "purchases_per_session": float(result.purchases.mean()),
        "ctr": float(result.clicks.sum() / (steps * result.slate_size)),
        "session_length": float(result.lengths.mean()),
        "fairness_penalty": float(result.penalties.sum() / steps),
        "exposure_gini": result.fairness["exposure_gini"],
        "protected_exposure_share": result.fairness["protected_exposure_share"],
        "protected_exposure_target": result.fairness["protected_exposure_target"],
        "user_group_gap": result.fairness["user_group_gap"],
    }


def load_policy(spec: str, device: str = "auto") -> Policy:
    """A baseline by name, or a trained agent's run folder (or its ``model.zip``)."""
    if spec in POLICY_NAMES:
        return make_baseline(spec)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--policy {spec!r}: not one of {POLICY_NAMES} and no such file")
    from agents.agent import TrainedAgent  # imports SB3 and torch

    return TrainedAgent.load(path, device)


def policy_env_options(policy: Policy) -> dict[str, Any]:
    """Env options a trained agent needs (its observation shapes depend on them)."""
    options = dict(getattr(policy, "env_options", {}))
    options.pop("data", None)
    return options


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse the contract's flags, evaluate, write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m agents.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="random | popularity | ctr | PATH")
    parser.add_argument("--env", required=True, help="registered env id, e.g. ecommerce-v0")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--fairness-lambda", type=float, default=0.0)
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    options = {**policy_env_options(policy), "fairness_lambda": args.fairness_lambda}
    result = run_sessions(policy, args.env, args.episodes, args.seed, **options)
    report = metrics(result, args.env, args.policy, args.seed)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
