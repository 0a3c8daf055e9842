"""The rollout planner: it reads sessions only through the core's clones, with fresh keys; with
its base action alone it is the base policy; a clone given the real key replays the realised
future; a planner that reused the real keys would "gain" far more than an honest one; and its
belief of a session follows the real session's state when it plans in another world."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents.evaluation.paired import paired_difference
from agents.evaluation.sessions import run_sessions
from agents.policies.baselines import StaticReranker
from agents.policies.planner import PlannerConfig, RolloutPlanner
from envs.config import EnvConfig
from envs.core import SessionCore, action_scores
from envs.world import build_world
from simulators.core.errors import ConfigError
from simulators.datasets.shop import shop_folder
from simulators.shop.config import ShopReturns
from tests.conftest import SMALL_SHOP


@pytest.fixture(scope="module")
def config() -> EnvConfig:
    return EnvConfig(
        data=str(shop_folder(SMALL_SHOP)), candidates="popularity", simulator="true", max_steps=12
    )


def base_policy(config: EnvConfig) -> StaticReranker:
    """A constant-weights re-ranker (pCTR first, a little similarity, the diversity switch on)."""
    world = build_world(config)
    return StaticReranker(
        "tuned-weights", item_topic=world.simulator.item_topic, weights=(1, 0, 0.3, 0, 0, 0, 1)
    )


def test_with_only_the_base_action_the_planner_is_the_base_policy(config: EnvConfig) -> None:
    base = base_policy(config)
    planner = RolloutPlanner(base, config, PlannerConfig(rollouts=2, candidates=()))
    alone, planned = (
        run_sessions(base, config, 64, 5, progress=False),
        run_sessions(planner, config, 64, 5, progress=False),
    )
    np.testing.assert_array_equal(planned.returns, alone.returns)
    assert planner.decisions > 0 and planner.deviations == 0


def test_a_clone_with_the_real_key_replays_the_realised_future(config: EnvConfig) -> None:
    world, base = build_world(config), base_policy(config)
    rules = replace(config, action_mode="weights")
    real = SessionCore(rules, world, batch=16)
    real.start_users(
        np.arange(16), np.arange(16) * 7 % len(world.user_weight), np.arange(16, dtype=np.uint64) + 11
    )
    rng = np.random.default_rng(0)
    for _ in range(2):  # two steps in, then copy every session with its own key
        real.step(base.act(real.observe_ids(), rng))
    alive = np.flatnonzero(~(real.terminated | real.truncated))
    copy = SessionCore(rules, world, batch=len(alive))
    real.clone_into(copy, alive, real.key[alive])
    realised, replayed = np.zeros(16), np.zeros(len(alive))
    running, copies = np.isin(np.arange(16), alive), np.ones(len(alive), dtype=bool)
    for _ in range(config.max_steps):
        reward, terminated, truncated, _ = real.step(base.act(real.observe_ids(), rng))
        realised += np.where(running, reward, 0.0)
        running &= ~(terminated | truncated)
        reward, terminated, truncated, _ = copy.step(base.act(copy.observe_ids(), rng))
        replayed += np.where(copies, reward, 0.0)
        copies &= ~(terminated | truncated)
    np.testing.assert_allclose(replayed, realised[alive])  # the same dice: the same return-to-go
    assert replayed.sum() > 0


def test_fresh_keys_never_see_the_real_draws(config: EnvConfig) -> None:
    """Planning with the real sessions' keys foresees their dice (clicks, leaving) and "gains" far
    more than planning on independent futures: the honest planner's futures never see them."""
    base = base_policy(config)
    options = PlannerConfig(rollouts=8, gate=0.0, candidates=("greedy", "strategies"))
    alone = run_sessions(base, config, 96, 9, progress=False)
    honest = run_sessions(RolloutPlanner(base, config, options), config, 96, 9, progress=False)
    cheat = run_sessions(
        RolloutPlanner(base, config, replace(options, clairvoyant=True)), config, 96, 9, progress=False
    )
    honest_gain, cheat_gain = paired_difference(honest, alone), paired_difference(cheat, alone)
    assert cheat_gain.ci95[0] > 0 and cheat_gain.mean > 3 * max(honest_gain.mean, 0.1)


def test_observed_clicks_move_a_copy_of_the_world_as_the_session_moved(config: EnvConfig) -> None:
    """A belief fed the real slates and clicks (``step_scores(observed=...)``) holds the real
    session's state: history, topics shown, drift and boredom, step after step."""
    world, base = build_world(config), base_policy(config)
    rules = replace(config, action_mode="weights")
    real, belief = SessionCore(rules, world, batch=8), SessionCore(rules, world, batch=8)
    users = np.arange(8) * 13 % len(world.user_weight)
    real.start_users(np.arange(8), users, np.arange(8, dtype=np.uint64) + 3)
    belief.start_users(
        np.arange(8), users, np.arange(8, dtype=np.uint64) + 99
    )  # other dice: only observations move it
    rng = np.random.default_rng(1)
    for _ in range(6):
        observation = real.observe_ids()
        scores, diverse = action_scores(
            rules, base.act(observation, rng), observation["candidate_features"], real.key, real.step_count
        )
        real.step_scores(scores, diverse)
        shown = (real.last_slate[:, :, None] == real.candidates[:, None, :]).argmax(axis=2)
        forced = np.full((8, 50), -1.0)
        np.put_along_axis(forced, shown, np.arange(5, 0, -1, dtype=np.float64)[None, :], axis=1)
        observed = np.stack([real.last_click, real.last_purchase], axis=1).astype(np.int8)
        belief.step_scores(forced, np.zeros(8, dtype=bool), observed=observed)
        np.testing.assert_array_equal(belief.last_slate, real.last_slate)
        for name in ("history", "topic_exposure", "session_clicks", "step_count"):
            np.testing.assert_array_equal(getattr(belief, name), getattr(real, name), err_msg=name)
        np.testing.assert_array_equal(belief.state.boredom, real.state.boredom)
        np.testing.assert_array_equal(belief.state.interest_drift, real.state.interest_drift)


def test_the_fitted_planner_acts_in_the_true_shop_on_its_own_belief(config: EnvConfig) -> None:
    base = base_policy(config)
    planner = RolloutPlanner(base, replace(config, simulator="fitted"), PlannerConfig(rollouts=4))
    result = run_sessions(planner, config, 32, 4, progress=False)
    assert len(planner._beliefs) == 1 and planner.decisions > 0  # planned in its own model
    assert len(result.returns) == 32 and np.isfinite(result.returns).all()


def test_a_planner_with_parts_of_the_truth_plans_in_the_mended_fit(config: EnvConfig) -> None:
    """``--planner-true-parts``: planner:fitted's model is the fit with those mechanisms taken from
    the truth (the instrument that says which of the fit's errors cost the planner); planner:true
    and an ensemble refuse it, and so does a mechanism that does not exist."""
    from agents.evaluation.evaluate import EvaluateConfig
    from agents.evaluation.load import make_planner
    from agents.training.distill import DistillConfig
    from simulators.fit.mixed import MixedSimulator

    base = base_policy(config)
    options = PlannerConfig(rollouts=4, true_parts="boredom,leave")
    planner = make_planner("planner:fitted", config, options)
    assert planner.model.true_parts == "boredom,leave" and planner.model.simulator == "fitted"
    mended, truth = planner.world.simulator, build_world(config).simulator
    assert isinstance(mended, MixedSimulator)
    for name in ("boredom_per_view", "boredom_retention", "leave_bias", "leave_per_click"):  # the truth's
        assert getattr(mended.dynamics, name) == getattr(truth.dynamics, name)
    fitted = build_world(replace(config, simulator="fitted")).simulator
    assert mended.dynamics.drift_per_click == fitted.dynamics.drift_per_click  # the fit's
    assert np.isfinite(run_sessions(planner, config, 8, 4, progress=False).returns).all()
    with pytest.raises(ConfigError, match="needs planner:fitted"):
        RolloutPlanner(base, config, options)  # the truth has no fit to mend
    with pytest.raises(ConfigError, match="patience"):
        PlannerConfig(true_parts="patience")
    with pytest.raises(ConfigError, match="--planner-ensemble"):
        PlannerConfig(rollouts=4, ensemble=2, true_parts="leave")
    with pytest.raises(ConfigError, match="planner:fitted only"):
        EvaluateConfig(json="out.json", policy=("planner:fitted", "planner:true"), planner=options)
    with pytest.raises(ConfigError, match="evaluate planner:fitted with it"):
        EvaluateConfig(json="out.json", policy=("tuned-weights",), planner=options)
    with pytest.raises(ConfigError, match="never learns from parts of the truth"):
        DistillConfig(planner=options)


def test_confirmation_keeps_a_lucky_candidate_from_being_played(config: EnvConfig) -> None:
    rng = np.random.default_rng(0)
    planner = RolloutPlanner(base_policy(config), config, PlannerConfig(rollouts=64))
    # 2,000 states x 20 candidates whose true gain is 0: picking the best of 20 noisy means
    # and testing it on the same futures plays one often; testing it on fresh futures rarely
    null = rng.normal(0.0, 1.0, size=(2_000, 20, 64))
    null[:, 0] = 0.0
    confirmed = planner.choose(null)
    unconfirmed = replace(planner, config=replace(planner.config, confirm=False)).choose(null)
    assert (confirmed > 0).mean() < 0.05 < (unconfirmed > 0).mean()
    # a real gain of 1 on one candidate is still found
    real = null.copy()
    real[:, 7] += 1.0
    assert (planner.choose(real) == 7).mean() > 0.95


def test_an_ensemble_planner_counts_its_members_disagreement_against_a_deviation(config: EnvConfig) -> None:
    """Pessimism: a gain of 1 the members agree on is played; the same gain when the members
    disagree by 1 is refused at kappa 2 and played at kappa 0 (their mean)."""
    fitted = replace(config, simulator="fitted")
    options = PlannerConfig(rollouts=4, ensemble=2, kappa=2.0)
    planner = RolloutPlanner(base_policy(config), fitted, options)
    assert [w.key for w in planner.worlds] != [build_world(fitted).key] * 2  # two other fits of the logs
    gain = np.zeros((2, 3, 64))
    gain[:, 2] = 1.0 + np.random.default_rng(0).normal(0.0, 0.1, size=(2, 64))
    spread = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # session 1: the members disagree
    np.testing.assert_array_equal(planner.choose(gain, spread), [2, 0])
    calm = replace(planner, config=replace(options, kappa=0.0))
    np.testing.assert_array_equal(calm.choose(gain, spread), [2, 2])
    result = run_sessions(planner, config, 16, 4, progress=False)  # in the true shop, on two beliefs
    assert len(planner._beliefs) == 2 and planner.decisions > 0 and np.isfinite(result.returns).all()
    with pytest.raises(ConfigError, match="split evenly"):
        PlannerConfig(rollouts=5, ensemble=2)
    with pytest.raises(ConfigError, match="needs --planner-ensemble"):
        PlannerConfig(kappa=1.0)


def test_in_the_retention_env_the_futures_go_on_into_the_user_s_next_sessions() -> None:
    returning = replace(SMALL_SHOP, returns=ShopReturns(enabled=True))
    month = EnvConfig(data=str(shop_folder(returning)), candidates="popularity", simulator="true",
                      max_steps=12, horizon_days=28.0)  # fmt: skip
    base = base_policy(month)
    world = build_world(month)
    real = SessionCore(replace(month, action_mode="weights"), world, batch=32)
    real.start(np.arange(32), np.random.default_rng(3).random((32, 2)) * [1.0, 2.0**53])
    first = real.slates(*action_scores(
        replace(month, action_mode="weights"), base.act(real.observe_ids(), np.random.default_rng(0)),
        real.observe_ids()["candidate_features"], real.key, real.step_count,
    ))  # fmt: skip
    keys = np.arange(32, dtype=np.uint64) + 101
    totals = {}
    for across in (True, False):
        planner = RolloutPlanner(base, month, PlannerConfig(rollouts=2, across_sessions=across, depth=60))
        planner.bind(real)
        totals[across] = planner._play(
            real,
            real.ledger,
            np.arange(32),
            keys,
            first,
            np.random.default_rng(1),
            planner.model,
            planner.world,
        )
    # the same futures up to each session's end (same keys), then the users who come back go on
    assert (totals[True] >= totals[False] - 1e-9).all() and (totals[True] > totals[False]).any()
    assert real.clock is not None and (real.clock.sessions == 0).all()  # the real sessions were only read
