"""A fitted simulator with some of its mechanisms taken from the ground truth instead: the
instrument that says which mechanism of a fit is wrong (``EnvConfig.true_parts``).

The shop's ground truth and a fitted simulator share one form (static click and purchase logits
per user and item, a position bias, :class:`~simulators.dynamics.DynamicsParams` and per-user
:class:`~simulators.dynamics.UserTraits`), so each mechanism is a set of those pieces:

========== ================================================================================
mechanism  the pieces taken from the truth
========== ================================================================================
click      the static click logit of every (user, item) and the position bias
purchase   the purchase logit of every (user, item) and how much interest drift moves it
drift      ``drift_per_click``, ``drift_retention``
boredom    ``boredom_per_view``, ``boredom_per_click``, ``boredom_retention``, ``boredom_weight``
leave      ``leave_bias``, ``leave_per_boredom``, ``leave_if_no_click``, ``leave_per_click``,
           ``leave_first_session``, ``leave_session_sd``
traits     each user's boredom scale and leave offset
========== ================================================================================

With every mechanism taken, the mixture steps exactly as the truth does; with none, as the fit.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from simulators.core.errors import ConfigError
from simulators.dynamics import DynamicsParams, SessionState, UserTraits, sigmoid
from simulators.response import ResponseTables, UserSimulator

MECHANISMS = ("click", "purchase", "drift", "boredom", "leave", "traits")
"""The parts of a simulator that can be swapped, in the order reports list them."""

LEAVE_FIELDS = (
    "leave_bias",
    "leave_per_boredom",
    "leave_if_no_click",
    "leave_per_click",
    "leave_first_session",
    "leave_session_sd",
)
"""The leave hazard's :class:`~simulators.dynamics.DynamicsParams` fields."""

DYNAMICS_FIELDS = {
    "drift": ("drift_per_click", "drift_retention"),
    "boredom": ("boredom_per_view", "boredom_per_click", "boredom_retention", "boredom_weight"),
    "leave": LEAVE_FIELDS,
}
"""The :class:`~simulators.dynamics.DynamicsParams` fields of each dynamic mechanism."""


def parse_parts(text: str, option: str = "true_parts") -> tuple[str, ...]:
    """``"boredom,leave"`` -> ``("boredom", "leave")`` in :data:`MECHANISMS` order; one clear
    error, naming ``option``, for a name that is not a mechanism or one named twice."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if unknown := sorted(set(names) - set(MECHANISMS)):
        raise ConfigError(f"{option}: {unknown} not mechanisms; they are {list(MECHANISMS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{option} names a mechanism twice: {text!r}")
    return tuple(name for name in MECHANISMS if name in names)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the items alike (topic codes may differ: one is the other's
    renaming, as a fit's sorted category names are of the shop's category numbers)."""
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return len(a) == len(b) and len(pairs) == len(np.unique(a)) == len(np.unique(b))


class MixedSimulator:
    """``model`` with the mechanisms ``parts`` taken from ``truth`` (module docstring).
    Implements :class:`~simulators.response.UserSimulator`."""

    def __init__(self, model: UserSimulator, truth: UserSimulator, parts: tuple[str, ...]):
        if unknown := set(parts) - set(MECHANISMS):
            raise ConfigError(f"not mechanisms: {sorted(unknown)}")
        if not same_partition(model.item_topic, truth.item_topic[: len(model.item_topic)]):
            raise ConfigError("the model and the truth put the items in different topics")
        self.parts = parts
        """The mechanisms taken from the truth."""
        self._topic = model.item_topic
        chosen = {name: (truth if name in parts else model) for name in MECHANISMS}
        fields = asdict(model.dynamics)
        for name, names in DYNAMICS_FIELDS.items():
            if name in parts:
                fields |= {field: getattr(truth.dynamics, field) for field in names}
        self._dynamics = DynamicsParams(**fields)
        self._slot_bias = chosen["click"].slot_bias
        click, purchase = chosen["click"].response_tables(), chosen["purchase"].response_tables()
        traits = chosen["traits"].user_traits
        n_items = len(self._topic)
        self._tables = ResponseTables(
            click.click_logit[:, :n_items],
            purchase.purchase_logit[:, :n_items],
            purchase.purchase_drift_weight,
            purchase.has_purchases,
            UserTraits(traits.boredom_scale, traits.leave_offset),
        )

    @property
    def item_topic(self) -> np.ndarray:
        """``(n_items,)`` topic of each item (the model's: the truth's for every logged item)."""
        return self._topic

    @property
    def dynamics(self) -> DynamicsParams:
        """The model's dynamics with the swapped mechanisms' fields from the truth."""
        return self._dynamics

    @property
    def user_traits(self) -> UserTraits:
        """Each user's boredom scale and leave offset (the truth's with ``traits``)."""
        return self._tables.traits

    def slot_bias(self, n_slots: int) -> np.ndarray:
        """Examination probability per slot (the truth's with ``click``)."""
        return self._slot_bias(n_slots)

    def click_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """``(B, K)`` P(click): the static logit plus drift minus boredom, times the position bias."""
        rows = np.arange(len(users))[:, None]
        topic = self._topic[items]
        z = (
            self._tables.click_logit[users[:, None], items]
            + state.interest_drift[rows, topic]
            - self._dynamics.boredom_weight * state.boredom[rows, topic]
        )
        return self.slot_bias(items.shape[1])[None, :] * sigmoid(z)

    def purchase_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """``(B, K)`` P(purchase | click); zeros when the purchase model never purchases."""
        if not self._tables.has_purchases:
            return np.zeros(items.shape)
        rows = np.arange(len(users))[:, None]
        drift = state.interest_drift[rows, self._topic[items]]
        z = self._tables.purchase_logit[users[:, None], items] + self._tables.purchase_drift_weight * drift
        return sigmoid(z.astype(np.float64))

    def response_tables(self) -> ResponseTables:
        """The mixture as lookup tables."""
        return self._tables
