"""User response: P(click, purchase | user, item, position, session state), true or learned.

The runtime side is numpy (:func:`respond`, shared by the shop's ground truth and fitted
simulators); the learned side (:class:`~simulators.fit.net.ResponseNet`) is trained with PyTorch
in :mod:`simulators.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulators import dynamics
from simulators.dynamics import DynamicsParams, SessionState, UserTraits


@dataclass
class Response:
    """A batch of users' answers to their slates."""

    click: np.ndarray
    """``(batch, K)`` int8."""
    purchase: np.ndarray
    """``(batch, K)`` int8, zero where there was no click."""
    leave: np.ndarray
    """``(batch,)`` bool: the user left after this step."""


@dataclass
class ResponseTables:
    """A simulator flattened into lookup tables, the form the environments' engine steps.

    Click logit at run time: ``click_logit[u, i] + drift[topic] - boredom_weight * boredom[topic]``;
    purchase logit: ``purchase_logit[u, i] + purchase_drift_weight * drift[topic]``.
    """

    click_logit: np.ndarray
    """``(n_users, n_items)`` float32 static click logit."""
    purchase_logit: np.ndarray
    """``(n_users, n_items)`` float32 static logit of P(purchase | click)."""
    purchase_drift_weight: float
    """How much interest drift also raises the purchase logit."""
    has_purchases: bool
    """False when the simulator never purchases (P(purchase) = 0)."""
    traits: UserTraits
    """Each user's boredom scale and leave offset."""


class UserSimulator(Protocol):
    """What an environment needs from a simulated user population (true or fitted)."""

    @property
    def item_topic(self) -> np.ndarray:
        """``(n_items,)`` int: the topic (category) of each item, the unit of boredom/drift."""
        ...

    @property
    def dynamics(self) -> DynamicsParams:
        """Within-session dynamics."""
        ...

    @property
    def user_traits(self) -> UserTraits:
        """Each user's modifiers of the dynamics (all at the mean in a homogeneous population)."""
        ...

    def click_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """``users (B,)``, ``items (B, K)`` -> P(click) per slot ``(B, K)``, position bias included."""
        ...

    def purchase_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """P(purchase | click) ``(B, K)``."""
        ...

    def slot_bias(self, n_slots: int) -> np.ndarray:
        """``(n_slots,)`` examination probability of each slot."""
        ...

    def response_tables(self) -> ResponseTables:
        """The simulator as lookup tables (see :class:`ResponseTables`)."""
        ...


def respond(
    simulator: UserSimulator,
    users: np.ndarray,
    items: np.ndarray,
    state: SessionState,
    uniforms: np.ndarray,
) -> Response:
    """One step of user behaviour from pre-drawn uniforms, advancing ``state`` in place.

    ``uniforms`` is ``(B, 2K + 1)`` in [0, 1): K for clicks, K for purchases, 1 for leaving.
    Drawing them outside lets callers choose the stream (a Generator, or counter-based).
    """
    k = items.shape[1]
    p_click = simulator.click_probability(users, items, state)
    p_buy = simulator.purchase_probability(users, items, state)
    click = (uniforms[:, :k] < p_click).astype(np.int8)
    purchase = (click.astype(bool) & (uniforms[:, k : 2 * k] < p_buy)).astype(np.int8)
    topics = simulator.item_topic[items]
    dynamics.advance(simulator.dynamics, state, topics, click)
    leave = uniforms[:, 2 * k] < dynamics.leave_probability(simulator.dynamics, state, topics, click)
    return Response(click=click, purchase=purchase, leave=leave)
