"""Playing sessions of a policy in a simulator, with the same users for every policy, and the
metrics object of an evaluation (the ``agents.evaluate`` JSON, ``metrics.json``'s entries).

Each of the vector env's slots plays a fixed number of sessions; since users are drawn from each
slot's own seeded generator and never from the policy's actions, every policy meets the same users.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.policies.protocol import Policy
from envs.config import EnvConfig
from envs.factory import make_vector_env
from simulators.core.errors import ConfigError
from simulators.core.metrics import mean_ci95

PARALLEL_SESSIONS = 32
"""Vector-env slots used for evaluation (sessions are split evenly among them)."""


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
    users: np.ndarray | None = None
    """``(episodes,)`` the user (row of the users table) of each session. Sessions are ordered by
    vector slot, then by their turn in the slot, so every policy run with the same seed and
    episodes meets the same users in the same order (paired comparisons)."""
    keys: np.ndarray | None = None
    """``(episodes,)`` uint64 each session's key (its counter-based randomness), in the same order:
    the same user and key is the same session for every policy (``agents.evaluation.paired``).
    In the retention env, an episode's first session's key."""
    sessions: np.ndarray | None = None
    """The retention env: ``(episodes,)`` sessions in each episode (``None`` elsewhere)."""
    gaps: np.ndarray | None = None
    """The retention env: the days from each played session's end to its user's next visit,
    drawn whether or not it falls within the horizon."""


def run_sessions(
    policy: Policy, config: EnvConfig, episodes: int, seed: int, progress: bool = True
) -> EvaluationResult:
    """Play ``episodes`` sessions of ``policy`` in the env ``config`` describes (in the policy's own
    action mode, a ``menu`` agent with its own menu; a fixed quota per vector slot) and collect
    their outcomes."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    slots = min(PARALLEL_SESSIONS, episodes)
    quota = np.full(slots, episodes // slots) + (np.arange(slots) < episodes % slots)
    mode, own = policy.action_mode, getattr(policy, "env_config", None)
    menu = own.action_menu if mode == "menu" and isinstance(own, EnvConfig) else config.action_menu
    env = make_vector_env(replace(config, action_mode=mode, action_menu=menu), slots)
    if (bind := getattr(policy, "bind", None)) is not None:
        bind(env.core)  # a policy that reads the sessions' state (the planner), through the core's interface
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    totals = np.zeros((slots, 6))  # return, clicks, purchases, length, penalty, sessions
    returning = env.core.clock is not None
    gaps: list[np.ndarray] = []
    finished: list[np.ndarray] = []
    users: list[int] = []
    keys: list[int] = []
    order: list[tuple[int, int]] = []  # (slot, session of the slot): the same users for every policy
    played = np.zeros(slots, dtype=np.int64)
    with tqdm(total=episodes, desc="evaluate", unit="session", disable=not progress) as bar:
        while (played < quota).any():
            actions = policy.act(obs, rng)
            playing = env.core.user.copy()  # a finished session's slot restarts with another user
            playing_keys = env.core.episode_keys.copy()
            obs, reward, terminated, truncated, info = env.step(actions)
            back = info.get("returned", np.zeros(slots))
            totals += np.column_stack(
                [reward, info["clicks"], info["purchases"], np.ones(slots), info["fairness_penalty"], back]
            )
            if returning:
                counted = (info["gap_days"] > 0) & (played < quota)
                gaps.append(info["gap_days"][counted])
            for slot in np.flatnonzero(terminated | truncated):
                if played[slot] < quota[slot]:
                    finished.append(totals[slot].copy())
                    users.append(int(playing[slot]))
                    keys.append(int(playing_keys[slot]))
                    order.append((int(slot), int(played[slot])))
                    bar.update(1)
                played[slot] += 1
                totals[slot] = 0
    rank = sorted(range(len(order)), key=order.__getitem__)
    table = np.array(finished)[rank]
    fairness = env.fairness_metrics()
    return EvaluationResult(
        table[:, 0],
        table[:, 1],
        table[:, 2],
        table[:, 3],
        table[:, 4],
        fairness,
        env.config.slate_size,
        np.array(users, dtype=np.int64)[rank],
        np.array(keys, dtype=np.uint64)[rank],
        sessions=table[:, 5] + 1 if returning else None,
        gaps=np.concatenate(gaps) if returning else None,
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
        "tail_exposure_share": result.fairness["tail_exposure_share"],
        "provider_groups": bool(result.fairness.get("provider_groups", True)),
    } | ({"retention": retention_metrics(result)} if result.sessions is not None else {})


def retention_metrics(result: EvaluationResult) -> dict[str, float]:
    """The retention env's figures: sessions per user over the horizon, the mean gap to the next
    visit, and the shares of sessions followed by a visit within 1 and 7 days (the return model's
    draws, censored by nothing)."""
    sessions, gaps = result.sessions, result.gaps
    assert sessions is not None and gaps is not None
    return {
        "sessions_per_user": float(sessions.mean()),
        "engagement_per_user": float(result.returns.mean()),
        "mean_gap_days": float(gaps.mean()) if len(gaps) else float("nan"),
        "return_day1": float((gaps <= 1.0).mean()) if len(gaps) else float("nan"),
        "return_day7": float((gaps <= 7.0).mean()) if len(gaps) else float("nan"),
    }
