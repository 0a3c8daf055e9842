"""The shop's configuration: its size and seed (:class:`ShopConfig`), how its users differ
(:class:`UserVariety`) and how its tastes and catalog move over time (:class:`ShopDrift`).
Every part of the shop is a deterministic function of a :class:`ShopConfig`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from simulators.core.errors import ConfigError, check_at_least_one, check_seed
from simulators.dynamics import DynamicsParams
from simulators.shop.vocabulary import CATEGORIES

EPOCH = 1_700_000_000
"""The Unix time the logs start at (2023-11-14)."""


@dataclass(frozen=True)
class UserVariety:
    """How the shop's users differ beyond their tastes: a time-stable taste for variety and a
    patience of their own (README, "Users who differ", gives the source of each figure).

    User ``u`` draws ``z_u, w_u ~ N(0, 1)`` (a stream of their own: the rest of the world is the
    same with the spread on or off). Their variety factor ``v_u = variety_spread * z_u`` makes
    them tire of a category ``exp(v_u - variety_spread**2 / 2)`` times as fast as the mean user
    and spreads their category interests around their own mean by ``exp(-v_u)`` (specialists,
    ``z < 0``, have sharper interests and tire slowly; generalists the reverse). Their leave
    logit moves by ``patience_spread * (-rho * z_u + sqrt(1 - rho**2) * w_u)`` with ``rho =
    variety_patience_correlation``: generalists stay longer when ``rho > 0``.
    """

    enabled: bool = True
    """False: every user gets the population mean (boredom scale 1, leave offset 0, interests
    as drawn), which reproduces the homogeneous shop exactly."""
    variety_spread: float = 0.25
    """Standard deviation of the log variety factor ``v_u``: the spread whose breadth of free
    choices (normalised category entropy of 20 picks) varies across users as MovieLens-100K
    users' genre breadth does (sd 0.099; ``python -m benchmarks.heterogeneity``)."""
    patience_spread: float = 0.65
    """Standard deviation of the per-user leave-logit offset: the spread at which 18% of the
    variance of log session length lies between users, as on MovieLens-100K (ICC 0.177)."""
    variety_patience_correlation: float = 0.0467
    """Correlation of variety taste with patience (> 0: generalists leave less): MovieLens-100K's
    rank correlation of genre breadth with mean log session length."""

    def __post_init__(self) -> None:
        for name in ("variety_spread", "patience_spread"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0.0 <= value <= 5.0):
                raise ConfigError(f"UserVariety.{name} must lie in [0, 5], got {value}")
        if not -1.0 <= self.variety_patience_correlation <= 1.0:
            raise ConfigError("UserVariety.variety_patience_correlation must lie in [-1, 1]")

    @property
    def active(self) -> bool:
        """True when users differ at all."""
        return self.enabled and (self.variety_spread > 0 or self.patience_spread > 0)


@dataclass(frozen=True)
class ShopDrift:
    """How the shop's tastes and catalog move over time: each category's interest (log scale)
    follows a linear trend plus a yearly season, ``delta_c(t) = b_c t / 7 + A sin(2 pi t /
    season_days + phi_c)`` at day ``t``, with ``b_c ~ N(0, trend_sd_per_week^2)`` and ``phi_c``
    uniform, from a stream of their own; and new items launch after the logs (drawn like the
    catalog's, from a stream of their own, launch days uniform over the horizon). Off (the
    default) the shop is today's, bit for bit. The magnitudes are MovieLens-100K's, measured by
    ``python -m benchmarks.drift`` (``benchmarks/results/drift.json``): genres' weekly like-shares
    fitted on the log scale with a trend and a yearly season jointly, and the weekly share of
    films rated for the first time."""

    enabled: bool = False
    """Whether tastes drift (``load_logs("shop:drift")`` turns it on)."""
    trend_sd_per_week: float = 0.028
    """Spread across categories of the weekly trend of log interest (measured: 0.028 across
    MovieLens-100K's 12 main genres; 0.0065 by a trend-only fit)."""
    season_amplitude: float = 0.32
    """Amplitude of each category's yearly swing of log interest (measured: 0.32, the root mean
    square over the genres)."""
    season_days: float = 365.25
    """Period of the season."""
    new_items_per_week: float = 0.0139
    """Items launched per week after the logs, as a share of the logged catalog (measured: 1.39%
    of MovieLens-100K's films are first rated in a given week, the mean over its weeks after the
    first). A launched item is new to the logs: known only by its text and attributes (cold start)."""
    launch_horizon_weeks: int = 13
    """Weeks after the logs whose launches the catalog lists (each item with its ``launch_day``):
    the shop's product feed a quarter ahead. 0: no new items."""

    def __post_init__(self) -> None:
        if not (np.isfinite(self.new_items_per_week) and 0 <= self.new_items_per_week <= 1):
            raise ConfigError(
                f"ShopDrift.new_items_per_week must lie in [0, 1], got {self.new_items_per_week}"
            )
        if self.launch_horizon_weeks < 0:
            raise ConfigError(f"ShopDrift.launch_horizon_weeks must be >= 0, got {self.launch_horizon_weeks}")
        for name in ("trend_sd_per_week", "season_amplitude"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ConfigError(f"ShopDrift.{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not (np.isfinite(self.season_days) and self.season_days > 0):
            raise ConfigError(f"ShopDrift.season_days must be > 0, got {self.season_days}")


@dataclass(frozen=True)
class ShopReturns:
    """Users who come back: after a session ends, its user's next session starts after a gap
    drawn from a Weibull proportional-hazards model (:mod:`simulators.retention`) of what the
    session passed on (its :data:`~simulators.retention.COVARIATES`, measured on the session as
    the logs record it) and of the user's frailty, their activity over the mean activity (the
    shop's "how often each user starts a session"; log-normal with sd 1 on the log scale). No gap
    is shorter than an hour (:data:`~simulators.retention.MIN_GAP_DAYS`: closer visits are one
    session, as MovieLens's sessions are). The logs are then each user's sessions played in time
    order over the logged days, and their number is the model's outcome, not
    ``ShopConfig.n_sessions``. Off (the default) the shop is today's, bit for bit.

    Every magnitude is MovieLens-100K's, measured by ``python -m benchmarks.returns``
    (``benchmarks/results/returns-movielens.json``, ``frailty``: the model of this form, with a
    gamma frailty per user, truncated at an hour; it predicts the gaps of the log's last third
    from the first two thirds within 0.061, the KS statistic with censoring). Only the sessions
    before move the hazard clearly; a session's like rate, length and topic repetition are within
    noise of no effect (the same fit with each user's means beside the covariates instead of a
    frailty finds length at +0.109, se 0.030, and the rest as here). The published live effects of
    optimising for returns are small too: Kuaishou's RLUR (Cai et al., WWW 2023 companion) +0.45%
    app opens against a CEM-tuned baseline; KuaiSim's retention task (Zhao et al., 2023) return
    time 3.48 against CEM's 3.57 days."""

    enabled: bool = False
    """Whether users' sessions follow the return model (``load_logs("shop:returns")`` turns it on)."""
    shape: float = 0.4403
    """Weibull shape (measured: 0.440; < 1, the chance of returning falls with time since the last visit)."""
    scale_days: float | None = None
    """Weibull scale in days for a session at :attr:`centre` and a user of mean activity. ``None``:
    the scale at which the users visit as often as today's shop's (``n_sessions`` over ``days``
    in expectation, :func:`~simulators.retention.visit_scale`): the shop keeps its own traffic,
    and takes the form of the returns (shape, effects) from MovieLens-100K, whose own scale is
    115.9 days at mean frailty (its users visit far less often than the shop's)."""
    beta: tuple[float, float, float, float] = (-0.0788, 0.0148, 0.0441, -0.3959)
    """Log hazard ratio per unit of each covariate, in the order of
    :data:`~simulators.retention.COVARIATES` (measured: like rate -0.079, se 0.081; log length
    0.015, se 0.032; topic repetition 0.044, se 0.138; log sessions before -0.396, se 0.041)."""
    centre: tuple[float, float, float, float] = (0.5385, 2.584, 0.5515, 1.166)
    """The covariates' means on MovieLens-100K, where :attr:`scale_days` holds."""

    def __post_init__(self) -> None:
        if isinstance(self.beta, list) or isinstance(self.centre, list):  # (as config.json holds them)
            object.__setattr__(self, "beta", tuple(self.beta))
            object.__setattr__(self, "centre", tuple(self.centre))
        if len(self.beta) != 4 or len(self.centre) != 4:
            raise ConfigError("ShopReturns.beta and .centre hold one value per covariate (4)")
        scale = 1.0 if self.scale_days is None else self.scale_days  # (None: set by the traffic)
        values = (self.shape, scale, *self.beta, *self.centre)
        if not all(np.isfinite(v) for v in values) or self.shape <= 0 or scale <= 0:
            raise ConfigError(
                f"ShopReturns needs a finite shape and scale_days > 0 and finite beta and centre, got {self}"
            )


@dataclass(frozen=True)
class ShopConfig:
    """Size, seed and behaviour of the synthetic shop."""

    seed: int = 0
    """Seed of everything: catalog, users, true preferences and the logs."""
    n_users: int = 10_000
    """Number of users."""
    n_items: int = 2_000
    """Number of products."""
    n_categories: int = 20
    """Number of product categories (at most the 20 built-in vocabularies)."""
    n_sellers: int = 200
    """Number of sellers (providers); their sizes follow a Zipf-like long tail."""
    n_sessions: int = 20_000
    """Number of logged sessions."""
    slate_size: int = 5
    """Items shown per step in the logs."""
    max_steps: int = 20
    """Session cap of the logs (steps per session at most)."""
    position_bias_power: float = 0.8
    """Examination probability of slot k (1-based) is ``k ** -position_bias_power``."""
    click_bias: float = -2.2
    """Logit offset of the click model."""
    purchase_bias: float = -2.0
    """Logit offset of P(purchase | click)."""
    logging_popularity_power: float = 1.0
    """Exponent on prior popularity in the logging policy (0 = uniform)."""
    logging_exploration: float = 0.2
    """Uniform exploration mass mixed into the logging policy's item weights."""
    segment_weight: float = 0.9
    """Share of a user's tastes (categories, styles, colours) set by their segment (gender x
    age group); the rest is their own, which logs reveal only through that user's clicks."""
    days: int = 30
    """Length of the logged period in days."""
    dynamics: DynamicsParams = field(default_factory=DynamicsParams)
    """True within-session dynamics (of the mean user)."""
    variety: UserVariety = field(default_factory=UserVariety)
    """How users differ in variety taste and patience (``UserVariety(enabled=False)``: they do not)."""
    drift: ShopDrift = field(default_factory=ShopDrift)
    """How tastes move over the days (off by default: :class:`ShopDrift`)."""
    returns: ShopReturns = field(default_factory=ShopReturns)
    """How users come back between sessions (off by default: :class:`ShopReturns`)."""

    def __post_init__(self) -> None:
        check_seed("ShopConfig.seed", self.seed)
        positive = ("n_users", "n_items", "n_sellers", "n_sessions", "slate_size", "max_steps", "days")
        check_at_least_one(self, positive, "ShopConfig.")
        if not 1 <= self.n_categories <= len(CATEGORIES):
            raise ConfigError(f"ShopConfig.n_categories must lie in [1, {len(CATEGORIES)}]")
        if self.slate_size > self.n_items:
            raise ConfigError("ShopConfig.slate_size must be <= n_items")
        if not 0.0 < self.logging_exploration <= 1.0:
            raise ConfigError("ShopConfig.logging_exploration must lie in (0, 1]")
        if not 0.0 <= self.segment_weight <= 1.0:
            raise ConfigError("ShopConfig.segment_weight must lie in [0, 1]")
        if self.position_bias_power < 0:
            raise ConfigError("ShopConfig.position_bias_power must be >= 0")

    def to_json(self) -> str:
        """The configuration as canonical JSON (also its cache key; drift, returns and the visits'
        own leave terms appear only when on, so a shop without them keeps the key it had before
        they existed)."""
        raw = asdict(self)
        for name in ("drift", "returns"):
            if not getattr(self, name).enabled:
                del raw[name]
        for name in ("leave_first_session", "leave_session_sd"):
            if raw["dynamics"][name] == 0:
                del raw["dynamics"][name]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShopConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["dynamics"] = DynamicsParams(**raw["dynamics"])
        raw["variety"] = UserVariety(**raw.get("variety", {"enabled": False}))
        raw["drift"] = ShopDrift(**raw.get("drift", {"enabled": False}))
        raw["returns"] = ShopReturns(**raw.get("returns", {"enabled": False}))
        return cls(**raw)

    def fingerprint(self) -> str:
        """Short hash of the configuration."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
