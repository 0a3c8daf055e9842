"""Within-session user dynamics: interest drift, category boredom and the leave hazard.

Batched and in place over ``(batch, n_categories)`` arrays. The shop's ground truth and the
fitted simulator share these equations and differ only in their :class:`DynamicsParams` and
in each user's :class:`UserTraits` (how fast they tire of a category, how patient they are).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from simulators.core.errors import ConfigError


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -x))


@dataclass(frozen=True)
class DynamicsParams:
    """Parameters of the within-session dynamics (all per step)."""

    drift_per_click: float = 0.35
    """Interest added to a category each time one of its items is clicked."""
    drift_retention: float = 0.9
    """Share of the accumulated interest drift kept from one step to the next."""
    boredom_per_view: float = 0.12
    """Boredom added to a category for each of its items shown in a slate."""
    boredom_per_click: float = 0.45
    """Boredom added to a category for each of its items clicked."""
    boredom_retention: float = 0.8
    """Share of boredom kept from one step to the next (1 - decay)."""
    boredom_weight: float = 0.6
    """Relevance (logit) lost per unit of boredom in the item's category."""
    leave_bias: float = -2.6
    """Logit of the leave hazard after a neutral step."""
    leave_per_boredom: float = 0.35
    """Added to the leave logit per unit of mean boredom over the slate's categories."""
    leave_if_no_click: float = 1.1
    """Added to the leave logit when the slate got no click (dissatisfaction)."""
    leave_per_click: float = -0.35
    """Added to the leave logit per click in the slate (satisfaction keeps users)."""
    leave_first_session: float = 0.0
    """Added to the leave logit in a user's first visit of the logs (signing up: on MovieLens-100K a
    median 44 steps against 4 later). The envs (and OPE's truth and serving's traffic) play
    returning visits, so only the logs (the shop's logger), the fit and its report meet it."""
    leave_session_sd: float = 0.0
    """Spread of each session's own leave offset, ``N(0, sd^2)`` drawn when the session starts and
    added to the leave logit with its user's (visits differ in intent beyond who the user is; the
    fit's random effect per session, :mod:`simulators.fit.sessions`). 0: none."""

    def __post_init__(self) -> None:
        for name in ("drift_retention", "boredom_retention"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1], got {value}")
        for name in (
            "drift_per_click",
            "boredom_per_view",
            "boredom_per_click",
            "boredom_weight",
            "leave_session_sd",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                raise ConfigError(f"{name} must be finite, got {value}")


@dataclass(frozen=True)
class UserTraits:
    """Per-user modifiers of the shared dynamics (the population mean: scale 1, offset 0)."""

    boredom_scale: np.ndarray
    """``(n_users,)`` float64 >= 0: multiplies every boredom increment (variety seekers tire
    of a category faster)."""
    leave_offset: np.ndarray
    """``(n_users,)`` float64: added to the leave logit (negative: more patient)."""

    @classmethod
    def uniform(cls, n_users: int) -> UserTraits:
        """Every user at the population mean (a homogeneous population)."""
        return cls(np.ones(n_users), np.zeros(n_users))

    def __post_init__(self) -> None:
        if self.boredom_scale.shape != self.leave_offset.shape or self.boredom_scale.ndim != 1:
            raise ConfigError("UserTraits arrays must be 1-D and of one length")
        if not (np.isfinite(self.boredom_scale).all() and np.isfinite(self.leave_offset).all()):
            raise ConfigError("UserTraits must be finite")
        if (self.boredom_scale < 0).any():
            raise ConfigError("UserTraits.boredom_scale must be >= 0")

    @property
    def is_uniform(self) -> bool:
        """True when every user is at the population mean."""
        return bool((self.boredom_scale == 1).all() and (self.leave_offset == 0).all())

    def as_array(self) -> np.ndarray:
        """``(n_users, 2)`` float64: boredom scale, leave offset (the engine's layout)."""
        return np.column_stack([self.boredom_scale, self.leave_offset]).astype(np.float64)


@dataclass
class SessionState:
    """Mutable within-session state of a batch of users."""

    interest_drift: np.ndarray
    """``(batch, n_categories)`` float64: interest gained from recent consumption."""
    boredom: np.ndarray
    """``(batch, n_categories)`` float64: accumulated boredom per category."""
    boredom_scale: np.ndarray | None = None
    """``(batch,)`` each session's user's :attr:`UserTraits.boredom_scale` (``None``: all 1)."""
    leave_offset: np.ndarray | None = None
    """``(batch,)`` added to each session's leave logit: its user's :attr:`UserTraits.leave_offset`,
    plus, where :func:`~simulators.rollout.rollout` draws them, the session's own offset and a
    first visit's term (``None``: all 0)."""

    @classmethod
    def fresh(
        cls, batch: int, n_categories: int, traits: UserTraits | None = None, users: np.ndarray | None = None
    ) -> SessionState:
        """A state with no drift and no boredom (the start of a session); ``traits`` of ``users
        (batch,)`` when the population is not homogeneous."""
        zeros = np.zeros((batch, n_categories), dtype=np.float64)
        if traits is None or traits.is_uniform or users is None:
            return cls(interest_drift=zeros, boredom=zeros.copy())
        return cls(zeros, zeros.copy(), traits.boredom_scale[users].copy(), traits.leave_offset[users].copy())

    def take(self, rows: np.ndarray) -> SessionState:
        """The state of a subset of the batch (a copy)."""
        scale = None if self.boredom_scale is None else self.boredom_scale[rows].copy()
        offset = None if self.leave_offset is None else self.leave_offset[rows].copy()
        return SessionState(self.interest_drift[rows].copy(), self.boredom[rows].copy(), scale, offset)


def slate_category_counts(categories: np.ndarray, weights: np.ndarray, n_categories: int) -> np.ndarray:
    """Sum ``weights`` per category for each row: ``(batch, K)`` x2 -> ``(batch, n_categories)``."""
    batch = categories.shape[0]
    flat = (np.arange(batch)[:, None] * n_categories + categories).ravel()
    counts = np.bincount(flat, weights=weights.ravel(), minlength=batch * n_categories)
    return counts.reshape(batch, n_categories)


def leave_probability(
    params: DynamicsParams, state: SessionState, categories: np.ndarray, clicks: np.ndarray
) -> np.ndarray:
    """Hazard of leaving after a step: ``(batch,)`` from the slate ``categories`` and ``clicks``.

    Uses the boredom *after* the step's update, so repeated categories raise the hazard.
    """
    rows = np.arange(categories.shape[0])[:, None]
    mean_boredom = state.boredom[rows, categories].mean(axis=1)
    n_clicks = clicks.sum(axis=1)
    logit = (
        params.leave_bias
        + params.leave_per_boredom * mean_boredom
        + params.leave_if_no_click * (n_clicks == 0)
        + params.leave_per_click * n_clicks
    )
    if state.leave_offset is not None:
        logit = logit + state.leave_offset
    return sigmoid(logit)


def advance(
    params: DynamicsParams,
    state: SessionState,
    categories: np.ndarray,
    clicks: np.ndarray,
    shown: np.ndarray | None = None,
) -> None:
    """Update ``state`` in place after a slate of ``categories`` (batch, K) got ``clicks``.

    ``shown (batch, K)`` marks the slots that held an item (default: all).
    """
    n_categories = state.boredom.shape[1]
    seen = np.ones(categories.shape) if shown is None else shown.astype(np.float64)
    viewed = slate_category_counts(categories, seen, n_categories)
    clicked = slate_category_counts(categories, clicks * seen, n_categories)
    state.interest_drift *= params.drift_retention
    state.interest_drift += params.drift_per_click * clicked
    state.boredom *= params.boredom_retention
    added = params.boredom_per_view * viewed + params.boredom_per_click * clicked
    if state.boredom_scale is not None:
        added *= state.boredom_scale[:, None]
    state.boredom += added
