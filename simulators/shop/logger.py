"""The shop's logging policy and its logs: popularity-biased Plackett-Luce slates with uniform
exploration, played against the true users week by week (a drifting shop's tastes move), written
in the LoggedData schema with each slate's propensity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError
from simulators.data.logs import LoggedData
from simulators.data.plackett_luce import PlackettLuceSlates, mixed_weights
from simulators.dynamics import slate_category_counts
from simulators.retention import ReturnProcess, sample_gaps, session_covariates
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
    item_category: np.ndarray

    def return_process(self) -> ReturnProcess:
        """How users come back (:class:`~simulators.retention.ReturnProcess`)."""
        ...

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
    validated logs. ``log_seed`` draws other sessions from the same world (for OPE studies).
    With :class:`~simulators.shop.config.ShopReturns` on, each user's sessions follow the return
    model instead (:func:`returning_sessions`) and ``n_sessions`` is not used."""
    cfg = shop.config
    n_sessions = cfg.n_sessions if n_sessions is None else n_sessions
    entropy = [cfg.seed, 0x10_6] if log_seed is None else [cfg.seed, 0x10_6, log_seed]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    if cfg.returns.enabled:
        return returning_sessions(shop, rng)
    activity = shop.user_activity / shop.user_activity.sum()
    session_user = rng.choice(cfg.n_users, size=n_sessions, p=activity)
    session_start = np.sort(rng.uniform(0, cfg.days * 86_400, n_sessions)).astype(np.int64) + EPOCH
    earliest = np.full(cfg.n_users, np.iinfo(np.int64).max)
    np.minimum.at(earliest, session_user, session_start)  # each user's first visit of the logs
    first = session_start <= earliest[session_user]
    chunks = list(_play(shop, np.arange(n_sessions), session_user, session_start, first, rng))
    return _logs_table(shop, chunks, session_user, session_start)


Chunk = tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""One step of played sessions: their indices, the step, slates, clicks, purchases, propensities."""


def _play(
    shop: LoggedShop, sessions: np.ndarray, session_user: np.ndarray, session_start: np.ndarray,
    first: np.ndarray, rng: np.random.Generator,
) -> Iterator[Chunk]:  # fmt: skip
    """The logging policy's ``sessions`` (indices into ``session_user``, ``session_start`` and
    ``first``, their users' first visits of the logs), played step by step; a drifting shop plays
    each week's sessions in that week's world (at its middle day)."""
    cfg, policy = shop.config, shop.logging_policy
    start = session_start[sessions]
    week = (start - EPOCH) // (7 * 86_400) if cfg.drift.enabled else np.zeros(len(sessions), dtype=np.int64)
    for w in np.unique(week):
        these = sessions[week == w]
        world = shop.at(7.0 * w + 3.5)
        for s in rollout(
            world,
            session_user[these],
            lambda active, g: policy.sample(len(active), g),
            cfg.max_steps,
            rng,
            cfg.n_categories,
            first=first[these],
        ):
            propensity = policy.slate_probability(s.slates)
            yield these[s.active], s.step, s.slates, s.response.click, s.response.purchase, propensity


def returning_sessions(shop: LoggedShop, rng: np.random.Generator) -> LoggedData:
    """The logs of a shop whose users come back (:class:`~simulators.shop.config.ShopReturns`).

    Each user's last visit before the logs was ``a ~ U(0, days)`` days before day 0 and their
    first logged session starts after the gap left given no return for ``a`` days (at the
    covariates' centre, no session before). Then, round by round, every user whose next session
    starts within the logged days plays it (the logging policy, the true users), and the gap to
    their next is drawn from what the session passed on. Session ids follow the start times."""
    cfg, process = shop.config, shop.return_process()
    k, horizon = cfg.slate_size, cfg.days * 86_400.0
    user, before = np.arange(cfg.n_users), np.zeros(cfg.n_users, dtype=np.int64)
    first = np.tile(process.centre, (cfg.n_users, 1))
    first[:, 3] = 0.0  # no session before
    elapsed = rng.uniform(0, cfg.days, cfg.n_users)
    eta = process.eta(first, user)
    start = sample_gaps(process.shape, process.scale, eta, 1.0 - rng.random(cfg.n_users), elapsed) * 86_400
    item_category = shop.item_category
    starts: list[np.ndarray] = []
    session_user: list[np.ndarray] = []
    chunks: list[Chunk] = []
    offset_index = 0
    while True:
        playing = np.flatnonzero(start < horizon)
        if not len(playing):
            break
        index = np.arange(offset_index, offset_index + len(playing))
        offset_index += len(playing)
        round_user, round_start = user[playing], EPOCH + np.floor(start[playing]).astype(np.int64)
        session_user.append(round_user)
        starts.append(round_start)
        # the round's sessions are 0..n-1 while played, then shifted to their indices
        local = np.arange(len(playing))
        steps, clicks = np.zeros(len(playing), dtype=np.int64), np.zeros(len(playing))
        topics = np.zeros((len(playing), cfg.n_categories))
        for chunk in _play(shop, local, round_user, round_start, before[round_user] == 0, rng):
            rows = chunk[0]
            steps[rows] = chunk[1] + 1
            clicks[rows] += chunk[3].sum(axis=1)
            topics[rows] += slate_category_counts(
                item_category[chunk[2]], np.ones(chunk[2].shape), cfg.n_categories
            )
            chunks.append((index[rows], *chunk[1:]))
        x = session_covariates(k * steps, clicks, topics.max(axis=1), before[round_user])
        before[round_user] += 1
        gap = process.gaps(x, round_user, 1.0 - rng.random(len(playing)))
        end = np.floor(start[playing]) + 30.0 * (steps - 1)
        start = np.full(cfg.n_users, np.inf)
        start[round_user] = end + gap * 86_400
    if not session_user:
        raise ConfigError(
            "ShopReturns: no session starts within the logged days; raise days or the scale's hazard"
        )
    users, begins = np.concatenate(session_user), np.concatenate(starts)
    order = np.argsort(begins, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    chunks = [(rank[c[0]], *c[1:]) for c in chunks]
    return _logs_table(shop, chunks, users[order], begins[order])


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
