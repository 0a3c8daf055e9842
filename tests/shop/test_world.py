"""simulators.shop.world: the shop's determinism, logged propensities, the true response and its CLI."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulators.core.errors import ConfigError
from simulators.dynamics import SessionState
from simulators.rollout import rollout
from simulators.shop.config import ShopConfig, UserVariety
from simulators.shop.files import write_shop
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP, run_cli


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_logs(tmp_path: Path) -> None:
    write_shop(SMALL_SHOP, tmp_path / "a")
    write_shop(SMALL_SHOP, tmp_path / "b")
    write_shop(replace(SMALL_SHOP, seed=4), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["interactions.parquet"] != _digest(tmp_path / "c")["interactions.parquet"]


def _plackett_luce(weights: list[float], slate: list[int]) -> float:
    """The slate's probability, written out slot by slot (independent of LoggingPolicy)."""
    probability, remaining = 1.0, 1.0
    for item in slate:
        probability *= weights[item] / remaining
        remaining -= weights[item]
    return probability


def test_logged_propensity_is_the_slate_probability() -> None:
    world = ShopWorld(SMALL_SHOP)
    logs = world.simulate_logs()
    weights = world.logging_policy.weights.tolist()
    for _, slate in logs.interactions.groupby("slate_id"):
        items = slate.sort_values("position")["item_id"].tolist()
        assert len(set(items)) == len(items)
        expected = _plackett_luce(weights, items)
        assert slate["propensity"].nunique() == 1
        assert slate["propensity"].iloc[0] == pytest.approx(expected, rel=1e-9)


def test_logging_policy_samples_its_own_distribution() -> None:
    """Empirical first-slot frequencies match the weights (chi-square style bound)."""
    world = ShopWorld(replace(SMALL_SHOP, n_items=20))
    slates = world.logging_policy.sample(40_000, np.random.default_rng(0))
    freq = np.bincount(slates[:, 0], minlength=20) / len(slates)
    np.testing.assert_allclose(freq, world.logging_policy.weights, atol=4 * np.sqrt(0.25 / 40_000))
    assert (np.sort(slates, axis=1)[:, 1:] != np.sort(slates, axis=1)[:, :-1]).all()


def test_logs_show_position_bias_and_purchases_only_after_clicks() -> None:
    logs = ShopWorld(replace(SMALL_SHOP, n_sessions=3000)).simulate_logs()
    table = logs.interactions
    ctr = table.groupby("position")["click"].mean().to_numpy()
    assert ctr[0] > ctr[-1] * 1.5
    assert (table["purchase"] <= table["click"]).all()
    assert table.groupby("session_id").size().max() <= SMALL_SHOP.max_steps * SMALL_SHOP.slate_size


def test_preferred_items_get_more_clicks() -> None:
    world = ShopWorld(SMALL_SHOP)
    users = np.arange(50)
    favourite = world.user_category_pref[users].argmax(axis=1)
    least = world.user_category_pref[users].argmin(axis=1)

    def first_item(categories: np.ndarray) -> np.ndarray:
        return np.array(
            [
                np.flatnonzero(world.item_category == c)[0] if (world.item_category == c).any() else 0
                for c in categories
            ]
        )

    state = SessionState.fresh(len(users), SMALL_SHOP.n_categories)
    liked = world.click_probability(users, first_item(favourite)[:, None], state)
    disliked = world.click_probability(users, first_item(least)[:, None], state)
    assert liked.mean() > 2 * disliked.mean()


def test_catalog_is_readable_and_long_tailed() -> None:
    world = ShopWorld(ShopConfig(n_users=10, n_sessions=10))
    items = world.items_table()
    assert len(items) == 2000 and items["category"].nunique() == 20
    assert items["text"].str.contains(r"\$\d+\.\d\d").all()
    sizes = items["provider"].value_counts().to_numpy()
    assert sizes[0] > 10 * np.median(sizes)
    assert 0.2 < (items["provider_group"] == "small").mean() < 0.8


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_users", 0), ("n_categories", 21), ("slate_size", 0), ("logging_exploration", 0.0)],
)
def test_config_is_validated(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        replace(SMALL_SHOP, **{field: value})


def test_cli_writes_logs_and_ground_truth(tmp_path: Path) -> None:
    result = run_cli(
        "simulators.shop",
        "--out",
        str(tmp_path / "s"),
        "--users",
        "200",
        "--items",
        "100",
        "--sessions",
        "300",
    )
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (tmp_path / "s").iterdir()} == {
        "interactions.parquet", "items.parquet", "users.parquet", "ground_truth.npz", "config.json"
    }  # fmt: skip
    truth = np.load(tmp_path / "s" / "ground_truth.npz")
    assert truth["user_category_pref"].shape == (200, 20)


def test_cli_bad_option_is_one_line(tmp_path: Path) -> None:
    result = run_cli("simulators.shop", "--out", str(tmp_path / "s"), "--users", "0")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "n_users must be >= 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "s").exists()


# ---------------------------------------------------------------------- users who differ
def _logs_digest(config: ShopConfig) -> str:
    import pandas as pd

    table = ShopWorld(config).simulate_logs().interactions
    return hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()).hexdigest()[
        :16
    ]


def test_variety_off_reproduces_the_homogeneous_shop() -> None:
    """``UserVariety(enabled=False)`` (or zero spreads) gives, byte for byte, the logs the shop
    wrote before users differed (digest recorded on that version)."""
    config = ShopConfig(n_users=300, n_items=120, n_sessions=400, seed=3)
    off = _logs_digest(replace(config, variety=UserVariety(enabled=False)))
    assert off == "29b87dd07daaa9ea"
    assert _logs_digest(replace(config, variety=UserVariety(variety_spread=0.0, patience_spread=0.0))) == off
    assert _logs_digest(config) != off  # the default shop's users differ
    world = ShopWorld(replace(config, variety=UserVariety(enabled=False)))
    assert world.user_traits.is_uniform and not world.user_variety.any()


def test_variety_traits_follow_their_definition() -> None:
    """Boredom scales average 1 (the mean user), specialists (z < 0) tire slower and have
    sharper interests, leave offsets have the configured spread."""
    variety = UserVariety(variety_spread=0.5, patience_spread=0.8, variety_patience_correlation=0.5)
    world = ShopWorld(replace(SMALL_SHOP, n_users=20_000, variety=variety))
    flat = ShopWorld(replace(SMALL_SHOP, n_users=20_000, variety=UserVariety(enabled=False)))
    traits = world.user_traits
    assert abs(traits.boredom_scale.mean() - 1) < 0.02
    assert abs(traits.leave_offset.std() - 0.8) < 0.03
    np.testing.assert_allclose(np.log(traits.boredom_scale), world.user_variety - 0.5**2 / 2)
    spread = world.user_category_pref.std(axis=1) / flat.user_category_pref.std(axis=1)
    np.testing.assert_allclose(spread, np.exp(-world.user_variety))
    assert np.corrcoef(world.user_variety, -traits.leave_offset)[0, 1] > 0.4  # generalists stay longer
    np.testing.assert_array_equal(
        world.item_category, flat.item_category
    )  # the rest of the world is the same


def test_variety_is_validated_and_round_trips_json() -> None:
    with pytest.raises(ConfigError, match="variety_spread"):
        UserVariety(variety_spread=-1.0)
    with pytest.raises(ConfigError, match="correlation"):
        UserVariety(variety_patience_correlation=2.0)
    config = replace(SMALL_SHOP, variety=UserVariety(variety_spread=0.3))
    assert ShopConfig.from_json(config.to_json()) == config
    legacy = config.to_json().replace('"variety": {', '"_": {')  # a config.json written before variety
    import json

    raw = json.loads(legacy)
    raw.pop("_")
    assert ShopConfig.from_json(json.dumps(raw)).variety == UserVariety(enabled=False)


def _strategy_returns(world: ShopWorld, users: np.ndarray) -> dict[str, np.ndarray]:
    """Clicks + purchases per session of two static rankings over each user's top 30 items by
    true relevance: greedy, and one item per category first (common random numbers)."""
    top = np.argsort(-world.response_tables().click_logit[users], axis=1, kind="stable")[:, :30]
    topic = world.item_category[top]
    k = world.config.slate_size
    first = np.zeros((len(users), k), dtype=np.int64)
    for row in range(len(users)):
        _, distinct = np.unique(topic[row], return_index=True)
        order = np.concatenate([np.sort(distinct), np.setdiff1d(np.arange(30), distinct)])
        first[row] = top[row, order[:k]]
    slates = {"greedy": top[:, :k], "one_per_topic": first}
    out = {}
    for name, slate in slates.items():
        total = np.zeros(len(users))
        for s in rollout(world, users, lambda active, g, s=slate: s[active], 20, np.random.default_rng(9)):
            total[s.active] += s.response.click.sum(1) + s.response.purchase.sum(1)
        out[name] = total
    return out


def test_a_wide_variety_spread_makes_the_best_ranking_depend_on_the_user() -> None:
    """A toy world with a variety spread six times the measured one: specialists do best with
    greedy slates and generalists with diverse ones, so ranking by type beats either fixed
    ranking. With users at the mean one ranking wins for everyone and adapting to type earns
    nothing. (At the measured spread, 0.25, one ranking wins for every type: benchmarks.policies.)"""
    base = replace(SMALL_SHOP, n_users=3000, n_items=2000, n_sellers=40)
    users = np.random.default_rng(1).integers(0, base.n_users, 4000)
    wide = ShopWorld(replace(base, variety=UserVariety(variety_spread=1.5, patience_spread=0.0)))
    returns = _strategy_returns(wide, users)
    generalist = wide.user_variety[users] > np.quantile(wide.user_variety, 0.6)
    assert returns["greedy"][~generalist].mean() > returns["one_per_topic"][~generalist].mean() + 0.3
    assert returns["one_per_topic"][generalist].mean() > returns["greedy"][generalist].mean() + 0.3
    adaptive = np.where(generalist, returns["one_per_topic"], returns["greedy"]).mean()
    assert adaptive > max(r.mean() for r in returns.values()) + 0.2
    flat = ShopWorld(replace(base, variety=UserVariety(enabled=False)))
    same = _strategy_returns(flat, users)
    half = users % 2 == 0  # any split of identical users
    best = max(same, key=lambda n: same[n].mean())
    assert all(
        same[best][rows].mean() >= max(r[rows].mean() for r in same.values()) for rows in (half, ~half)
    )
