"""The one rollout loop and the one replay: sessions end when users leave or at the cap, and a
replayed state is the state the dynamics reach from the logged slates and clicks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulators.data.steps import build_steps
from simulators.dynamics import SessionState, advance
from simulators.rollout import replay, replay_probabilities, rollout
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def _lengths(world: ShopWorld, seed: int, cap: int = 8) -> np.ndarray:
    users = np.arange(200) % world.config.n_users
    policy = world.logging_policy
    lengths = np.zeros(len(users), dtype=np.int64)
    for step in rollout(
        world, users, lambda active, g: policy.sample(len(active), g), cap, np.random.default_rng(seed)
    ):
        assert step.slates.shape == (len(step.active), world.config.slate_size)
        lengths[step.active] += 1
    return lengths


def test_sessions_end_when_users_leave_or_at_the_cap() -> None:
    staying = ShopWorld(
        replace(SMALL_SHOP, dynamics=replace(SMALL_SHOP.dynamics, leave_bias=-50.0, leave_per_click=0.0))
    )
    assert (_lengths(staying, 0) == 8).all()
    leaving = ShopWorld(
        replace(SMALL_SHOP, dynamics=replace(SMALL_SHOP.dynamics, leave_bias=50.0, leave_per_click=0.0))
    )
    assert (_lengths(leaving, 0) == 1).all()
    world = ShopWorld(SMALL_SHOP)
    lengths = _lengths(world, 0)
    assert 1 < lengths.mean() < 8
    np.testing.assert_array_equal(lengths, _lengths(world, 0))  # the same seed, the same sessions


def test_replay_hands_out_the_state_the_dynamics_reach() -> None:
    world = ShopWorld(SMALL_SHOP)
    steps = build_steps(world.simulate_logs(50, log_seed=3))
    state = SessionState.fresh(steps.n_sessions, int(world.item_topic.max()) + 1)
    for part in replay(steps, world.item_topic, world.dynamics):
        np.testing.assert_array_equal(part.before.boredom, state.boredom[part.sessions])
        sub = state.take(part.sessions)
        advance(world.dynamics, sub, world.item_topic[steps.items[part.rows]], steps.clicks[part.rows])
        np.testing.assert_allclose(part.after.boredom, sub.boredom, rtol=1e-12)
        np.testing.assert_allclose(part.after.interest_drift, sub.interest_drift, rtol=1e-12)
        state.boredom[part.sessions], state.interest_drift[part.sessions] = sub.boredom, sub.interest_drift
    click, purchase = replay_probabilities(steps, world)
    assert click.shape == steps.items.shape and ((0 < click) & (click < 1)).all()
    first = steps.step == 0  # a fresh state: the static model
    fresh = SessionState.fresh(int(first.sum()), int(world.item_topic.max()) + 1)
    np.testing.assert_allclose(
        click[first], world.click_probability(steps.user[first], steps.items[first], fresh)
    )
    assert ((0 < purchase) & (purchase < 1)).all()
