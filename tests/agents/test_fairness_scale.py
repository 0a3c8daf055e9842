"""agents.evaluation.fairness_scale: one fairness price means the same share of engagement on any logs."""

from __future__ import annotations

import json

import pytest

from agents.evaluation.fairness_scale import (
    FAIRNESS_PRICE,
    SCALE_SESSIONS,
    engagement_per_step,
    priced_fairness,
)
from agents.evaluation.sessions import run_sessions
from agents.evaluation.tuning import TUNING_SEED
from agents.policies.baselines import make_baseline
from envs.config import EnvConfig
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP


def small(**options: object) -> EnvConfig:
    return EnvConfig(data=str(shop_folder(SMALL_SHOP)), candidates="popularity", **options)  # type: ignore[arg-type]


def test_the_scale_is_greedy_ctrs_engagement_per_step_on_the_tuning_users() -> None:
    config = small(purchase_weight=2.0, fairness_lambda=5.0)  # neither the weight nor its own lambda moves it
    played = run_sessions(
        make_baseline("ctr"), small(purchase_weight=2.0), SCALE_SESSIONS, TUNING_SEED, progress=False
    )
    by_hand = (played.clicks.sum() + 2.0 * played.purchases.sum()) / played.lengths.sum()
    assert engagement_per_step(config) == pytest.approx(by_hand, rel=1e-12)
    assert engagement_per_step(config) == engagement_per_step(config)  # deterministic


def test_one_price_costs_the_same_share_of_engagement_on_logs_of_another_scale() -> None:
    """Two worlds whose engagement per step differs (purchases weighted 1 and 4): the priced weights
    differ by the same ratio, so a unit of exposure deficit costs the same steps of engagement."""
    low, high = (priced_fairness(small(purchase_weight=w), FAIRNESS_PRICE) for w in (1.0, 4.0))
    assert high.engagement_per_step > 1.2 * low.engagement_per_step
    for scale in (low, high):
        assert scale.fairness_lambda / scale.engagement_per_step == pytest.approx(
            FAIRNESS_PRICE, abs=0.05 / scale.engagement_per_step + 1e-3
        )
    assert high.fairness_lambda / low.fairness_lambda == pytest.approx(
        high.engagement_per_step / low.engagement_per_step, rel=0.1
    )
    assert priced_fairness(small(), 0.0).fairness_lambda == 0.0  # price 0: no penalty


def test_the_scale_is_cached_per_world_and_a_damaged_entry_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import agents.evaluation.fairness_scale as module
    from simulators.core.storage import cache_dir

    config = small(max_steps=7)
    first = engagement_per_step(config)
    entries = [p for p in cache_dir("baselines").glob("*.json") if "manifest" not in p.name]
    [entry] = [p for p in entries if json.loads(p.read_text()) == {"engagement_per_step": first}]
    calls = []
    real = module.run_sessions
    monkeypatch.setattr(module, "run_sessions", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert engagement_per_step(config) == first and calls == []  # read from the cache
    entry.write_text('{"engagement_per_step": "many"}\n')
    assert engagement_per_step(config) == first and calls == [1]  # reported, measured again
    assert "rebuilding" in capsys.readouterr().err
