"""envs.session: the numpy bookkeeping of what the agent sees (the serving path's) gives the same
history, topics shown, repeats and context as the engine's compiled step, slate after slate."""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import EnvConfig
from envs.core import SessionCore
from envs.session import VisibleSession
from envs.world import build_world
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_visible_session_matches_the_engine_step_by_step(seed: int) -> None:
    config = EnvConfig(
        data=str(shop_folder(SMALL_SHOP)), candidates="popularity", max_steps=60, history_length=8
    )
    world = build_world(config)
    core = SessionCore(config, world, batch=1)
    rng = np.random.default_rng(seed)
    steps = repeats_seen = 0.0
    for session in range(30):
        user = int(rng.integers(len(world.user_weight)))
        core.start_users(np.array([0]), np.array([user]), np.array([seed * 7919 + session], dtype=np.uint64))
        mirror = VisibleSession(user, world.history[user], np.zeros(world.n_topics))
        done = False
        while not done:
            observation = core.observe_ids()
            context, mask = mirror.context(core.ledger, core.item_topic, config.max_steps)
            np.testing.assert_array_equal(observation["history"][0], mirror.history)
            np.testing.assert_array_equal(observation["history_mask"], mask)
            np.testing.assert_array_equal(observation["context"], context)
            action = rng.standard_normal((1, config.n_candidates)).astype(np.float32)
            _, terminated, truncated, _ = core.step(action)
            slate, clicks = core.last_slate[0], core.last_click[0]
            repeat = mirror.record_slate(core.item_topic[slate])
            mirror.record_clicks(slate, clicks, repeat)
            np.testing.assert_array_equal(core.topic_exposure[0], mirror.topic_exposure)  # bit for bit
            assert (core.repeat_shown[0], core.repeat_clicks[0]) == (
                mirror.repeat_shown,
                mirror.repeat_clicks,
            )
            assert core.session_clicks[0] == mirror.clicks and core.step_count[0] == mirror.step
            steps, repeats_seen, done = (
                steps + 1,
                repeats_seen + repeat.sum(),
                bool(terminated[0] or truncated[0]),
            )
    assert steps >= 60 and repeats_seen > 0  # the comparison covered repeats, not only fresh topics
