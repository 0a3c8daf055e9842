"""A fitted simulator at run time: numpy only (the environments step it without torch)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from simulators.core.errors import DataError
from simulators.core.storage import atomic_path, write_text_atomic
from simulators.dynamics import DynamicsParams, SessionState, UserTraits, sigmoid
from simulators.response import ResponseTables


class FittedSimulator:
    """A simulator learned from logs, in numpy: static click/purchase logits per (user, item)
    plus the within-session dynamics. Implements :class:`~simulators.response.UserSimulator`."""

    def __init__(self, arrays: dict[str, np.ndarray], dynamics_params: DynamicsParams):
        self.click_logit: np.ndarray = arrays["click_logit"]
        """``(n_users, n_items)`` float32 calibrated click logit before dynamics."""
        self.purchase_logit: np.ndarray = arrays["purchase_logit"]
        """``(n_users, n_items)`` float32 logit of P(purchase | click)."""
        self.position_bias: np.ndarray = arrays["position_bias"]
        """``(max_slots,)`` examination probability per slot."""
        self._item_topic: np.ndarray = arrays["item_topic"]
        self.user_weight: np.ndarray = arrays["user_weight"]
        """``(n_users,)`` share of logged sessions each user started (who shows up)."""
        self.history: np.ndarray = arrays["history"]
        """``(n_users, H)`` each user's last logged clicks (catalog rows, -1 pad)."""
        self.item_embedding: np.ndarray = arrays["item_embedding"]
        """``(n_items, text_dim)`` float32 text embeddings used to fit."""
        self.has_purchases = bool(arrays["has_purchases"])
        self._dynamics = dynamics_params
        n_users = self.click_logit.shape[0]
        self.user_traits = (
            UserTraits(arrays["boredom_scale"].astype(np.float64), arrays["leave_offset"].astype(np.float64))
            if "boredom_scale" in arrays
            else UserTraits.uniform(n_users)
        )
        """Each user's fitted boredom scale and leave offset (from their logged history)."""

    @property
    def item_topic(self) -> np.ndarray:
        """``(n_items,)`` topic of each item."""
        return self._item_topic

    @property
    def dynamics(self) -> DynamicsParams:
        """Fitted within-session dynamics."""
        return self._dynamics

    @property
    def n_users(self) -> int:
        """Users the simulator knows."""
        return int(self.click_logit.shape[0])

    @property
    def n_items(self) -> int:
        """Items in the catalog."""
        return int(self.click_logit.shape[1])

    def slot_bias(self, n_slots: int) -> np.ndarray:
        """Examination probabilities for ``n_slots`` slots (power-law beyond the logged ones)."""
        known = self.position_bias
        if n_slots <= len(known):
            return known[:n_slots]
        power = _position_power(known)
        extra = known[-1] * (np.arange(len(known) + 1, n_slots + 1) / len(known)) ** -power
        return np.concatenate([known, extra])

    def click_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """``(B, K)`` P(click) with position bias, drift and boredom."""
        rows = np.arange(len(users))[:, None]
        topic = self._item_topic[items]
        z = (
            self.click_logit[users[:, None], items]
            + state.interest_drift[rows, topic]
            - self._dynamics.boredom_weight * state.boredom[rows, topic]
        )
        return self.slot_bias(items.shape[1])[None, :] * sigmoid(z)

    def purchase_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """``(B, K)`` P(purchase | click); zeros when the logs had no purchases."""
        if not self.has_purchases:
            return np.zeros(items.shape)
        return sigmoid(self.purchase_logit[users[:, None], items].astype(np.float64))

    def response_tables(self) -> ResponseTables:
        """The fitted logits as they are (see :class:`~simulators.response.ResponseTables`)."""
        return ResponseTables(
            self.click_logit, self.purchase_logit, 0.0, self.has_purchases, self.user_traits
        )

    def save(self, folder: Path) -> None:
        """Write ``simulator.npz`` and ``dynamics.json`` into ``folder`` atomically."""
        arrays = {
            "click_logit": self.click_logit,
            "purchase_logit": self.purchase_logit,
            "position_bias": self.position_bias,
            "item_topic": self._item_topic,
            "user_weight": self.user_weight,
            "history": self.history,
            "item_embedding": self.item_embedding,
            "has_purchases": np.asarray(self.has_purchases),
            "boredom_scale": self.user_traits.boredom_scale,
            "leave_offset": self.user_traits.leave_offset,
        }
        with atomic_path(folder / "simulator.npz") as tmp, tmp.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        write_text_atomic(folder / "dynamics.json", json.dumps(asdict(self._dynamics), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> FittedSimulator:
        """Inverse of :meth:`save`."""
        try:
            with np.load(folder / "simulator.npz") as data:
                arrays = {key: data[key] for key in data.files}
            params = DynamicsParams(**json.loads((folder / "dynamics.json").read_text()))
        except (OSError, ValueError, KeyError) as err:
            raise DataError(f"{folder}: not a fitted simulator ({err})") from None
        return cls(arrays, params)


def _position_power(theta: np.ndarray) -> float:
    """Power p of ``theta_k ~ k^-p`` fitted on the logged slots; 0.8 when there is one slot."""
    if len(theta) < 2:
        return 0.8
    k = np.arange(1, len(theta) + 1, dtype=np.float64)
    return float(max(-np.polyfit(np.log(k[1:]), np.log(np.maximum(theta[1:], 1e-6)), 1)[0], 0.0))
