"""Many user sessions stepped at once: a native ``gymnasium.vector.VectorEnv`` (SB3 view: ``envs.sb3``).

Same engine as ``RankingEnv`` (``SessionCore``); env ``i`` of a vector env reset with
``seed=s`` meets the same users and responses as a ``RankingEnv`` reset with ``seed=s + i``
given the same actions. Autoreset is same-step: a finished session's last observation goes to
``info["final_obs"]`` and the returned observation starts the next session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs import engine
from envs.config import env_config
from envs.core import SessionCore
from envs.world import RankingWorld, build_world
from simulators.core.errors import ConfigError

SESSIONS_PER_DRAW = 64
"""Sessions' worth of draws each env takes from its generator at once."""


class RankingVectorEnv(VectorEnv):
    """``num_envs`` parallel sessions in preallocated numpy arrays.

    Args:
        num_envs: parallel users.
        shared_ledger: one exposure ledger for all users (default) or one per env.
        copy: return fresh observation arrays (default) or live buffers overwritten next step.
        **options: the fields of :class:`~envs.config.EnvConfig`.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": ["ansi"]}  # noqa: RUF012

    def __init__(self, num_envs: int = 1, shared_ledger: bool = True, copy: bool = True, **options: Any):
        if num_envs < 1:
            raise ConfigError(f"num_envs must be >= 1, got {num_envs}")
        self.config = env_config(**options)
        self.num_envs = num_envs
        self.copy = copy
        self.render_mode = self.config.render_mode
        self.core = SessionCore(self.config, build_world(self.config), num_envs, shared_ledger=shared_ledger)
        self.single_observation_space = self.core.observation_space()
        self.single_action_space = self.core.action_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._draws = np.zeros((num_envs, SESSIONS_PER_DRAW, 2))
        self._next_draw = np.full(num_envs, SESSIONS_PER_DRAW)
        self._final: dict[str, np.ndarray] | None = None

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a session in every env; a seed also starts fresh ledgers."""
        if seed is not None:
            seeds = list(seed) if isinstance(seed, list) else [seed + i for i in range(self.num_envs)]
            if len(seeds) != self.num_envs:
                raise ConfigError(f"need {self.num_envs} seeds, got {len(seeds)}")
            self._rngs = [seeding.np_random(s)[0] for s in seeds]
            self.core.ledger.clear()
        self._next_draw[:] = SESSIONS_PER_DRAW  # fresh streams (or a fresh start) refill the buffers
        everyone = np.arange(self.num_envs)
        self.core.start(everyone, self._session_draws(everyone))
        return self.core.observe(self.copy), {"user": self.core.user.copy()}

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env; finished episodes restart in the same call (in the retention env a
        finished session goes on as the user's next one when they come back: ``_come_back``)."""
        reward, terminated, truncated, terms = self.core.step(self.core.check_actions(actions))
        info: dict[str, Any] = dict(terms)
        done = terminated | truncated
        if self.core.clock is not None:  # the retention env: an episode ends only when the user stays away
            terminated = self._come_back(done, reward, info)
            truncated = np.zeros_like(done)
            done = terminated
        if done.any():
            info["final_obs"] = self._final_observations(done)
            info["_final_obs"] = done.copy()
            index = np.flatnonzero(done)
            self.core.start(index, self._session_draws(index))
        return self.core.observe(self.copy), reward, terminated, truncated, info

    def _come_back(self, ended: np.ndarray, reward: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """The retention env after a step whose sessions ``ended``: the users who come back within
        the horizon go on in their slot (``reward`` gains ``return_bonus``); the others' episodes
        end. ``info`` gains ``returned`` and ``gap_days`` (0 where no session ended). Returns the
        episodes that ended."""
        clock = self.core.clock
        assert clock is not None
        came = np.zeros(self.num_envs, dtype=np.bool_)
        index = np.flatnonzero(ended)
        if len(index):
            came[index] = self.core.come_back(index)
        reward[came] += self.config.return_bonus
        info["returned"] = came
        info["gap_days"] = np.where(ended, clock.gap, 0.0)
        return ended & ~came

    def _final_observations(self, done: np.ndarray) -> Any:
        """Gymnasium's layout: batched arrays holding the last observation where ``done`` and
        zeros elsewhere. Fresh arrays, or reused buffers when ``copy=False``."""
        live = self.core.observe(copy=False)
        arrays = {"obs": live} if isinstance(live, np.ndarray) else live  # obs_mode="embedding": one array
        if self.copy or self._final is None:
            final = {key: np.empty(value.shape, value.dtype) for key, value in arrays.items()}
            if not self.copy:
                self._final = final
        else:
            final = self._final
        kernel = (
            engine.parallel_final_rows if self.num_envs >= engine.PARALLEL_MIN_BATCH else engine.final_rows
        )
        for key, value in arrays.items():
            rows = len(value)
            kernel(done, value.reshape(rows, -1), final[key].reshape(rows, -1))
        return final["obs"] if isinstance(live, np.ndarray) else final

    def _session_draws(self, index: np.ndarray) -> np.ndarray:
        """``(len(index), 2)`` session draws, each env reading its own generator's stream.

        Buffered ``SESSIONS_PER_DRAW`` sessions at a time: ``Generator.random(2 * n)`` yields
        the same numbers as ``n`` calls of ``random(2)``, so the stream equals a single env's.
        """
        empty = index[self._next_draw[index] >= SESSIONS_PER_DRAW]
        for i in empty:
            self._draws[i] = self._rngs[i].random(2 * SESSIONS_PER_DRAW).reshape(SESSIONS_PER_DRAW, 2)
        self._next_draw[empty] = 0
        draws = self._draws[index, self._next_draw[index]].copy()
        self._next_draw[index] += 1
        draws[:, 1] = np.floor(draws[:, 1] * 2.0**53)
        return draws

    @property
    def world(self) -> RankingWorld:
        """The world the sessions run in (shared, read-only)."""
        return self.core.world

    def render(self) -> tuple[str, ...] | None:
        """``ansi``: each env's last slate."""
        if self.render_mode != "ansi":
            return None
        return tuple(self.core.render(b) for b in range(self.num_envs))

    def fairness_metrics(self, row: int = 0) -> dict[str, float]:
        """The exposure ledger's metrics, and whether the catalog has provider groups at all."""
        return {**self.core.ledger.metrics(row), "provider_groups": self.core.world.has_provider_groups}
