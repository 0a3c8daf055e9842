"""Logged interactions regrouped as sessions of steps (slates), the shape models learn from.

Part of the data layer (beside ``logs``): it imports nothing above it.

A step is a slate (``slate_id``) or, without slates, one row. Each session also gets the
user's clicked items *before* it started (the history a simulator may condition on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.core.errors import DataError
from simulators.data.logs import LoggedData

MAX_SLOTS = 10
"""Positions beyond this are dropped when building steps."""


@dataclass
class StepTable:
    """Slate-level arrays; ``S`` steps in ``n_sessions`` sessions, ``K`` slots, history ``H``."""

    session: np.ndarray
    """``(S,)`` int64 session index (0..n_sessions-1); steps are sorted by session then time."""
    step: np.ndarray
    """``(S,)`` int64 step number within its session (0-based)."""
    user: np.ndarray
    """``(S,)`` int64 user row (in ``LoggedData.users`` order)."""
    items: np.ndarray
    """``(S, K)`` int64 catalog rows, ``-1`` for an empty slot; slot k is position k + 1."""
    clicks: np.ndarray
    """``(S, K)`` int8."""
    purchases: np.ndarray
    """``(S, K)`` int8 (zeros when the logs have no purchases)."""
    ratings: np.ndarray
    """``(S, K)`` float32 explicit ratings (NaN where the logs have none)."""
    session_user: np.ndarray
    """``(n_sessions,)`` int64 user row of each session."""
    session_length: np.ndarray
    """``(n_sessions,)`` int64 number of steps."""
    history: np.ndarray
    """``(n_sessions, H)`` int64 clicked catalog rows before the session (oldest first), -1 pad."""
    prefix_propensity: np.ndarray | None = None
    """``(S, K)`` float64 the logger's probability of each slate's first k + 1 items, from the logs'
    ``prefix_propensity`` column (the serving log writes it; NaN in empty slots); ``None`` without it."""
    session_first: np.ndarray | None = None
    """``(n_sessions,)`` bool: the session starts at its user's earliest interaction in the logs the
    histories come from (the user's first visit there); ``None``: unknown (all returning)."""

    @property
    def n_sessions(self) -> int:
        """Number of sessions."""
        return len(self.session_user)

    @property
    def slot_mask(self) -> np.ndarray:
        """``(S, K)`` bool: the slot holds an item."""
        return self.items >= 0

    def subset_sessions(self, keep: np.ndarray) -> StepTable:
        """The steps of the sessions where ``keep (n_sessions,)`` is true, renumbered."""
        new_index = np.cumsum(keep) - 1
        rows = keep[self.session]
        return StepTable(
            session=new_index[self.session[rows]],
            step=self.step[rows],
            user=self.user[rows],
            items=self.items[rows],
            clicks=self.clicks[rows],
            purchases=self.purchases[rows],
            ratings=self.ratings[rows],
            session_user=self.session_user[keep],
            session_length=self.session_length[keep],
            history=self.history[keep],
            prefix_propensity=None if self.prefix_propensity is None else self.prefix_propensity[rows],
            session_first=None if self.session_first is None else self.session_first[keep],
        )


def build_steps(
    logs: LoggedData, history_length: int = 20, history_from: LoggedData | None = None
) -> StepTable:
    """Group ``logs`` into steps and sessions and attach pre-session click histories.

    Histories come from ``history_from`` (default ``logs``): pass the full logs when
    ``logs`` is a split, so a test session still sees the clicks that came before it.
    """
    table = logs.interactions
    if not len(table):
        raise DataError("interactions: no rows to learn from")
    table = table[table["position"].to_numpy() <= MAX_SLOTS]
    step_key = (
        table["slate_id"]
        if "slate_id" in table.columns
        else pd.Series(np.arange(len(table)), index=table.index)
    )
    session_codes, _ = pd.factorize(table["session_id"], sort=False)
    frame = pd.DataFrame(
        {
            "session": session_codes,
            "time": table["timestamp"].to_numpy(dtype=np.float64),
            "key": pd.factorize(step_key, sort=False)[0],
            "slot": table["position"].to_numpy(dtype=np.int64) - 1,
            "item": logs.item_rows(table["item_id"].to_numpy()),
            "user": pd.Index(logs.users["user_id"]).get_indexer(table["user_id"]),
            "click": table["click"].to_numpy(dtype=np.int8),
            "purchase": table["purchase"].to_numpy(dtype=np.int8) if "purchase" in table.columns else 0,
            "rating": table["rating"].to_numpy(dtype=np.float32) if "rating" in table.columns else np.nan,
            "prefix": (
                table["prefix_propensity"].to_numpy(dtype=np.float64)
                if "prefix_propensity" in table.columns
                else np.nan
            ),
        }
    )
    frame = frame.sort_values(["session", "time", "key", "slot"], kind="stable")
    step_of_row = pd.factorize(frame["key"], sort=False)[0]
    n_steps = int(step_of_row.max()) + 1
    n_slots = int(frame["slot"].max()) + 1
    items = np.full((n_steps, n_slots), -1, dtype=np.int64)
    clicks = np.zeros((n_steps, n_slots), dtype=np.int8)
    purchases = np.zeros((n_steps, n_slots), dtype=np.int8)
    ratings = np.full((n_steps, n_slots), np.nan, dtype=np.float32)
    slot = frame["slot"].to_numpy()
    items[step_of_row, slot] = frame["item"].to_numpy()
    clicks[step_of_row, slot] = frame["click"].to_numpy()
    purchases[step_of_row, slot] = frame["purchase"].to_numpy()
    ratings[step_of_row, slot] = frame["rating"].to_numpy()
    prefix = None
    if "prefix_propensity" in table.columns:
        prefix = np.full((n_steps, n_slots), np.nan)
        prefix[step_of_row, slot] = frame["prefix"].to_numpy()
    first = np.unique(step_of_row, return_index=True)[1]
    session = frame["session"].to_numpy()[first]
    step_time = frame["time"].to_numpy()[first]
    user = frame["user"].to_numpy()[first].astype(np.int64)
    step = pd.Series(session).groupby(session).cumcount().to_numpy().astype(np.int64)
    # Sessions renumbered in order of appearance after sorting.
    session, _ = pd.factorize(session, sort=False)
    n_sessions = int(session.max()) + 1
    session_length = np.bincount(session, minlength=n_sessions).astype(np.int64)
    session_user = np.zeros(n_sessions, dtype=np.int64)
    session_user[session] = user
    session_start = np.full(n_sessions, np.inf)
    np.minimum.at(session_start, session, step_time)
    source = history_from or logs
    history = _histories_before(source, session_user, session_start, history_length)
    earliest = source.interactions.groupby("user_id")["timestamp"].min().astype(np.float64)
    user_earliest = earliest.reindex(logs.users["user_id"]).to_numpy(dtype=np.float64)
    return StepTable(
        session.astype(np.int64),
        step,
        user,
        items,
        clicks,
        purchases,
        ratings,
        session_user,
        session_length,
        history,
        prefix,
        session_first=session_start <= user_earliest[session_user],
    )


def _histories_before(logs: LoggedData, users: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """For each (user row, start time): the last ``length`` clicked items strictly before."""
    table = logs.interactions
    clicked = table[table["click"].to_numpy() == 1]
    click_user = pd.Index(logs.users["user_id"]).get_indexer(clicked["user_id"]).astype(np.int64)
    click_time = clicked["timestamp"].to_numpy(dtype=np.float64)
    click_item = logs.item_rows(clicked["item_id"].to_numpy())
    # Rank all times together so (user, time) fits one sortable int64 key.
    ranks = np.unique(np.concatenate([click_time, starts]), return_inverse=True)[1].astype(np.int64)
    shift = np.int64(len(ranks) + 1)
    click_key = click_user * shift + ranks[: len(click_time)]
    start_key = users.astype(np.int64) * shift + ranks[len(click_time) :]
    order = np.argsort(click_key, kind="stable")
    click_key, click_user, click_item = click_key[order], click_user[order], click_item[order]
    end = np.searchsorted(click_key, start_key, side="left")  # first click at or after the start
    user_begin = np.searchsorted(click_user, users, side="left")
    offsets = np.arange(-length, 0)
    index = end[:, None] + offsets[None, :]
    valid = index >= user_begin[:, None]
    history = (
        np.where(valid, click_item[np.clip(index, 0, max(len(click_item) - 1, 0))], -1)
        if len(click_item)
        else np.full((len(users), length), -1)
    )
    return history.astype(np.int64)
