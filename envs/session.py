"""What the agent sees of one session, in numpy: :class:`VisibleSession`, the bookkeeping that
turns shown slates and their clicks into the next observation (the history grown by clicks, the
topics shown with their decay, the step, the clicks and the repeats, and the observation's
context). The serving path keeps its named sessions in it; the env does the same arithmetic in
its compiled step (:mod:`envs.engine`, the fast path), and ``tests/envs/test_session.py`` pins
the two to the same numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from envs.config import CONTEXT, ID_DTYPE, TOPIC_EXPOSURE_RETENTION
from envs.engine import context_kernel
from envs.fairness import ExposureLedger


@dataclass
class VisibleSession:
    """One session's agent-visible state (see the module docstring)."""

    user: int
    """The user row the session belongs to."""
    history: np.ndarray
    """``(H,)`` clicked items, oldest first, -1 pad: the logged history plus this session's clicks."""
    topic_exposure: np.ndarray
    """``(n_topics,)`` topics shown, decayed by ``TOPIC_EXPOSURE_RETENTION`` per step."""
    key: int = 0
    """The session's key of counter-based draws (the ``explore`` strategy's scores)."""
    step: int = 0
    """Slates shown so far."""
    clicks: float = 0.0
    """Clicks fed back so far."""
    repeat_shown: float = 0.0
    """Slots whose topic the session had shown before."""
    repeat_clicks: float = 0.0
    """... and the clicks they got."""
    _scratch: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.history = np.asarray(self.history, dtype=ID_DTYPE).copy()
        self.topic_exposure = np.asarray(self.topic_exposure, dtype=np.float64).copy()
        self._scratch = np.zeros((1, len(self.topic_exposure)))

    def record_slate(self, topics: np.ndarray) -> np.ndarray:
        """A slate of items of ``topics (K,)`` was shown: ``(K,)`` bool, which slots repeat a topic
        the session showed before; the exposure decays one step and each shown topic gains its
        views (as the engine adds them: once per topic, all its slots together)."""
        repeat = self.topic_exposure[topics] > 0
        self.repeat_shown += float(repeat.sum())
        self.topic_exposure *= TOPIC_EXPOSURE_RETENTION
        shown, views = np.unique(topics, return_counts=True)
        self.topic_exposure[shown] += views
        self.step += 1
        return repeat

    def record_clicks(self, items: np.ndarray, clicks: np.ndarray, repeat: np.ndarray) -> None:
        """The clicks ``(K,)`` 0/1 on a shown slate of ``items (K,)`` whose slots ``repeat`` (from
        :meth:`record_slate`): the clicked items join the history in slot order, the oldest
        dropped when it is full."""
        self.clicks += float(clicks.sum())
        self.repeat_clicks += float(clicks[repeat].sum())
        length = len(self.history)
        for item in items[clicks.astype(bool)]:
            count = int((self.history >= 0).sum())
            if count == length:
                self.history[:-1] = self.history[1:]
                count -= 1
            self.history[count] = item

    def context(
        self,
        ledger: ExposureLedger,
        item_topic: np.ndarray,
        max_steps: int,
        history: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The observation's ``(1, len(CONTEXT))`` context and ``(1, H)`` history mask against
        ledger row 0, by the env's own kernel; ``history``: another ``(H,)`` history than the
        session's (a request that brings its own)."""
        past = np.ascontiguousarray((self.history if history is None else history)[None], dtype=ID_DTYPE)
        context = np.zeros((1, len(CONTEXT)), dtype=np.float32)
        mask = np.zeros(past.shape, dtype=np.int8)
        context_kernel(
            rows=np.zeros(1, dtype=np.int64), provider_exposure=ledger.provider_exposure,
            provider_merit=ledger.provider_merit, popularity_exposure=ledger.popularity_exposure,
            target_share=ledger.target_value, tail_target=ledger.tail_target, steps=np.array([self.step]),
            max_steps=max_steps, session_clicks=np.array([self.clicks]),
            repeat_shown=np.array([self.repeat_shown]), repeat_clicks=np.array([self.repeat_clicks]),
            history=past, item_topic=item_topic, scratch_counts=self._scratch, out_context=context,
            out_history_mask=mask,
        )  # fmt: skip
        return context, mask
