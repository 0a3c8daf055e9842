"""The shop's ground truth of a target policy: its expected clicks per slot in the logged states
of an independent log, exact under the true click model, and its clicks per session run
on-policy in the true shop. One setup (:class:`ShopTruth`) for ``agents.ope`` and the OPE
benchmark."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.ope.targets import PLPolicy
from simulators.core.metrics import clustered_standard_error
from simulators.data.steps import StepTable, build_steps
from simulators.dynamics import SessionState, sigmoid
from simulators.rollout import replay, rollout
from simulators.shop.world import ShopWorld


def true_step_value(
    world: ShopWorld, steps: StepTable, target: PLPolicy, n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Expected clicks per slot of ``target``'s slates in the logged states of ``steps``, exact
    under the shop's true click model (states replayed from the logs): ``((K,) means, standard
    error of their sum)``. The error treats sessions as the independent draws (a session's steps
    share its user and state), not steps."""
    k = steps.items.shape[1]
    bias = world.slot_bias(k)
    per_slot = np.zeros((len(steps.step), k))
    state_rows = _replayed_states(world, steps)
    all_items = np.arange(world.n_catalog)
    for rows, local, margins in target.marginal_chunks(steps.user, k, n_samples, rng):
        for start in range(0, len(rows), 2048):
            part = rows[start : start + 2048]
            state = state_rows(part)
            grid = np.broadcast_to(all_items, (len(part), len(all_items)))
            p_click = sigmoid(world.relevance(steps.user[part], grid, state))  # (r, n_items)
            if len(margins) == 1:  # context-free: one marginal table for every row
                per_slot[part] = np.einsum("kn,rn,k->rk", margins[0], p_click, bias)
            else:
                per_slot[part] = np.einsum(
                    "rkn,rn,k->rk", margins[local[start : start + 2048]], p_click, bias
                )
    return per_slot.mean(axis=0), clustered_standard_error(per_slot.sum(axis=1), steps.session)


def _replayed_states(world: ShopWorld, steps: StepTable) -> Callable[[np.ndarray], SessionState]:
    """A function from step rows to their true session states (drift, boredom) before the step."""
    n_topics = int(world.item_topic.max()) + 1
    drift = np.zeros((len(steps.step), n_topics))
    boredom = np.zeros((len(steps.step), n_topics))
    for part in replay(steps, world.item_topic, world.dynamics):
        drift[part.rows], boredom[part.rows] = part.before.interest_drift, part.before.boredom

    def rows_state(rows: np.ndarray) -> SessionState:
        return SessionState(interest_drift=drift[rows], boredom=boredom[rows])

    return rows_state


def true_session_value(
    world: ShopWorld, target: PLPolicy, n_sessions: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Clicks per session of ``target`` run on-policy in the true shop: ``(mean, standard error)``."""
    cfg = world.config
    activity = world.user_activity / world.user_activity.sum()
    users = rng.choice(cfg.n_users, size=n_sessions, p=activity)

    def choose(active: np.ndarray, g: np.random.Generator) -> np.ndarray:
        return np.concatenate(
            [
                target.sample(target.contexts(users[active[s : s + 512]]), 1, cfg.slate_size, g)[:, 0]
                for s in range(0, len(active), 512)
            ]
        )

    clicks = np.zeros(n_sessions)
    for step in rollout(world, users, choose, cfg.max_steps, rng, cfg.n_categories):
        clicks[step.active] += step.response.click.sum(axis=1)
    return float(clicks.mean()), float(clicks.std(ddof=1) / np.sqrt(n_sessions))


TRUTH_SESSIONS = 20_000
"""Sessions of the independent shop log whose states give the truth, and of the on-policy run."""
TRUTH_LOG_SEED = 10_007
"""``log_seed`` of that independent log (no evaluated log uses it)."""


@dataclass
class ShopTruth:
    """The ground truth of any target policy in one shop world (see the module docstring)."""

    world: ShopWorld
    steps: StepTable
    """The independent log whose states the per-step truth is taken in."""
    n_sessions: int
    """Sessions of that log and of each on-policy run."""

    @classmethod
    def build(cls, world: ShopWorld, n_sessions: int = TRUTH_SESSIONS) -> ShopTruth:
        """Simulate the independent log of ``n_sessions`` sessions."""
        return cls(world, build_steps(world.simulate_logs(n_sessions, log_seed=TRUTH_LOG_SEED)), n_sessions)

    def value(
        self,
        target: PLPolicy,
        step_rng: np.random.Generator,
        session_rng: np.random.Generator,
        n_samples: int = 256,
    ) -> dict[str, Any]:
        """``slate`` (clicks per step) with its ``slate_se``, ``first_slot``, ``per_slot``, and
        ``session`` (clicks per session) with its ``session_se``."""
        per_slot, slate_se = true_step_value(self.world, self.steps, target, n_samples, step_rng)
        session, session_se = true_session_value(self.world, target, self.n_sessions, session_rng)
        return {
            "slate": float(per_slot.sum()),
            "slate_se": slate_se,
            "first_slot": float(per_slot[0]),
            "per_slot": per_slot.tolist(),
            "session": session,
            "session_se": session_se,
        }
