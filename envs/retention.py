"""Users who come back: the clock of the retention env (``EnvConfig.horizon_days > 0``).

An episode is one user over ``horizon_days`` days made of sessions; the step is still a slate.
When a session ends (the user leaves, or the session cap), the world's return model
(:class:`~simulators.retention.ReturnProcess`) draws the gap to the user's next session from
what the session passed on (its events, clicks, most common topic and the user's sessions so
far: :data:`~simulators.retention.COVARIATES`). The next session starts at once in the same
slot, the same user with the clicked history they had, when it falls within the horizon;
otherwise the episode ends. A session's slates are 30 s apart, as in the shop's logs.

Randomness is counter-based, keyed by the episode's first session key: the ``j``-th session's
end draws its gap and the next session's key from :func:`~envs.engine.splitmix_uniform` of (that
key, ``RETURN_STEP + j``, column 0 and 1). The env's own stream only picks each episode's user and
first key, so every policy meets the same users in the same slots, with common dice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from envs.config import MAX_EPISODE_SESSIONS, EnvConfig
from envs.engine import counter_uniforms
from envs.world import RankingWorld
from simulators.dynamics import slate_category_counts
from simulators.retention import COVARIATES, SECONDS_PER_DAY, session_covariates

SECONDS_PER_STEP = 30.0
"""Time between a session's slates (the shop's logs)."""
SESSION_OUTCOMES = ("like_rate", "log_length", "topic_repeat")
"""The covariates a policy moves (``EnvConfig.return_effects=False`` sets their effects to 0)."""
RETURN_STEP = 2**40
"""The counter of a session's end draws starts here, far past any step of a session's own dice."""


class ReturnClock:
    """Each slot's place in its user's horizon: the day, the sessions so far and what the last
    one left, ``(B,)`` arrays; and the topics the current session has shown, ``(B, n_topics)``."""

    def __init__(self, config: EnvConfig, world: RankingWorld, batch: int):
        self.horizon = config.horizon_days
        self.slate_size = config.slate_size
        process = world.return_process()
        if not config.return_effects:  # the session's own outcome carries nothing to the next visit
            beta = process.beta.copy()
            beta[[COVARIATES.index(name) for name in SESSION_OUTCOMES]] = 0.0
            process = replace(process, beta=beta)
        self.process = process
        self.day = np.zeros(batch)
        """Days from the episode's first session's start to the current session's start."""
        self.sessions = np.zeros(batch, dtype=np.int64)
        """The user's sessions before the current one in this episode."""
        self.since_last = np.full(batch, np.inf)
        """Days between the last session's end and the current one's start (inf: none yet)."""
        self.last_clicks_per_step = np.zeros(batch)
        self.topic_counts = np.zeros((batch, world.n_topics))
        """Items the current session has shown per topic."""
        self.gap = np.zeros(batch)
        """The gap drawn at each slot's last session end, in days."""
        self.episode_key = np.zeros(batch, dtype=np.uint64)
        """The key of each slot's episode (its first session's)."""

    def begin(self, index: np.ndarray, keys: np.ndarray) -> None:
        """New episodes in slots ``index`` whose first sessions have ``keys``: day 0, no session before."""
        self.episode_key[index] = keys
        self.day[index] = 0.0
        self.sessions[index] = 0
        self.since_last[index] = np.inf
        self.last_clicks_per_step[index] = 0.0
        self.topic_counts[index] = 0.0

    def record(self, slate_topics: np.ndarray) -> None:
        """After a step: count the topics of every slot's slate ``(B, K)``."""
        self.topic_counts += slate_category_counts(
            slate_topics, np.ones(slate_topics.shape), self.topic_counts.shape[1]
        )

    def end_sessions(
        self, index: np.ndarray, users: np.ndarray, steps: np.ndarray, clicks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sessions of slots ``index`` ended after ``steps`` slates and ``clicks``: draw each
        user's gap and move the clock to the next session's start. Returns ``(len(index),)`` bool,
        the next session starts within the horizon, and ``(len(index),)`` uint64, its key."""
        x = session_covariates(
            self.slate_size * steps, clicks, self.topic_counts[index].max(axis=1), self.sessions[index]
        )
        draws = counter_uniforms(self.episode_key[index], RETURN_STEP + self.sessions[index], 2)
        gap = self.process.gaps(x, users, 1.0 - draws[:, 0])
        keys = np.floor(draws[:, 1] * 2.0**53).astype(np.uint64)
        duration = SECONDS_PER_STEP * np.maximum(steps - 1, 0) / SECONDS_PER_DAY
        self.gap[index] = gap
        self.day[index] += duration + gap
        self.sessions[index] += 1
        self.since_last[index] = gap
        self.last_clicks_per_step[index] = clicks / np.maximum(steps, 1)
        self.topic_counts[index] = 0.0
        return self.day[index] < self.horizon, keys

    def clone_into(self, target: ReturnClock, rows: np.ndarray) -> None:
        """Copy slots ``rows (R,)`` into the ``R`` slots of ``target`` (a planner's copies)."""
        for name in (
            "day",
            "sessions",
            "since_last",
            "last_clicks_per_step",
            "topic_counts",
            "gap",
            "episode_key",
        ):
            getattr(target, name)[...] = getattr(self, name)[rows]

    def fill(self, context: np.ndarray) -> None:
        """Write :data:`~envs.config.RETURN_CONTEXT` into the last four columns of ``context (B, C)``."""
        context[:, -4:] = return_context(
            self.day, self.sessions, self.since_last, self.last_clicks_per_step, self.horizon
        )


def return_context(
    day: np.ndarray,
    sessions: np.ndarray,
    since_last: np.ndarray,
    last_clicks_per_step: np.ndarray,
    horizon: float,
) -> np.ndarray:
    """``(B, 4)`` :data:`~envs.config.RETURN_CONTEXT` of ``(B,)`` users' places in their horizons:
    the current session's start ``day`` since the horizon's first session, the ``sessions``
    before it, the days ``since_last`` session ended (``inf`` for the first) and that session's
    clicks per step; ``horizon`` in days. The env's clock and the serving path
    (:class:`VisibleVisits`) both write it here."""
    return np.stack(
        [
            np.minimum(np.asarray(day, dtype=np.float64) / horizon, 1.0),
            np.log1p(np.minimum(sessions, MAX_EPISODE_SESSIONS)),
            np.minimum(np.asarray(since_last, dtype=np.float64) / horizon, 1.0),
            np.asarray(last_clicks_per_step, dtype=np.float64),
        ],
        axis=1,
    )


class SessionProgress(Protocol):
    """What :class:`VisibleVisits` reads of a session when it ends, and keeps of the last one for
    the serving ranker (the history a returning user brings); :class:`envs.session.VisibleSession`
    has it."""

    step: int
    """Slates shown so far."""
    clicks: float
    """Clicks fed back so far."""
    history: np.ndarray
    """The user's clicked items so far."""


@dataclass
class VisibleVisits:
    """One user's place in their horizon as the serving path sees it, from the times of the
    slates it showed them: the arithmetic of :class:`ReturnClock` for a single user in wall-clock
    seconds. A horizon starts at a session's start; every session that starts within
    ``horizon_days`` of it belongs to it, and the first one that does not starts the next (the
    env's episode). A session ends at its last slate."""

    horizon_days: float
    start: float = 0.0
    """Seconds: the horizon's first session's start."""
    session_start: float = 0.0
    """Seconds: the current session's start."""
    last_seen: float = 0.0
    """Seconds: the current session's last slate."""
    sessions: int = 0
    """The user's sessions in the horizon before the current one."""
    since_last: float = np.inf
    """Days between the last session's end and the current one's start (inf: none yet)."""
    last_clicks_per_step: float = 0.0
    """The last session's clicks per slate (0 for the horizon's first)."""
    current: SessionProgress | None = field(default=None, repr=False)
    """The current session's state, read when it ends (so clicks fed back late still count)."""

    def visit(self, now: float, session: SessionProgress) -> None:
        """A slate of ``session`` is shown at ``now`` (seconds): the current session goes on, or
        ``session`` starts a new one (in this horizon, or the next)."""
        if session is self.current:
            self.last_seen = now
            return
        previous = self.current
        if previous is not None and (now - self.start) / SECONDS_PER_DAY < self.horizon_days:
            self.sessions += 1
            self.since_last = max(now - self.last_seen, 0.0) / SECONDS_PER_DAY
            self.last_clicks_per_step = float(previous.clicks) / max(int(previous.step), 1)
        else:
            self.start, self.sessions, self.since_last, self.last_clicks_per_step = now, 0, np.inf, 0.0
        self.current, self.session_start, self.last_seen = session, now, now

    def context(self) -> np.ndarray:
        """``(1, 4)`` float32 :data:`~envs.config.RETURN_CONTEXT` of the current session."""
        day = (self.session_start - self.start) / SECONDS_PER_DAY
        return return_context(
            np.array([day]), np.array([self.sessions]), np.array([self.since_last]),
            np.array([self.last_clicks_per_step]), self.horizon_days,
        ).astype(np.float32)  # fmt: skip
