"""OPE inputs: Plackett-Luce probabilities, the shop and OBD policies, estimators against the
shop's ground truth, and the agents.ope CLI."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from agents.ope.estimators import IIPS, PBMDR, PBMIPS, CascadeDR, IndependentDR, SlateDM
from agents.ope.obd import bts_marginals
from agents.ope.slates import slate_inputs
from agents.ope.targets import PLPolicy, shop_logging_policy, shop_policy
from agents.ope.truth import true_step_value
from simulators.core.errors import ConfigError
from simulators.data.click_models import pbm_em
from simulators.data.steps import build_steps
from simulators.datasets.obd import prior_bts
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP, run_cli


def _exact_marginals(p: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, len(p)))
    for perm in itertools.permutations(range(len(p)), k):
        probability, taken = 1.0, 0.0
        for item in perm:
            probability *= p[item] / (1 - taken)
            taken += p[item]
        for slot, item in enumerate(perm):
            out[slot, item] += probability
    return out


@pytest.mark.parametrize("support", [6, 600])  # Gumbel-top-k and sequential sampling
def test_rao_blackwellised_marginals_match_enumeration(support: int) -> None:
    rng = np.random.default_rng(0)
    logits = np.full(support, -30.0)
    logits[:6] = rng.normal(size=6)
    policy = PLPolicy("t", np.arange(support)[None], logits[None], support)
    estimated = policy.marginals(np.array([0]), 3, 50_000, rng)[0]
    p = np.exp(logits[:6]) / np.exp(logits[:6]).sum()
    np.testing.assert_allclose(estimated[:, :6], _exact_marginals(p, 3), atol=4e-3)
    np.testing.assert_allclose(estimated.sum(axis=1), 1.0, atol=1e-6)


def test_logging_policy_prefix_probability_is_the_logged_propensity() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=200))
    steps = build_steps(world.simulate_logs())
    logged = world.logging_policy.slate_probability(steps.items)
    prefix = shop_logging_policy(world).prefix_probabilities(steps.user, steps.items)
    np.testing.assert_allclose(prefix[:, -1], logged, rtol=1e-9)


def test_segment_pbm_shrinks_each_segment_to_the_pooled_relevance() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=200))
    steps = build_steps(world.simulate_logs())
    gender = world.user_gender.astype(np.int64)
    theta, pooled = pbm_em(steps, 200)
    assert pooled.shape == (1, 200) and theta[0] == 1.0
    np.testing.assert_allclose(pbm_em(steps, 200, prior=1e-3)[1], pooled, rtol=1e-9)  # moot with one segment
    _, split = pbm_em(steps, 200, gender)
    assert split.shape == (2, 200) and not np.allclose(split[0], split[1])
    _, shrunk = pbm_em(steps, 200, gender, prior=1e9)
    np.testing.assert_allclose(shrunk, np.repeat(pooled, 2, axis=0), rtol=1e-6)
    with pytest.raises(ConfigError, match="prior"):
        pbm_em(steps, 200, gender, prior=0.0)


def test_pbm_em_predicts_the_logged_clicks_per_slot_and_finds_the_true_examination() -> None:
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=3_000))
    steps = build_steps(world.simulate_logs())
    segment = world.user_gender.astype(np.int64)
    theta, gamma = pbm_em(steps, 200, segment)
    predicted = (theta * gamma[segment[steps.user][:, None], steps.items]).sum(axis=0)
    np.testing.assert_allclose(predicted, steps.clicks.sum(axis=0), rtol=1e-9)
    assert theta[0] == 1.0
    np.testing.assert_allclose(theta, world.position_bias[: len(theta)], atol=0.025)  # EM alone: 0.049 off


def test_bts_marginals_are_distributions() -> None:
    marginals = bts_marginals(*prior_bts("men"), 3, 20_000, np.random.default_rng(0))
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0)
    assert (marginals.sum(axis=1) <= 1.0 + 1e-9).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random", "near-logging", "anti-popularity"])
def test_slate_estimators_recover_the_shops_ground_truth(name: str) -> None:
    """IIPS and the position-based estimators within 5% of the exact truth (PBM holds in the
    shop); Cascade-DR too where its prefix weights stay tame (not for the far-from-logging target)."""
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=4_000))
    logs = world.simulate_logs()
    target = shop_policy(name, world, logs.popularity())
    rng = np.random.default_rng(0)
    truth, _ = true_step_value(world, build_steps(world.simulate_logs(8_000, log_seed=5)), target, 256, rng)
    slates, _ = slate_inputs(build_steps(logs), shop_logging_policy(world), target, rng=rng)
    unbiased_under_pbm = (IIPS(), IndependentDR(), PBMIPS(), PBMDR())
    for estimator in (*unbiased_under_pbm, CascadeDR()) if name != "anti-popularity" else unbiased_under_pbm:
        assert estimator.value(slates) == pytest.approx(truth.sum(), rel=0.05), estimator.name
    assert SlateDM().value(slates) > 0


def test_ope_cli_on_obd_writes_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    result = run_cli("agents.ope", "--policy", "obd-bts", "--logs", "obd:random/all", "--bootstrap", "10",
                     "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"policy", "logs", "n", "estimates", "ground_truth"} <= set(report)
    assert {"dm", "ips", "snips", "dr", "sndr", "switch_dr"} <= set(report["estimates"])
    for entry in report["estimates"].values():
        assert {"value", "ci95", "ess"} <= set(entry) and entry["ci95"][0] <= entry["ci95"][1]
    assert report["n"] == 10_000 and report["ground_truth"] == pytest.approx(42 / 10_000)


def test_ope_cli_on_a_shop_folder(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    made = run_cli(
        "simulators.shop", "--out", str(shop), "--users", "200", "--items", "100", "--sessions", "300"
    )
    assert made.returncode == 0, made.stderr[-2000:]
    out = tmp_path / "ope.json"
    result = run_cli("agents.ope", "--policy", "random", "--logs", str(shop), "--bootstrap", "5",
                     "--truth-sessions", "500", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"iips", "rips", "cascade_dr", "dm"} <= set(report["estimates"]) and report["ground_truth"] > 0
    assert {"pdis", "wpdis", "wdr"} <= set(report["sessions"]["estimates"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "ctr", "--logs", "obd:random/all"], "OBD logs take --policy"),
        (["--policy", "obd-bts", "--logs", "obd:random/all", "--estimators", "magic"], "unknown estimator"),
        (["--policy", "obd-bts", "--logs", "nowhere/at/all"], "unknown dataset"),
        (["--policy", "obd-bts", "--logs", "obd:random/all", "--folds", "1"], "--folds"),
    ],
)
def test_ope_cli_bad_input(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("agents.ope", *args, "--json", str(tmp_path / "x.json"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
