"""The shop: a seeded ground-truth e-commerce world and the logging policy that produced its logs.

Everything is a deterministic function of :class:`ShopConfig`. The true response model stays
callable (:class:`ShopWorld`), so fitted simulators and off-policy estimators can be checked.

Run ``python -m simulators.shop --out DIR`` to write the logs (Parquet) and the ground truth.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError, DataError, check_at_least_one, check_seed
from simulators.core.storage import atomic_path, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.data.plackett_luce import PlackettLuceSlates, mixed_weights
from simulators.dynamics import DynamicsParams, SessionState, UserTraits, sigmoid
from simulators.response import Response, ResponseTables, respond
from simulators.rollout import rollout
from simulators.shop.vocabulary import AGE_GROUPS, CATEGORIES, COLOURS, GENDERS, STYLES

EPOCH = 1_700_000_000  # logs start at this Unix time (2023-11-14)


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
        """The configuration as canonical JSON (also its cache key; drift appears only when on,
        so a shop without drift keeps the key it had before drift existed)."""
        raw = asdict(self)
        if not self.drift.enabled:
            del raw["drift"]
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ShopConfig:
        """Inverse of :meth:`to_json`."""
        raw = json.loads(text)
        raw["dynamics"] = DynamicsParams(**raw["dynamics"])
        raw["variety"] = UserVariety(**raw.get("variety", {"enabled": False}))
        raw["drift"] = ShopDrift(**raw.get("drift", {"enabled": False}))
        return cls(**raw)

    def fingerprint(self) -> str:
        """Short hash of the configuration."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


class ShopWorld:
    """The true shop: catalog, users, their preferences, the response model and the dynamics."""

    def __init__(self, config: ShopConfig):
        self.config = config
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x5_40_9]))
        self._build_catalog(rng)
        self._build_users(rng)
        self.position_bias = (
            np.arange(1, config.slate_size + 1, dtype=np.float64) ** -config.position_bias_power
        )
        """``(K,)`` examination probability per slot (used up to the logs' slate size)."""
        self.day = 0.0
        """The day (since the logs began) the shop's tastes are at (:meth:`at`)."""
        self.logging_policy = PlackettLuceSlates(
            mixed_weights(
                self.prior_popularity[: config.n_items],
                config.logging_popularity_power,
                config.logging_exploration,
            ),
            config.slate_size,
        )
        """Popularity-biased Plackett-Luce slates with uniform exploration: item weights
        ``(1 - eps) * softmax(a * log prior_popularity) + eps / M`` over the logged catalog (items
        launched after the logs never appear in them)."""

    # ------------------------------------------------------------------------- the world
    def _build_catalog(self, rng: np.random.Generator) -> None:
        cfg = self.config
        seller_size = 1.0 / np.arange(1, cfg.n_sellers + 1) ** 1.1
        seller_size /= seller_size.sum()
        seller_categories = rng.dirichlet(np.full(cfg.n_categories, 0.3), size=cfg.n_sellers)
        items, category_price = _draw_items(rng, cfg.n_items, seller_size, seller_categories, None)
        counts = np.bincount(items["seller"], minlength=cfg.n_sellers)
        order = np.argsort(-counts, kind="stable")
        covered = np.cumsum(counts[order]) / cfg.n_items
        n_major = int(np.searchsorted(covered, 0.5) + 1)
        self.seller_is_major = np.zeros(cfg.n_sellers, dtype=bool)
        self.seller_is_major[order[:n_major]] = True
        self.item_launch_day = np.zeros(cfg.n_items)
        """``(n_catalog,)`` the day each item launches (0: in the logs' catalog; later: new)."""
        drift = cfg.drift
        n_new = (
            round(drift.new_items_per_week * cfg.n_items * drift.launch_horizon_weeks) if drift.enabled else 0
        )
        if n_new:  # a stream of their own: the logged catalog is the same with or without them
            new_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1E_0E]))
            new, _ = _draw_items(new_rng, n_new, seller_size, seller_categories, category_price)
            items = {name: np.concatenate([items[name], new[name]]) for name in items}
            launch = cfg.days + np.sort(new_rng.uniform(0.0, 7.0 * drift.launch_horizon_weeks, n_new))
            self.item_launch_day = np.concatenate([self.item_launch_day, launch])
        self.item_seller = items["seller"]
        self.item_category = items["category"]
        self.item_style = items["style"]
        self.item_colour = items["colour"]
        self.item_material = items["material"]
        self.item_noun = items["noun"]
        self.item_quality = items["quality"]
        self.item_log_price_ratio = items["log_price_ratio"]
        self.item_price = np.round(category_price[self.item_category] * np.exp(self.item_log_price_ratio), 2)
        self.item_protected = ~self.seller_is_major[self.item_seller]
        """``(n_catalog,)`` bool: the item comes from a small (long-tail) seller."""
        log_seller = np.log(np.maximum(counts[self.item_seller], 1))  # a new item may be its seller's first
        popularity = np.exp(0.8 * self.item_quality + 0.35 * log_seller)
        self.prior_popularity = popularity / popularity[: cfg.n_items].sum()
        """``(n_catalog,)`` prior popularity, normalised over the logged catalog (what the logging policy draws from)."""

    @property
    def n_catalog(self) -> int:
        """Items in the catalog: the logged ``n_items`` plus those launching after the logs."""
        return len(self.item_category)

    def launched(self, day: float) -> np.ndarray:
        """``(n_catalog,)`` bool: the item is on sale on ``day``."""
        return self.item_launch_day <= day

    def _build_users(self, rng: np.random.Generator) -> None:
        cfg = self.config
        self.user_gender = rng.integers(0, len(GENDERS), cfg.n_users)
        self.user_age_group = rng.choice(len(AGE_GROUPS), size=cfg.n_users, p=[0.2, 0.35, 0.3, 0.15])
        # Interests are mostly those of the user's segment (gender x age group), partly their own.
        segment = self.user_gender * len(AGE_GROUPS) + self.user_age_group
        segment_shares = rng.dirichlet(np.full(cfg.n_categories, 0.3), size=len(GENDERS) * len(AGE_GROUPS))
        own_shares = rng.dirichlet(np.full(cfg.n_categories, 0.4), size=cfg.n_users)
        shares = cfg.segment_weight * segment_shares[segment] + (1 - cfg.segment_weight) * own_shares
        self.user_category_pref = np.log(cfg.n_categories * shares + 0.05)
        """``(n_users, n_categories)`` base interest (logit scale)."""
        n_segments = len(GENDERS) * len(AGE_GROUPS)
        segment_style = rng.normal(0.0, 0.6, (n_segments, len(STYLES)))
        segment_colour = rng.normal(0.0, 0.4, (n_segments, len(COLOURS)))
        own = 1 - cfg.segment_weight
        self.user_style_pref = segment_style[segment] + rng.normal(0.0, 0.6 * own, (cfg.n_users, len(STYLES)))
        self.user_colour_pref = segment_colour[segment] + rng.normal(
            0.0, 0.4 * own, (cfg.n_users, len(COLOURS))
        )
        self.user_price_sensitivity = rng.lognormal(0.0, 0.4, cfg.n_users)
        self.user_activity = rng.lognormal(0.0, 1.0, cfg.n_users)
        self._draw_variety()

    def _draw_variety(self) -> None:
        """Each user's variety factor and patience (:class:`UserVariety`), from a stream of their own."""
        cfg, variety = self.config, self.config.variety
        self.user_variety = np.zeros(cfg.n_users)
        """``(n_users,)`` the log variety factor ``v_u`` (0: the mean user)."""
        self.user_traits = UserTraits.uniform(cfg.n_users)
        """Each user's boredom scale and leave offset (:class:`~simulators.dynamics.UserTraits`)."""
        if not variety.active:
            return
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x7A_12]))
        z, w = rng.standard_normal((2, cfg.n_users))
        sigma, rho = variety.variety_spread, variety.variety_patience_correlation
        self.user_variety = sigma * z
        mean = self.user_category_pref.mean(axis=1, keepdims=True)
        self.user_category_pref = mean + np.exp(-self.user_variety)[:, None] * (
            self.user_category_pref - mean
        )
        self.user_traits = UserTraits(
            boredom_scale=np.exp(self.user_variety - sigma**2 / 2),
            leave_offset=variety.patience_spread * (-rho * z + np.sqrt(1 - rho**2) * w),
        )

    def category_drift(self, day: float) -> np.ndarray:
        """``(n_categories,)`` the change of every category's log interest at ``day`` (zeros when off)."""
        cfg, drift = self.config, self.config.drift
        if not drift.enabled:
            return np.zeros(cfg.n_categories)
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xD7_1F]))
        slope = rng.normal(0.0, drift.trend_sd_per_week, cfg.n_categories)
        phase = rng.uniform(0.0, 2 * np.pi, cfg.n_categories)
        season = np.sin(2 * np.pi * day / drift.season_days + phase) - np.sin(phase)  # 0 at day 0
        return slope * day / 7.0 + drift.season_amplitude * season

    def at(self, day: float) -> ShopWorld:
        """The shop as it is on ``day`` (days since the logs began): every user's category interest
        moved by :meth:`category_drift`. Without drift, the shop itself."""
        if not self.config.drift.enabled:
            return self
        moved = copy.copy(self)
        moved.user_category_pref = self.user_category_pref + self.category_drift(day)[None, :]
        moved.day = float(day)
        return moved

    # ---------------------------------------------------------------------- the response
    def relevance(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """Click logit before position bias: ``users (B,)``, ``items (B, K)`` -> ``(B, K)``."""
        u = users[:, None]
        rows = np.arange(len(users))[:, None]
        category = self.item_category[items]
        interest = self.user_category_pref[u, category] + state.interest_drift[rows, category]
        return (
            interest
            + self.user_style_pref[u, self.item_style[items]]
            + self.user_colour_pref[u, self.item_colour[items]]
            + 0.6 * self.item_quality[items]
            - 0.5 * self.user_price_sensitivity[u] * self.item_log_price_ratio[items]
            - self.config.dynamics.boredom_weight * state.boredom[rows, category]
            + self.config.click_bias
        )

    def slot_bias(self, n_slots: int) -> np.ndarray:
        """``(n_slots,)`` examination probability ``k ** -position_bias_power``."""
        return np.arange(1, n_slots + 1, dtype=np.float64) ** -self.config.position_bias_power

    def response_tables(self) -> ResponseTables:
        """Static click and purchase logits of every (user, item), for the environments."""
        users = np.arange(self.config.n_users)
        click = np.empty((self.config.n_users, self.n_catalog), dtype=np.float32)
        purchase = np.empty_like(click)
        items = np.arange(self.n_catalog)
        for start in range(0, len(users), 512):
            block = users[start : start + 512]
            fresh = SessionState.fresh(len(block), self.config.n_categories)  # no boredom yet: traits moot
            grid = np.broadcast_to(items, (len(block), len(items)))
            click[start : start + 512] = self.relevance(block, grid, fresh)
            purchase[start : start + 512] = self._purchase_logit(block, grid, fresh)
        return ResponseTables(click, purchase, 0.3, has_purchases=True, traits=self.user_traits)

    def click_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """True P(click) of each slot of each slate (position-based model): ``(B, K)``."""
        return self.slot_bias(items.shape[1])[None, :] * sigmoid(self.relevance(users, items, state))

    def purchase_probability(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        """True P(purchase | click): ``(B, K)``."""
        return sigmoid(self._purchase_logit(users, items, state))

    def _purchase_logit(self, users: np.ndarray, items: np.ndarray, state: SessionState) -> np.ndarray:
        u = users[:, None]
        rows = np.arange(len(users))[:, None]
        category = self.item_category[items]
        return (
            self.config.purchase_bias
            + 0.8 * self.item_quality[items]
            - 1.5 * self.user_price_sensitivity[u] * self.item_log_price_ratio[items]
            + 0.3 * (self.user_category_pref[u, category] + state.interest_drift[rows, category])
        )

    @property
    def item_topic(self) -> np.ndarray:
        """``(n_items,)`` the category of each item (the unit of boredom and drift)."""
        return self.item_category

    @property
    def dynamics(self) -> DynamicsParams:
        """The true within-session dynamics."""
        return self.config.dynamics

    def respond(
        self, users: np.ndarray, items: np.ndarray, state: SessionState, rng: np.random.Generator
    ) -> Response:
        """Draw clicks, purchases and leaving for one step, and advance ``state`` in place."""
        return respond(self, users, items, state, rng.random((len(users), 2 * items.shape[1] + 1)))

    # ----------------------------------------------------------------------------- tables
    def item_texts(self) -> list[str]:
        """Readable title and description of every product (what BERT reads)."""
        texts = []
        for j in range(self.n_catalog):
            name, nouns, materials, brands = CATEGORIES[self.item_category[j]]
            brand = brands[self.item_seller[j] % len(brands)]
            style, colour = STYLES[self.item_style[j]], COLOURS[self.item_colour[j]]
            material, noun = materials[self.item_material[j]], nouns[self.item_noun[j]]
            title = f"{brand} {style.title()} {colour.title()} {material.title()} {noun.title()}"
            texts.append(
                f"{title}. A {style} {noun} in {colour} {material} by {brand}, "
                f"from our {name} range. Price ${self.item_price[j]:.2f}."
            )
        return texts

    def items_table(self) -> pd.DataFrame:
        """The catalog in the LoggedData schema plus true attributes (and ``launch_day`` when items
        launch after the logs: the product feed lists them ahead)."""
        table = pd.DataFrame(
            {
                "item_id": np.arange(self.n_catalog, dtype=np.int64),
                "text": self.item_texts(),
                "provider": [f"seller_{s:03d}" for s in self.item_seller],
                "provider_group": np.where(self.item_protected, "small", "major"),
                "category": [CATEGORIES[c][0] for c in self.item_category],
                "price": self.item_price,
            }
        )
        if self.n_catalog > self.config.n_items:
            table["launch_day"] = self.item_launch_day
        return table

    def users_table(self) -> pd.DataFrame:
        """Users with their sensitive attributes."""
        return pd.DataFrame(
            {
                "user_id": np.arange(self.config.n_users, dtype=np.int64),
                "gender": np.asarray(GENDERS)[self.user_gender],
                "age_group": np.asarray(AGE_GROUPS)[self.user_age_group],
            }
        )

    def ground_truth_arrays(self) -> dict[str, np.ndarray]:
        """Every true parameter, for ``ground_truth.npz`` (``item_launch_day`` when items launch after the logs)."""
        launches = {"item_launch_day": self.item_launch_day} if self.n_catalog > self.config.n_items else {}
        return launches | {
            "item_category": self.item_category,
            "item_seller": self.item_seller,
            "item_style": self.item_style,
            "item_colour": self.item_colour,
            "item_quality": self.item_quality,
            "item_price": self.item_price,
            "item_log_price_ratio": self.item_log_price_ratio,
            "item_protected": self.item_protected,
            "prior_popularity": self.prior_popularity,
            "logging_weights": self.logging_policy.weights,
            "position_bias": self.position_bias,
            "user_category_pref": self.user_category_pref,
            "user_style_pref": self.user_style_pref,
            "user_colour_pref": self.user_colour_pref,
            "user_price_sensitivity": self.user_price_sensitivity,
            "user_activity": self.user_activity,
            "user_variety": self.user_variety,
            "user_boredom_scale": self.user_traits.boredom_scale,
            "user_leave_offset": self.user_traits.leave_offset,
            "user_gender": self.user_gender,
            "user_age_group": self.user_age_group,
        }

    # ------------------------------------------------------------------------------- logs
    def simulate_logs(self, n_sessions: int | None = None, log_seed: int | None = None) -> LoggedData:
        """Run the logging policy for ``n_sessions`` sessions (default: the config's) and return
        validated logs. ``log_seed`` draws other sessions from the same world (for OPE studies)."""
        cfg = self.config
        n_sessions = cfg.n_sessions if n_sessions is None else n_sessions
        entropy = [cfg.seed, 0x10_6] if log_seed is None else [cfg.seed, 0x10_6, log_seed]
        rng = np.random.default_rng(np.random.SeedSequence(entropy))
        activity = self.user_activity / self.user_activity.sum()
        session_user = rng.choice(cfg.n_users, size=n_sessions, p=activity)
        session_start = np.sort(rng.uniform(0, cfg.days * 86_400, n_sessions)).astype(np.int64) + EPOCH
        policy = self.logging_policy
        chunks: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # A drifting shop plays each week's sessions in that week's world (at its middle day).
        week = (
            (session_start - EPOCH) // (7 * 86_400)
            if cfg.drift.enabled
            else np.zeros(n_sessions, dtype=np.int64)
        )
        for w in np.unique(week):
            sessions = np.flatnonzero(week == w)
            world = self.at(7.0 * w + 3.5)
            for s in rollout(
                world,
                session_user[sessions],
                lambda active, g: policy.sample(len(active), g),
                cfg.max_steps,
                rng,
                cfg.n_categories,
            ):
                propensity = policy.slate_probability(s.slates)
                chunks.append(
                    (sessions[s.active], s.step, s.slates, s.response.click, s.response.purchase, propensity)
                )
        return self._logs_table(chunks, session_user, session_start)

    def _logs_table(self, chunks: list, session_user: np.ndarray, session_start: np.ndarray) -> LoggedData:
        k = self.config.slate_size
        session = np.concatenate([np.repeat(c[0], k) for c in chunks])
        step = np.concatenate([np.full(len(c[0]) * k, c[1]) for c in chunks])
        table = pd.DataFrame(
            {
                "user_id": session_user[session].astype(np.int64),
                "item_id": np.concatenate([c[2].ravel() for c in chunks]),
                "timestamp": session_start[session] + 30 * step,
                "session_id": session.astype(np.int64),
                "position": np.tile(np.arange(1, k + 1), len(session) // k).astype(np.int64),
                "click": np.concatenate([c[3].ravel() for c in chunks]).astype(np.int64),
                "purchase": np.concatenate([c[4].ravel() for c in chunks]).astype(np.int64),
                "propensity": np.concatenate([np.repeat(c[5], k) for c in chunks]),
                "slate_id": (session * self.config.max_steps + step).astype(np.int64),
            }
        )
        table = table.sort_values(["session_id", "timestamp", "position"], kind="stable").reset_index(
            drop=True
        )
        logs = LoggedData(
            interactions=table,
            items=self.items_table(),
            users=self.users_table(),
            sensitive_attributes=("gender", "age_group"),
            source=f"shop(seed={self.config.seed})",
        )
        return logs.validate()


def _draw_items(
    rng: np.random.Generator, n: int, seller_size: np.ndarray, seller_categories: np.ndarray,
    category_price: np.ndarray | None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
    """``n`` products' seller, category, style, colour, material, noun, quality and log price
    ratio, in the draw order the catalog always had; ``category_price`` drawn when ``None``."""
    seller = rng.choice(len(seller_size), size=n, p=seller_size)
    cum = seller_categories.cumsum(axis=1)
    draws = rng.random(n)[:, None]
    category = np.minimum((draws > cum[seller]).sum(axis=1), seller_categories.shape[1] - 1)
    style = rng.integers(0, len(STYLES), n)
    colour = rng.integers(0, len(COLOURS), n)
    material = rng.integers(0, 4, n)
    noun = rng.integers(0, 4, n)
    quality = rng.normal(0.0, 0.7, n)
    if category_price is None:
        category_price = np.exp(rng.uniform(np.log(15), np.log(250), seller_categories.shape[1]))
    log_price_ratio = rng.normal(0.0, 0.45, n) + 0.25 * (style == STYLES.index("premium"))
    items = {"seller": seller, "category": category, "style": style, "colour": colour, "material": material,
             "noun": noun, "quality": quality, "log_price_ratio": log_price_ratio}  # fmt: skip
    return items, category_price


def write_shop(config: ShopConfig, out: Path) -> tuple[LoggedData, ShopWorld]:
    """Generate the shop and write ``interactions/items/users.parquet``, ``ground_truth.npz``
    and ``config.json`` into ``out`` (each file atomically)."""
    world = ShopWorld(config)
    logs = world.simulate_logs()
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("interactions", logs.interactions), ("items", logs.items), ("users", logs.users)):
        with atomic_path(out / f"{name}.parquet") as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(out / "ground_truth.npz") as tmp, tmp.open("wb") as handle:
        arrays: dict[str, Any] = world.ground_truth_arrays()
        np.savez(handle, **arrays)
    write_text_atomic(out / "config.json", json.dumps(json.loads(config.to_json()), indent=2) + "\n")
    return logs, world


def read_shop_config(folder: Path) -> ShopConfig:
    """The :class:`ShopConfig` stored in a folder written by :func:`write_shop`."""
    path = folder / "config.json"
    if not path.is_file():
        raise DataError(f"{folder}: not a shop folder (no config.json)")
    return ShopConfig.from_json(path.read_text(encoding="utf-8"))
