"""What the ranking API does, without HTTP: answer a ranking request and log its slate, take a
slate's feedback. The FastAPI app (:mod:`agents.serve.app`) and the in-process deployments of
``agents.adapt`` call the same :class:`Service`, so both write the same log."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.serve.logbook import Logbook
from agents.serve.ranker import Ranker
from simulators.data.logs import purchases_imply_clicks


@dataclass(frozen=True)
class Refusal:
    """A request the service turns down: the HTTP status, the field at fault, why."""

    status: int
    loc: tuple[str | int, ...]
    message: str


@dataclass
class Service:
    """A ranker and its log (see the module docstring)."""

    ranker: Ranker
    logbook: Logbook
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    """Prefix of this process's event ids (a restarted server never reuses one)."""
    answered: int = 0
    _last_time: float = 0.0

    def rank(
        self,
        user_id: Any,
        history: list[Any] | None = None,
        candidates: list[Any] | None = None,
        slate_size: int | None = None,
        temperature: float = 0.0,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Rank, hold the slate's rows until its feedback, and answer the API's ``/rank`` object.
        Raises :class:`~agents.serve.ranker.RequestError` for a bad request."""
        ranker = self.ranker
        now = max(
            time.time(), self._last_time + 1e-6
        )  # strictly increasing: a session's steps keep their order
        ranked = ranker.rank(user_id, history, candidates, slate_size, temperature, session_id, now)
        self._last_time = now
        self.answered += 1
        event_id = f"{self.token}-{self.answered}"
        k = len(ranked.items)
        prefix = np.cumprod(ranked.slot_propensity)
        slate = ranker.item_ids[ranked.items].tolist()
        user = ranker.user_ids[ranked.user]
        rows = {
            "user_id": [user.item() if hasattr(user, "item") else user] * k,
            "item_id": slate,
            "timestamp": [now] * k,
            "session_id": [session_id or event_id] * k,
            "position": list(range(1, k + 1)),
            "click": [0] * k,
            "purchase": [0] * k,
            "propensity": [float(prefix[-1])] * k,
            "prefix_propensity": prefix.tolist(),
            "slot_propensity": ranked.slot_propensity.tolist(),
            "slate_id": [event_id] * k,
            "score": ranked.scores.tolist(),
            "temperature": [float(temperature)] * k,
            "policy_version": [ranker.version] * k,
            "feedback": [0] * k,
        }
        self.logbook.shown(event_id, rows, ranked)
        return {
            "event_id": event_id, "slate": slate, "scores": ranked.scores.tolist(), "propensity": float(prefix[-1]),
            "slot_propensities": ranked.slot_propensity.tolist(), "policy_version": ranker.version,
        }  # fmt: skip

    def feedback(
        self, event_id: str, clicks: list[int], purchases: list[int] | None = None
    ) -> Refusal | None:
        """Take a shown slate's clicks (and purchases); ``None`` when taken, else why not."""
        logbook = self.logbook
        state = logbook.status(event_id)
        if state == "unknown":
            return Refusal(404, ("event_id",), f"unknown event_id {event_id!r}: no slate of this server")
        if state != "pending":
            why = (
                "its feedback was already taken"
                if state == "reported"
                else "it was written without feedback (timeout)"
            )
            return Refusal(409, ("event_id",), f"event_id {event_id!r}: {why}")
        k = len(logbook.pending[event_id].rows["item_id"])
        if len(clicks) != k:
            return Refusal(
                422, ("clicks",), f"clicks: one 0/1 per slot of the slate ({k}), got {len(clicks)}"
            )
        bought = purchases if purchases is not None else [0] * k
        if len(bought) != k:
            return Refusal(422, ("purchases",), f"purchases: one 0/1 per slot ({k}), got {len(bought)}")
        clicks = purchases_imply_clicks(np.asarray(clicks), np.asarray(bought))[
            0
        ].tolist()  # the loaders' rule
        event = logbook.report(event_id, clicks, bought)
        if event is None:  # taken by a concurrent report between the check and now
            return Refusal(409, ("event_id",), f"event_id {event_id!r}: its feedback was already taken")
        self.ranker.feedback(event.ranked, np.asarray(clicks))
        return None
