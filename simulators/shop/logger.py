"""The shop's logging policy and its logs: popularity-biased Plackett-Luce slates with uniform
exploration, played against the true users week by week (a drifting shop's tastes move), written
in the LoggedData schema with each slate's propensity."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from simulators.data.logs import LoggedData
from simulators.data.plackett_luce import PlackettLuceSlates, mixed_weights
from simulators.rollout import rollout
from simulators.shop.config import EPOCH, ShopConfig


def logging_policy(config: ShopConfig, prior_popularity: np.ndarray) -> PlackettLuceSlates:
    """Item weights ``(1 - eps) * softmax(a * log prior_popularity) + eps / M`` over the logged
    catalog (items launched after the logs never appear in them), sampled as Plackett-Luce slates."""
    weights = mixed_weights(
        prior_popularity[: config.n_items], config.logging_popularity_power, config.logging_exploration
    )
    return PlackettLuceSlates(weights, config.slate_size)


class LoggedShop(Protocol):
    """What the logger needs of the shop (:class:`~simulators.shop.world.ShopWorld` has it)."""

    config: ShopConfig
    logging_policy: PlackettLuceSlates
    user_activity: np.ndarray

    def at(self, day: float) -> Any:
        """The shop as it is on ``day`` (a user simulator)."""
        ...

    def items_table(self) -> pd.DataFrame:
        """The catalog table."""
        ...

    def users_table(self) -> pd.DataFrame:
        """The users table."""
        ...


def simulate_logs(shop: LoggedShop, n_sessions: int | None = None, log_seed: int | None = None) -> LoggedData:
    """Run the logging policy for ``n_sessions`` sessions (default: the config's) and return
    validated logs. ``log_seed`` draws other sessions from the same world (for OPE studies)."""
    cfg = shop.config
    n_sessions = cfg.n_sessions if n_sessions is None else n_sessions
    entropy = [cfg.seed, 0x10_6] if log_seed is None else [cfg.seed, 0x10_6, log_seed]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    activity = shop.user_activity / shop.user_activity.sum()
    session_user = rng.choice(cfg.n_users, size=n_sessions, p=activity)
    session_start = np.sort(rng.uniform(0, cfg.days * 86_400, n_sessions)).astype(np.int64) + EPOCH
    policy = shop.logging_policy
    chunks: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    # A drifting shop plays each week's sessions in that week's world (at its middle day).
    week = (
        (session_start - EPOCH) // (7 * 86_400) if cfg.drift.enabled else np.zeros(n_sessions, dtype=np.int64)
    )
    for w in np.unique(week):
        sessions = np.flatnonzero(week == w)
        world = shop.at(7.0 * w + 3.5)
        for s in rollout(
            world,
            session_user[sessions],
            lambda active, g: policy.sample(len(active), g),
            cfg.max_steps,
            rng,
            cfg.n_categories,
        ):
            propensity = policy.slate_probability(s.slates)
            chunks.append(
                (sessions[s.active], s.step, s.slates, s.response.click, s.response.purchase, propensity)
            )
    return _logs_table(shop, chunks, session_user, session_start)


def _logs_table(
    shop: LoggedShop, chunks: list[Any], session_user: np.ndarray, session_start: np.ndarray
) -> LoggedData:
    cfg = shop.config
    k = cfg.slate_size
    session = np.concatenate([np.repeat(c[0], k) for c in chunks])
    step = np.concatenate([np.full(len(c[0]) * k, c[1]) for c in chunks])
    table = pd.DataFrame(
        {
            "user_id": session_user[session].astype(np.int64),
            "item_id": np.concatenate([c[2].ravel() for c in chunks]),
            "timestamp": session_start[session] + 30 * step,
            "session_id": session.astype(np.int64),
            "position": np.tile(np.arange(1, k + 1), len(session) // k).astype(np.int64),
            "click": np.concatenate([c[3].ravel() for c in chunks]).astype(np.int64),
            "purchase": np.concatenate([c[4].ravel() for c in chunks]).astype(np.int64),
            "propensity": np.concatenate([np.repeat(c[5], k) for c in chunks]),
            "slate_id": (session * cfg.max_steps + step).astype(np.int64),
        }
    )
    table = table.sort_values(["session_id", "timestamp", "position"], kind="stable").reset_index(drop=True)
    logs = LoggedData(
        interactions=table,
        items=shop.items_table(),
        users=shop.users_table(),
        sensitive_attributes=("gender", "age_group"),
        source=f"shop(seed={cfg.seed})",
    )
    return logs.validate()
