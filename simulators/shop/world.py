"""The shop's ground truth: :class:`ShopWorld`, a seeded e-commerce world whose true response
model stays callable, so fitted simulators and off-policy estimators can be checked against it.

It puts together the parts, each in a module of its own: the configuration (``config``), the
catalog (``catalog``), the users (``users``), the drift of tastes (``drift``) and the logging
policy with its logs (``logger``); this module holds the true response (click, purchase) and the
ground truth's arrays. Everything is a deterministic function of :class:`ShopConfig`.

Run ``python -m simulators.shop --out DIR`` to write the logs (Parquet) and the ground truth
(``simulators.shop.files``).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from simulators.data.logs import LoggedData
from simulators.dynamics import DynamicsParams, SessionState, sigmoid
from simulators.response import Response, ResponseTables, respond
from simulators.retention import COVARIATES, ReturnProcess, visit_scale
from simulators.shop.catalog import draw_catalog, item_texts, items_table
from simulators.shop.config import ShopConfig
from simulators.shop.drift import category_drift
from simulators.shop.logger import logging_policy, simulate_logs
from simulators.shop.users import draw_users, users_table


class ShopWorld:
    """The true shop: catalog, users, their preferences, the response model and the dynamics."""

    def __init__(self, config: ShopConfig):
        self.config = config
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x5_40_9]))
        self.catalog = draw_catalog(config, rng)
        self.users = draw_users(config, rng)  # continues the catalog's stream
        catalog, users = self.catalog, self.users
        self.item_seller, self.item_category = catalog.seller, catalog.category
        self.item_style, self.item_colour = catalog.style, catalog.colour
        self.item_material, self.item_noun = catalog.material, catalog.noun
        self.item_quality, self.item_log_price_ratio = catalog.quality, catalog.log_price_ratio
        self.item_price, self.item_launch_day = catalog.price, catalog.launch_day
        self.item_protected, self.prior_popularity = catalog.protected, catalog.prior_popularity
        self.seller_is_major = catalog.seller_is_major
        self.user_gender, self.user_age_group = users.gender, users.age_group
        self.user_category_pref = users.category_pref
        """``(n_users, n_categories)`` base interest (logit scale), moved by drift in :meth:`at`."""
        self.user_style_pref, self.user_colour_pref = users.style_pref, users.colour_pref
        self.user_price_sensitivity, self.user_activity = users.price_sensitivity, users.activity
        self.user_variety, self.user_traits = users.variety, users.traits
        self.position_bias = self.slot_bias(config.slate_size)
        """``(K,)`` examination probability per slot (used up to the logs' slate size)."""
        self.day = 0.0
        """The day (since the logs began) the shop's tastes are at (:meth:`at`)."""
        self._returns: ReturnProcess | None = None
        self.logging_policy = logging_policy(config, self.prior_popularity)
        """The policy that wrote the logs (:func:`~simulators.shop.logger.logging_policy`)."""

    # ------------------------------------------------------------------------- the world
    @property
    def n_catalog(self) -> int:
        """Items in the catalog: the logged ``n_items`` plus those launching after the logs."""
        return len(self.item_category)

    def launched(self, day: float) -> np.ndarray:
        """``(n_catalog,)`` bool: the item is on sale on ``day``."""
        return self.item_launch_day <= day

    def category_drift(self, day: float) -> np.ndarray:
        """``(n_categories,)`` the change of every category's log interest at ``day`` (zeros when off)."""
        return category_drift(self.config, day)

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
        return item_texts(self.catalog)

    def items_table(self) -> pd.DataFrame:
        """The catalog in the LoggedData schema plus true attributes (:func:`~simulators.shop.catalog.items_table`)."""
        return items_table(self.catalog, self.config.n_items)

    def users_table(self) -> pd.DataFrame:
        """Users with their sensitive attributes."""
        return users_table(self.users)

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

    def return_process(self) -> ReturnProcess:
        """How users come back after a session: :class:`~simulators.shop.config.ShopReturns` when
        on (each user's offset the log of their activity over the mean); otherwise today's shop,
        whose sessions fall on each user as a Poisson process at ``n_sessions`` x their activity
        share over the logged days (shape 1, no covariate moves it; offsets the log activity)."""
        if self._returns is None:
            self._returns = self._return_process()
        return self._returns

    def _return_process(self) -> ReturnProcess:
        cfg, returns = self.config, self.config.returns
        offset = np.log(self.user_activity)
        if returns.enabled:  # the frailty: activity over its mean
            offset = offset - np.log(self.user_activity.mean())
            beta, centre = np.array(returns.beta), np.array(returns.centre)
            scale = returns.scale_days
            if scale is None:  # today's traffic (a stream of its own)
                rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5CA1E]))
                scale = visit_scale(returns.shape, beta, centre, offset, cfg.days, cfg.n_sessions, rng)
            return ReturnProcess(returns.shape, scale, beta, centre, offset)
        scale = cfg.days * float(self.user_activity.sum()) / cfg.n_sessions
        return ReturnProcess(
            1.0, scale, np.zeros(len(COVARIATES)), np.zeros(len(COVARIATES)), offset, min_gap=0.0
        )

    # ------------------------------------------------------------------------------- logs
    def simulate_logs(self, n_sessions: int | None = None, log_seed: int | None = None) -> LoggedData:
        """The logging policy's logs of ``n_sessions`` sessions (default: the config's);
        ``log_seed`` draws other sessions from the same world (:func:`~simulators.shop.logger.simulate_logs`)."""
        return simulate_logs(self, n_sessions, log_seed)
