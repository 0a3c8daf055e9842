"""Sessions played forward (rollout) and logged sessions played back (replay), in numpy.

The one loop the shop's logger, the fit's fidelity report and the OPE ground truth share:
a batch of sessions, each stepping until its user leaves or the cap. Replay walks logged
slates and clicks step by step and hands out each step's session state, for models that
condition on it (the fit, the true click model's probabilities, the OPE truth).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from simulators.data.steps import StepTable
from simulators.dynamics import DynamicsParams, SessionState, UserTraits, advance
from simulators.response import Response, UserSimulator, respond

SlateChooser = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""``(active session indices (B,), rng) -> slates (B, K)`` of catalog rows."""


@dataclass
class RolloutStep:
    """What happened at one step of a batch of sessions."""

    step: int
    """0-based step number."""
    active: np.ndarray
    """``(B,)`` indices of the sessions that played this step."""
    slates: np.ndarray
    """``(B, K)`` catalog rows shown."""
    response: Response
    """The users' clicks, purchases and leaving."""


def rollout(
    simulator: UserSimulator,
    users: np.ndarray,
    choose: SlateChooser,
    max_steps: int,
    rng: np.random.Generator,
    n_topics: int | None = None,
    first: np.ndarray | None = None,
) -> Iterator[RolloutStep]:
    """Play one session per entry of ``users (n,)`` until the user leaves or ``max_steps``.

    Each session's own leave offset is drawn first (``rng.standard_normal(n)``, where the dynamics
    have a ``leave_session_sd``). Per step: ``choose(active, rng)`` draws the slates, then
    ``rng.random((B, 2K + 1))`` the users' uniforms (see :func:`~simulators.response.respond`).
    ``first (n,)`` marks sessions that are their user's first visit (``leave_first_session``
    applies; default: none, every session a returning user's, as in the envs). ``n_topics`` sizes the session
    state (default: the simulator's topics).
    """
    topics = int(simulator.item_topic.max()) + 1 if n_topics is None else n_topics
    state = SessionState.fresh(len(users), topics, simulator.user_traits, users)
    dynamics = simulator.dynamics
    own = np.zeros(len(users))
    if dynamics.leave_session_sd > 0:  # each session's own leave offset, drawn at its start
        own += dynamics.leave_session_sd * rng.standard_normal(len(users))
    if first is not None:
        own += dynamics.leave_first_session * first
    if own.any():
        state.leave_offset = own if state.leave_offset is None else state.leave_offset + own
    active = np.arange(len(users))
    for step in range(max_steps):
        if not len(active):
            return
        slates = choose(active, rng)
        sub = state.take(active)
        response = respond(
            simulator, users[active], slates, sub, rng.random((len(active), 2 * slates.shape[1] + 1))
        )
        state.interest_drift[active], state.boredom[active] = sub.interest_drift, sub.boredom
        yield RolloutStep(step, active, slates, response)
        active = active[~response.leave]


@dataclass
class ReplayStep:
    """One step of replayed logged sessions."""

    rows: np.ndarray
    """``(B,)`` step rows (of the :class:`~simulators.data.steps.StepTable`) at this step number."""
    sessions: np.ndarray
    """``(B,)`` their sessions."""
    topics: np.ndarray
    """``(B, K)`` topic of each slot (0 in empty slots)."""
    shown: np.ndarray
    """``(B, K)`` bool: the slot held an item."""
    before: SessionState
    """The session state before the step's slate (a copy)."""
    after: SessionState
    """The state after the slate and its logged clicks."""


def replay(
    steps: StepTable, item_topic: np.ndarray, params: DynamicsParams, traits: UserTraits | None = None
) -> Iterator[ReplayStep]:
    """Walk logged sessions step by step, advancing each session's state by ``params`` (and its
    user's ``traits``, default: the population mean) with the logged slates and clicks.
    ``item_topic (n_items,)``."""
    n_topics = int(item_topic.max()) + 1
    session_user = np.zeros(steps.n_sessions, dtype=np.int64)
    session_user[steps.session] = steps.user
    state = SessionState.fresh(steps.n_sessions, n_topics, traits, session_user)
    shown = steps.slot_mask
    topics = np.where(shown, item_topic[np.maximum(steps.items, 0)], 0)
    for t in range(int(steps.step.max()) + 1):
        rows = np.flatnonzero(steps.step == t)
        sessions = steps.session[rows]
        sub = state.take(sessions)
        before = sub.take(np.arange(len(sessions)))
        advance(params, sub, topics[rows], steps.clicks[rows], shown[rows])
        state.boredom[sessions], state.interest_drift[sessions] = sub.boredom, sub.interest_drift
        yield ReplayStep(rows, sessions, topics[rows], shown[rows], before, sub)


def replay_probabilities(steps: StepTable, simulator: UserSimulator) -> tuple[np.ndarray, np.ndarray]:
    """P(click) and P(purchase | click) of every logged slot under ``simulator``, its session
    state replayed from the logged slates and clicks: ``(S, K)`` each (0 in empty slots)."""
    click = np.zeros(steps.items.shape)
    purchase = np.zeros(steps.items.shape)
    items = np.maximum(steps.items, 0)
    for part in replay(steps, simulator.item_topic, simulator.dynamics, simulator.user_traits):
        users, slates = steps.user[part.rows], items[part.rows]
        click[part.rows] = simulator.click_probability(users, slates, part.before)
        purchase[part.rows] = simulator.purchase_probability(users, slates, part.before)
    return click * steps.slot_mask, purchase * steps.slot_mask
