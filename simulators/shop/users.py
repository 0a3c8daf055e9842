"""The shop's users: their segment (gender x age group), tastes (categories, styles, colours),
price sensitivity and activity, and how they differ in variety taste and patience
(:class:`~simulators.shop.config.UserVariety`); the users table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.dynamics import UserTraits
from simulators.shop.config import ShopConfig
from simulators.shop.vocabulary import AGE_GROUPS, COLOURS, GENDERS, STYLES


@dataclass(frozen=True)
class Users:
    """Every user's true parameters, ``(n_users, ...)``."""

    gender: np.ndarray
    age_group: np.ndarray
    category_pref: np.ndarray
    """``(n_users, n_categories)`` base interest (logit scale)."""
    style_pref: np.ndarray
    colour_pref: np.ndarray
    price_sensitivity: np.ndarray
    activity: np.ndarray
    """How often each user starts a session (relative)."""
    variety: np.ndarray
    """The log variety factor ``v_u`` (0: the mean user)."""
    traits: UserTraits
    """Each user's boredom scale and leave offset."""


def draw_users(config: ShopConfig, rng: np.random.Generator) -> Users:
    """The users of ``config`` from ``rng`` (the world's stream, after the catalog's draws); their
    variety and patience from a stream of their own, so the rest is the same with them on or off."""
    cfg = config
    gender = rng.integers(0, len(GENDERS), cfg.n_users)
    age_group = rng.choice(len(AGE_GROUPS), size=cfg.n_users, p=[0.2, 0.35, 0.3, 0.15])
    # Interests are mostly those of the user's segment (gender x age group), partly their own.
    segment = gender * len(AGE_GROUPS) + age_group
    segment_shares = rng.dirichlet(np.full(cfg.n_categories, 0.3), size=len(GENDERS) * len(AGE_GROUPS))
    own_shares = rng.dirichlet(np.full(cfg.n_categories, 0.4), size=cfg.n_users)
    shares = cfg.segment_weight * segment_shares[segment] + (1 - cfg.segment_weight) * own_shares
    category_pref = np.log(cfg.n_categories * shares + 0.05)
    n_segments = len(GENDERS) * len(AGE_GROUPS)
    segment_style = rng.normal(0.0, 0.6, (n_segments, len(STYLES)))
    segment_colour = rng.normal(0.0, 0.4, (n_segments, len(COLOURS)))
    own = 1 - cfg.segment_weight
    style_pref = segment_style[segment] + rng.normal(0.0, 0.6 * own, (cfg.n_users, len(STYLES)))
    colour_pref = segment_colour[segment] + rng.normal(0.0, 0.4 * own, (cfg.n_users, len(COLOURS)))
    price_sensitivity = rng.lognormal(0.0, 0.4, cfg.n_users)
    activity = rng.lognormal(0.0, 1.0, cfg.n_users)
    variety, traits, category_pref = _draw_variety(config, category_pref)
    return Users(
        gender,
        age_group,
        category_pref,
        style_pref,
        colour_pref,
        price_sensitivity,
        activity,
        variety,
        traits,
    )


def _draw_variety(config: ShopConfig, category_pref: np.ndarray) -> tuple[np.ndarray, UserTraits, np.ndarray]:
    """Each user's variety factor, traits and interests spread by their variety
    (:class:`~simulators.shop.config.UserVariety`), from a stream of their own."""
    cfg, variety = config, config.variety
    if not variety.active:
        return np.zeros(cfg.n_users), UserTraits.uniform(cfg.n_users), category_pref
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x7A_12]))
    z, w = rng.standard_normal((2, cfg.n_users))
    sigma, rho = variety.variety_spread, variety.variety_patience_correlation
    factor = sigma * z
    mean = category_pref.mean(axis=1, keepdims=True)
    spread = mean + np.exp(-factor)[:, None] * (category_pref - mean)
    traits = UserTraits(
        boredom_scale=np.exp(factor - sigma**2 / 2),
        leave_offset=variety.patience_spread * (-rho * z + np.sqrt(1 - rho**2) * w),
    )
    return factor, traits, spread


def users_table(users: Users) -> pd.DataFrame:
    """Users with their sensitive attributes (the LoggedData users table)."""
    return pd.DataFrame(
        {
            "user_id": np.arange(len(users.gender), dtype=np.int64),
            "gender": np.asarray(GENDERS)[users.gender],
            "age_group": np.asarray(AGE_GROUPS)[users.age_group],
        }
    )
