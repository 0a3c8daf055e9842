"""Counterfactual fidelity: a fit with every mechanism taken from the truth is the truth, session
for session; the report's figures are what their docstring says (a perfect model scores 1, a
backwards one is caught); and a world without boredom values the one-per-topic rule backwards,
which a model must get right to be trusted with adaptive policies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.evaluation.counterfactual import Advantages, advantages, ensemble, figures
from agents.evaluation.sessions import run_sessions
from agents.policies.baselines import StaticReranker
from agents.policies.switch import ContextSwitch
from envs.config import EnvConfig
from envs.core import SessionCore
from envs.world import build_world, with_simulator
from simulators.core.errors import ConfigError
from simulators.datasets.shop import shop_folder
from simulators.fit.config import FitConfig
from simulators.fit.mixed import DYNAMICS_FIELDS, MECHANISMS, MixedSimulator, parse_parts, same_partition
from simulators.fit.train import half_of_users
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


@pytest.fixture(scope="module")
def config() -> EnvConfig:
    return EnvConfig(data=str(shop_folder(SMALL_SHOP)), candidates="popularity", max_steps=12)


def reranker(config: EnvConfig, diversify: float) -> StaticReranker:
    """pCTR first with a little similarity; ``diversify > 0`` fills the slate one item per topic."""
    world = build_world(config)
    weights = (1.0, 0.0, 0.3, 0.0, 0.0, 0.0, diversify)
    return StaticReranker("tuned-weights", item_topic=world.simulator.item_topic, weights=weights)


def test_mechanism_names_are_checked_before_any_work() -> None:
    assert parse_parts("leave, boredom") == ("boredom", "leave")  # the report's order
    with pytest.raises(ConfigError, match="not mechanisms"):
        EnvConfig(true_parts="boredom,patience")
    with pytest.raises(ConfigError, match="twice"):
        parse_parts("click,click")
    with pytest.raises(ConfigError, match="simulator='fitted'"):
        EnvConfig(simulator="true", true_parts="click")
    assert same_partition(np.array([0, 0, 1, 2]), np.array([5, 5, 3, 4]))  # renamed topics
    assert not same_partition(np.array([0, 0, 1, 2]), np.array([5, 3, 3, 4]))


def test_a_swap_takes_exactly_its_mechanism_from_the_truth(config: EnvConfig) -> None:
    fitted = build_world(config).simulator
    truth = build_world(replace(config, simulator="true")).simulator
    mixed = MixedSimulator(fitted, truth, ("boredom",))
    for name, fields in DYNAMICS_FIELDS.items():
        source = truth if name == "boredom" else fitted
        assert all(getattr(mixed.dynamics, f) == getattr(source.dynamics, f) for f in fields)
    tables, fit_tables = mixed.response_tables(), fitted.response_tables()
    np.testing.assert_array_equal(tables.click_logit, fit_tables.click_logit)
    np.testing.assert_array_equal(tables.traits.leave_offset, fit_tables.traits.leave_offset)
    clicks = MixedSimulator(fitted, truth, ("click", "traits")).response_tables()
    np.testing.assert_array_equal(
        clicks.click_logit, truth.response_tables().click_logit[:, : fitted.n_items]
    )  # type: ignore[attr-defined]
    np.testing.assert_array_equal(clicks.traits.boredom_scale, truth.user_traits.boredom_scale)


def test_every_mechanism_from_the_truth_plays_the_truths_sessions(config: EnvConfig) -> None:
    """The mixture with all six mechanisms swapped is the truth: the same return in every session,
    so the figures score it perfectly; the fit itself is scored below that."""
    policies = {
        "on": reranker(config, 1.0),
        "off": reranker(config, -1.0),
        "ctr": StaticReranker("best-fixed", item_topic=build_world(config).simulator.item_topic, strategy=0),
        "switch": ContextSwitch("switch", "discrete", (2.0,), (0.0,), "step_fraction", 0.5),
    }
    worlds = {
        "truth": replace(config, simulator="true"),
        "all": replace(config, true_parts=",".join(MECHANISMS)),
        "fit": config,
    }
    played = {label: {n: run_sessions(p, env, 48, 4, progress=False) for n, p in policies.items()} for label, env in worlds.items()}  # fmt: skip
    for name in policies:
        np.testing.assert_array_equal(played["all"][name].returns, played["truth"][name].returns)
    valued = {label: advantages(played[label], worlds[label], reference="on") for label in worlds}
    perfect = figures(valued["all"], valued["truth"], reference="on")
    assert perfect["spearman"] == pytest.approx(1) and perfect["pearson"] == pytest.approx(1)
    assert perfect["slope"] == pytest.approx(1) and perfect["advantage_rmse"] == 0
    assert perfect["sign_share"] in (1.0,) or perfect["sign_policies"] == 0
    fit = figures(valued["fit"], valued["truth"], reference="on")
    assert fit["advantage_rmse"] > 0 and fit["value_rmse"] > 0


def test_figures_catch_a_model_whose_advantages_are_backwards_or_out_of_scale() -> None:
    names = ["ref", "a", "b", "c", "d"]
    true_adv = {"ref": 0.0, "a": 2.0, "b": -1.0, "c": -3.0, "d": 0.5}
    ci = {n: (v - 0.4, v + 0.4) if n != "ref" else (0.0, 0.0) for n, v in true_adv.items()}
    truth = Advantages({n: 10 + v for n, v in true_adv.items()}, true_adv, ci)

    def model(scale: float, offset: float = 0.0) -> Advantages:
        adv = {n: scale * v for n, v in true_adv.items()}
        return Advantages({n: 10 + offset + a for n, a in adv.items()}, adv, ci)

    doubled = figures(model(2.0, offset=5.0), truth, reference="ref")  # ranks right, twice too sure
    assert doubled["spearman"] == pytest.approx(1) and doubled["slope"] == pytest.approx(0.5)
    assert doubled["sign_share"] == 1.0 and doubled["sign_policies"] == 4
    assert doubled["gains"] == 2 and doubled["false_gains"] == 0  # a and d beat the reference
    backwards = figures(model(-1.0), truth, reference="ref")
    assert backwards["slope"] == pytest.approx(-1) and backwards["sign_share"] == 0.0
    assert backwards["gains"] == 2 and backwards["false_gains"] == 2  # b and c, which lose
    assert backwards["spearman"] < 0 and names  # every policy ranked the wrong way round
    with pytest.raises(ConfigError, match="at least 3"):
        figures(Advantages({"ref": 1.0}, {"ref": 0.0}, {"ref": (0.0, 0.0)}), truth, reference="ref")


def test_an_ensemble_gives_each_policy_its_spread_and_a_pessimistic_view() -> None:
    ci = {n: (0.0, 0.0) for n in ("ref", "a", "b")}
    fit = Advantages({"ref": 10.0, "a": 11.0, "b": 9.0}, {"ref": 0.0, "a": 1.0, "b": -1.0}, ci)
    members = [
        Advantages({"ref": 10.0, "a": 10.0 + a, "b": 9.0}, {"ref": 0.0, "a": a, "b": -1.0}, ci)
        for a in (0.0, 2.0)
    ]
    views = ensemble(fit, members, kappa=2.0)
    assert views.spread == {"ref": 0.0, "a": pytest.approx(np.sqrt(2)), "b": 0.0}  # sd (ddof 1) of 0 and 2
    assert views.mean.advantage["a"] == 1.0 and views.pessimistic.advantage["a"] == pytest.approx(
        1 - 2 * np.sqrt(2)
    )
    assert views.pessimistic.advantage["b"] == -1.0  # members that agree cost nothing
    with pytest.raises(ConfigError, match="at least 2"):
        ensemble(fit, members[:1])


def test_an_ensemble_member_is_fitted_on_half_the_users() -> None:
    logs = build_world(EnvConfig(data=str(shop_folder(SMALL_SHOP)), candidates="popularity")).logs
    assert half_of_users(logs, FitConfig()) is logs
    first, again, second = (half_of_users(logs, FitConfig(sample=k)) for k in (1, 1, 2))
    users = [set(x.interactions["user_id"]) for x in (first, again, second)]
    assert users[0] == users[1] and users[0] != users[2]  # seeded by the member's number
    assert len(users[0]) <= logs.n_users // 2 and set(first.interactions["session_id"]) <= set(
        logs.interactions["session_id"]
    )
    with pytest.raises(ConfigError, match="fit_sample"):
        EnvConfig(fit_sample=-1)
    with pytest.raises(ConfigError, match="simulator='fitted'"):
        EnvConfig(simulator="true", fit_sample=1)


def play(world_config: EnvConfig, world, policy: StaticReranker, n: int = 256) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Returns of ``n`` sessions of ``policy`` in ``world`` (fixed users and keys, a full batch)."""
    core = SessionCore(replace(world_config, action_mode=policy.action_mode), world, batch=n)
    core.start_users(
        np.arange(n), np.arange(n) * 7 % len(world.user_weight), np.arange(n, dtype=np.uint64) + 1
    )
    total, running, rng = np.zeros(n), np.ones(n, dtype=bool), np.random.default_rng(0)
    for _ in range(world_config.max_steps):
        reward, terminated, truncated, _ = core.step(policy.act(core.observe_ids(), rng))
        total += np.where(running, reward, 0.0)
        running &= ~(terminated | truncated)
    return total


def test_without_boredom_the_one_per_topic_rule_flips_sign() -> None:
    """In the shop's truth, filling a slate one item per topic pays (users tire of a topic); in the
    same truth with boredom removed it costs relevance. A model without boredom would get the sign
    of every diversity switch wrong, which the report's right-sign share counts."""
    config = EnvConfig(simulator="true", max_steps=12)
    world = build_world(config)
    truth = world.source.truth
    assert truth is not None
    calm_dynamics = replace(truth.config.dynamics, boredom_per_view=0.0, boredom_per_click=0.0)
    calm = ShopWorld(replace(truth.config, dynamics=calm_dynamics))
    bored_out = with_simulator(world, MixedSimulator(world.simulator, calm, ("boredom",)), key="no boredom")
    on, off = reranker(config, 1.0), reranker(config, -1.0)
    with_boredom = play(config, world, on, 128) - play(config, world, off, 128)
    without = play(config, bored_out, on, 128) - play(config, bored_out, off, 128)
    assert with_boredom.mean() > 2 * with_boredom.std() / np.sqrt(128)  # measured +2.9 (s.e. 0.75)
    assert without.mean() < -2 * without.std() / np.sqrt(128)  # measured -7.7 (s.e. 0.69)
