"""agents.training.replay: n-step targets over Dict observations, against SB3's own n-step
buffer for flat observations on the same stream of transitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer

from agents.training.replay import DictNStepReplayBuffer
from simulators.core.errors import ConfigError

BOX = spaces.Box(-100, 100, (3,), np.float32)
ACTIONS = spaces.Discrete(4)


def fill(dict_buffer: DictNStepReplayBuffer, flat: NStepReplayBuffer, steps: int, seed: int) -> None:
    """The same transitions into both: sessions that end (left or cut at a cap) at random."""
    rng = np.random.default_rng(seed)
    n_envs = flat.n_envs
    obs = rng.normal(size=(n_envs, 3)).astype(np.float32)
    for _ in range(steps):
        following = rng.normal(size=(n_envs, 3)).astype(np.float32)
        action = rng.integers(0, 4, size=(n_envs, 1))
        reward = rng.normal(size=n_envs).astype(np.float32)
        done = rng.random(n_envs) < 0.2
        cut = done & (rng.random(n_envs) < 0.5)
        infos = [{"TimeLimit.truncated": bool(c)} for c in cut]
        flat.add(obs, following, action, reward, done, infos)
        dict_buffer.add({"x": obs}, {"x": following}, action, reward, done, infos)
        obs = rng.normal(size=(n_envs, 3)).astype(np.float32)


@pytest.mark.parametrize(("size", "steps"), [(64, 40), (32, 90)])  # part-filled, and wrapped round
def test_dict_targets_equal_sb3s_flat_targets(size: int, steps: int) -> None:
    kwargs = {"n_steps": 5, "gamma": 0.9}
    flat = NStepReplayBuffer(size, BOX, ACTIONS, n_envs=3, **kwargs)
    ours = DictNStepReplayBuffer(size, spaces.Dict({"x": BOX}), ACTIONS, n_envs=3, **kwargs)
    fill(ours, flat, steps, seed=1)
    np.random.seed(7)  # noqa: NPY002 (both buffers draw from SB3's stream, numpy's global one)
    expected = flat.sample(256)
    np.random.seed(7)  # noqa: NPY002
    got = ours.sample(256)
    for name in ("actions", "rewards", "dones", "discounts"):
        torch.testing.assert_close(getattr(got, name), getattr(expected, name))
    torch.testing.assert_close(got.observations["x"], expected.observations)
    torch.testing.assert_close(got.next_observations["x"], expected.next_observations)


def test_a_hand_computed_target() -> None:
    """One env: rewards 1, 2, 3 then the user leaves; a 2-step window from the first row sums
    1 + 0.5 * 2 and bootstraps from the third state at 0.5^2; from the third row the window stops
    at the leave: 3, no bootstrap."""
    buffer = DictNStepReplayBuffer(8, spaces.Dict({"x": BOX}), ACTIONS, n_envs=1, n_steps=2, gamma=0.5)
    for step, (reward, done) in enumerate([(1.0, False), (2.0, False), (3.0, True), (4.0, False)]):
        obs = np.full((1, 3), step, np.float32)
        buffer.add({"x": obs}, {"x": obs + 1}, np.zeros((1, 1)), np.array([reward]), np.array([done]),
                   [{"TimeLimit.truncated": False}])  # fmt: skip
    sample = buffer._get_samples(np.array([0, 2, 3]))
    assert sample.rewards.flatten().tolist() == [2.0, 3.0, 4.0]
    assert sample.discounts.flatten().tolist() == [0.25, 0.5, 0.5]
    assert sample.dones.flatten().tolist() == [0.0, 1.0, 0.0]  # the newest row bootstraps
    assert sample.next_observations["x"][:, 0].tolist() == [2.0, 3.0, 4.0]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="n_steps >= 1"):
        DictNStepReplayBuffer(8, spaces.Dict({"x": BOX}), ACTIONS, n_steps=0)
