"""How much real users differ, measured on MovieLens-100K, and the shop's :class:`UserVariety`
spreads that reproduce it.

``python -m benchmarks.heterogeneity --json FILE`` measures three figures of between-user
heterogeneity on MovieLens-100K (needs the installed ``recbole`` wheel or ``--movielens PATH``):

- ``breadth_sd``: the standard deviation across users of the normalised entropy of the genres
  of their first :data:`MIN_CLICKS` likes (rating >= 4; users with fewer are left out, and the
  same count for everyone keeps the entropy's small-sample bias out) -- how much users'
  breadth of consumption differs (the generalist-specialist spread of Anderson et al., WWW 2020);
- ``session_icc``: the share of the variance of log session length that lies between users
  (one-way intra-class correlation over users with at least two sessions) -- how much of
  patience is a stable trait of the user;
- ``breadth_length_rank_corr``: the Spearman correlation of a user's breadth with their mean
  log session length (Anderson et al. found generalists more likely to be retained).

It then measures the same figures on the shop's logs for a grid of spreads and picks, in order,
the variety spread whose ``breadth_sd`` is closest to MovieLens' (patience off), then the
patience spread whose ``session_icc`` is closest, with the correlation set to MovieLens'. The
shop's defaults (:class:`simulators.shop.world.UserVariety`) are the values this printed;
nothing here reads an RL result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.storage import check_output_file, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.datasets import load_logs
from simulators.shop.config import ShopConfig, UserVariety
from simulators.shop.world import ShopWorld

MIN_CLICKS = 20
"""Breadth is the entropy of each user's first this many positive events (users with fewer are
left out: entropy's bias depends on the count)."""
VARIETY_GRID = tuple(round(0.05 * i, 2) for i in range(21))
"""Variety spreads tried (0 to 1 by 0.05)."""
PATIENCE_GRID = tuple(round(0.05 * i, 2) for i in range(31))
"""Patience spreads tried (0 to 1.5 by 0.05)."""


def _normalised_entropy(topics: np.ndarray, n_topics: int) -> float:
    p = np.bincount(topics, minlength=n_topics) / len(topics)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(n_topics))


def session_figures(logs: LoggedData) -> tuple[float, int, pd.Series]:
    """The intra-class correlation of log session length over users with two sessions or more,
    their number, and every user's mean log session length."""
    lengths: pd.Series = np.log(logs.interactions.groupby(["user_id", "session_id"]).size())  # type: ignore[assignment]
    n = lengths.groupby(level=0).size()
    within = lengths[lengths.index.get_level_values(0).isin(n.index[n >= 2])]
    groups = within.groupby(level=0)
    k = groups.size()
    grand = within.mean()
    ms_between = float((k * (groups.mean() - grand) ** 2).sum() / (len(k) - 1))
    ms_within = float(((within - groups.transform("mean")) ** 2).sum() / (len(within) - len(k)))
    k0 = float((k.sum() - (k**2).sum() / k.sum()) / (len(k) - 1))
    icc = (ms_between - ms_within) / (ms_between + (k0 - 1) * ms_within)
    return icc, len(k), lengths.groupby(level=0).mean()


def _figures(breadth: pd.Series, logs: LoggedData) -> dict[str, float]:
    icc, n_icc, mean_length = session_figures(logs)
    both = breadth.index.intersection(mean_length.index)
    return {
        "users_in_breadth": len(breadth),
        "breadth_mean": round(float(breadth.mean()), 4),
        "breadth_sd": round(float(breadth.std()), 4),
        "users_in_icc": n_icc,
        "session_icc": round(float(icc), 4),
        "breadth_length_rank_corr": round(float(spearmanr(breadth[both], mean_length[both]).statistic), 4),
    }


def heterogeneity_figures(logs: LoggedData, topic_column: str) -> dict[str, float]:
    """The module docstring's figures of real logs; ``topic_column`` of the items table names
    each item's topic (MovieLens: the first genre)."""
    topics = pd.factorize(logs.items[topic_column], sort=True)[0]
    topic_of = pd.Series(topics, index=logs.items["item_id"])
    liked = logs.interactions[logs.interactions["click"] > 0].sort_values(
        ["user_id", "timestamp"], kind="stable"
    )
    counts = liked.groupby("user_id").size()
    first = (
        liked[liked["user_id"].isin(counts.index[counts >= MIN_CLICKS])].groupby("user_id").head(MIN_CLICKS)
    )
    n_topics = int(topics.max()) + 1
    breadth = first.groupby("user_id")["item_id"].apply(
        lambda items: _normalised_entropy(topic_of[items].to_numpy(), n_topics)
    )
    return _figures(breadth, logs)


def shop_figures(config: ShopConfig) -> dict[str, float]:
    """The same figures of the shop. MovieLens' likes are chosen by the users themselves, not a
    response to a ranking, so the shop's comparable breadth is that of :data:`MIN_CLICKS` free
    choices: categories drawn from each user's true interests ``softmax(user_category_pref)``
    (one fixed stream). Session figures come from the shop's logs."""
    world = ShopWorld(config)
    rng = np.random.default_rng(0xB_12E)
    prefs = np.exp(world.user_category_pref - world.user_category_pref.max(axis=1, keepdims=True))
    cumulative = (prefs / prefs.sum(axis=1, keepdims=True)).cumsum(axis=1)
    draws = rng.random((config.n_users, MIN_CLICKS))
    choices = np.minimum((draws[:, :, None] > cumulative[:, None, :]).sum(axis=2), config.n_categories - 1)
    breadth = pd.Series([_normalised_entropy(c, config.n_categories) for c in choices], name="breadth")
    return _figures(breadth, world.simulate_logs())


def calibrate(target: dict[str, float], base: ShopConfig) -> dict[str, Any]:
    """The grid searches of the module docstring: the chosen :class:`UserVariety` and every point."""
    by_variety = {
        sigma: shop_figures(replace(base, variety=UserVariety(variety_spread=sigma)))
        for sigma in VARIETY_GRID
    }
    variety = min(VARIETY_GRID, key=lambda s: abs(by_variety[s]["breadth_sd"] - target["breadth_sd"]))
    rho = float(np.clip(target["breadth_length_rank_corr"], -1, 1))
    by_patience = {
        sigma: shop_figures(
            replace(base, variety=UserVariety(variety_spread=variety, patience_spread=sigma,
                                              variety_patience_correlation=rho))
        )
        for sigma in PATIENCE_GRID
    }  # fmt: skip
    patience = min(PATIENCE_GRID, key=lambda s: abs(by_patience[s]["session_icc"] - target["session_icc"]))
    chosen = UserVariety(variety_spread=variety, patience_spread=patience, variety_patience_correlation=rho)
    return {
        "chosen": asdict(chosen),
        "variety_grid": {str(k): v for k, v in by_variety.items()},
        "patience_grid": {str(k): v for k, v in by_patience.items()},
        "shop_with_chosen": shop_figures(replace(base, variety=chosen)),
        "shop_homogeneous": shop_figures(replace(base, variety=UserVariety(enabled=False))),
    }


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m benchmarks.heterogeneity", description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument(
        "--movielens", default=None, help="MovieLens-100K folder (default: installed recbole)"
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    options = {"path": args.movielens} if args.movielens else {}
    movielens = heterogeneity_figures(load_logs("movielens", **options), "provider")
    print("MovieLens-100K:", movielens)
    result = {"movielens": movielens, **calibrate(movielens, ShopConfig())}
    write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"),
        report_markdown("Between-user heterogeneity (benchmarks.heterogeneity)", result),
    )
    rows = [("MovieLens-100K", movielens), ("shop, homogeneous", result["shop_homogeneous"]),
            ("shop, chosen spreads", result["shop_with_chosen"])]  # fmt: skip
    print("| logs | breadth mean | breadth sd | session ICC | breadth-length corr |")
    print("|---|---|---|---|---|")
    for name, f in rows:
        print(
            f"| {name} | {f['breadth_mean']} | {f['breadth_sd']} | {f['session_icc']} | "
            f"{f['breadth_length_rank_corr']} |"
        )
    print("chosen:", result["chosen"])


if __name__ == "__main__":
    main()
