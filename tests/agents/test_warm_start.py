"""agents.training.warm_start's pieces checked against known answers."""

from __future__ import annotations

import numpy as np

from agents.training.warm_start import _returns_to_go


def test_returns_to_go_stop_at_each_episode_end_and_flag_the_cut_ones() -> None:
    """Two envs, gamma 0.5: env 0's episodes end after steps 1 and 3; env 1's never ends in the
    window, so none of its returns is a target."""
    rewards = np.array([[1.0, 1.0], [2.0, 1.0], [4.0, 1.0], [8.0, 1.0]])
    ended = np.array([[False, False], [True, False], [False, False], [True, False]])
    returns, complete = _returns_to_go(rewards, ended, 0.5)
    np.testing.assert_allclose(returns[:, 0], [1 + 0.5 * 2, 2, 4 + 0.5 * 8, 8])
    np.testing.assert_allclose(returns[:, 1], [1.875, 1.75, 1.5, 1.0])
    assert complete[:, 0].all() and not complete[:, 1].any()
