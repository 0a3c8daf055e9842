"""The shop's catalog: sellers with a long tail of sizes, products drawn per seller (category,
style, colour, material, quality, price), the items that launch after the logs, and what the
catalog shows a reader (each product's text, the items table)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.shop.config import ShopConfig
from simulators.shop.vocabulary import CATEGORIES, COLOURS, STYLES


@dataclass(frozen=True)
class Catalog:
    """Every product's true attributes, ``(n_catalog,)`` each: the logged ``n_items`` first, then
    the items that launch after the logs."""

    seller: np.ndarray
    category: np.ndarray
    style: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    noun: np.ndarray
    quality: np.ndarray
    log_price_ratio: np.ndarray
    """Log of the price over its category's typical price."""
    price: np.ndarray
    launch_day: np.ndarray
    """The day each item launches (0: in the logs' catalog; later: new)."""
    protected: np.ndarray
    """bool: the item comes from a small (long-tail) seller."""
    prior_popularity: np.ndarray
    """Prior popularity, normalised over the logged catalog (what the logging policy draws from)."""
    seller_is_major: np.ndarray
    """``(n_sellers,)`` bool: the sellers that together hold half the logged catalog."""


def draw_catalog(config: ShopConfig, rng: np.random.Generator) -> Catalog:
    """The catalog of ``config`` from ``rng`` (the world's stream, which the users' draws continue);
    the launches after the logs from a stream of their own, so the logged catalog is the same
    with or without them."""
    cfg = config
    seller_size = 1.0 / np.arange(1, cfg.n_sellers + 1) ** 1.1
    seller_size /= seller_size.sum()
    seller_categories = rng.dirichlet(np.full(cfg.n_categories, 0.3), size=cfg.n_sellers)
    items, category_price = _draw_items(rng, cfg.n_items, seller_size, seller_categories, None)
    counts = np.bincount(items["seller"], minlength=cfg.n_sellers)
    order = np.argsort(-counts, kind="stable")
    covered = np.cumsum(counts[order]) / cfg.n_items
    n_major = int(np.searchsorted(covered, 0.5) + 1)
    seller_is_major = np.zeros(cfg.n_sellers, dtype=bool)
    seller_is_major[order[:n_major]] = True
    launch_day = np.zeros(cfg.n_items)
    drift = cfg.drift
    n_new = round(drift.new_items_per_week * cfg.n_items * drift.launch_horizon_weeks) if drift.enabled else 0
    if n_new:
        new_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1E_0E]))
        new, _ = _draw_items(new_rng, n_new, seller_size, seller_categories, category_price)
        items = {name: np.concatenate([items[name], new[name]]) for name in items}
        launch = cfg.days + np.sort(new_rng.uniform(0.0, 7.0 * drift.launch_horizon_weeks, n_new))
        launch_day = np.concatenate([launch_day, launch])
    seller, category = items["seller"], items["category"]
    log_seller = np.log(np.maximum(counts[seller], 1))  # a new item may be its seller's first
    popularity = np.exp(0.8 * items["quality"] + 0.35 * log_seller)
    return Catalog(
        seller=seller, category=category, style=items["style"], colour=items["colour"],
        material=items["material"], noun=items["noun"], quality=items["quality"],
        log_price_ratio=items["log_price_ratio"],
        price=np.round(category_price[category] * np.exp(items["log_price_ratio"]), 2),
        launch_day=launch_day, protected=~seller_is_major[seller],
        prior_popularity=popularity / popularity[: cfg.n_items].sum(), seller_is_major=seller_is_major,
    )  # fmt: skip


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


def item_texts(catalog: Catalog) -> list[str]:
    """Readable title and description of every product (what BERT reads)."""
    texts = []
    for j in range(len(catalog.category)):
        name, nouns, materials, brands = CATEGORIES[catalog.category[j]]
        brand = brands[catalog.seller[j] % len(brands)]
        style, colour = STYLES[catalog.style[j]], COLOURS[catalog.colour[j]]
        material, noun = materials[catalog.material[j]], nouns[catalog.noun[j]]
        title = f"{brand} {style.title()} {colour.title()} {material.title()} {noun.title()}"
        texts.append(
            f"{title}. A {style} {noun} in {colour} {material} by {brand}, "
            f"from our {name} range. Price ${catalog.price[j]:.2f}."
        )
    return texts


def items_table(catalog: Catalog, n_logged: int) -> pd.DataFrame:
    """The catalog in the LoggedData schema plus true attributes (and ``launch_day`` when items
    launch after the ``n_logged`` logged ones: the product feed lists them ahead)."""
    table = pd.DataFrame(
        {
            "item_id": np.arange(len(catalog.category), dtype=np.int64),
            "text": item_texts(catalog),
            "provider": [f"seller_{s:03d}" for s in catalog.seller],
            "provider_group": np.where(catalog.protected, "small", "major"),
            "category": [CATEGORIES[c][0] for c in catalog.category],
            "price": catalog.price,
        }
    )
    if len(catalog.category) > n_logged:
        table["launch_day"] = catalog.launch_day
    return table
