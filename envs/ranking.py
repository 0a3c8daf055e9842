"""One user session is one episode: the agent ranks N candidates into a slate of K each step.

``RankingEnv`` is a thin single-user view over :class:`~envs.core.SessionCore`, the batched
engine that :mod:`envs.vector` steps for many users at once, so both share every equation.
Randomness: at reset each session draws a user and a 53-bit key from the env's generator;
within a session, uniforms are a counter-based hash of (key, step, slot), identical however
sessions are batched.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import ActionError, env_config
from envs.core import SessionCore, as_action_array, draw_session
from envs.world import build_world


class RankingEnv(gym.Env[dict[str, np.ndarray], Any]):
    """One simulated user session per episode (see the module docstring and README).

    Options are the fields of :class:`EnvConfig`, passed as keyword arguments.
    ``reset(seed=...)`` also starts a fresh exposure ledger; ``reset()`` keeps it, so the
    ledger spans sessions.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, **options: Any):
        self.config = env_config(**options)
        self.render_mode = self.config.render_mode
        self._build()

    def _build(self) -> None:
        self.world = build_world(self.config)
        self.core = SessionCore(self.config, self.world, batch=1)
        self.observation_space = self.core.observation_space()
        self.action_space = self.core.action_space()
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw a user and start their session."""
        super().reset(seed=seed)
        if seed is not None:
            self.core.ledger.clear()
        self.core.start(np.array([0]), draw_session(self.np_random)[None, :])
        self._started = True
        return _first(self.core.observe()), {"user": int(self.core.user[0])}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Show the slate the action ranks; the user answers each slot."""
        if not self._started:
            raise ActionError("call reset() before step()")
        batch_action = self.core.check_actions(as_action_array(action)[None, ...])
        reward, terminated, truncated, terms = self.core.step(batch_action, copy=False)  # read at once
        info: dict[str, Any] = {name: float(value[0]) for name, value in terms.items()}
        info["slate"] = self.core.last_slate[0].copy()
        value, ended, capped = float(reward[0]), bool(terminated[0]), bool(truncated[0])
        if self.core.clock is not None:  # the retention env (envs.retention)
            came = ended or capped
            if came:
                came = bool(self.core.come_back(np.array([0]))[0])
            info["returned"] = float(came)
            info["gap_days"] = float(self.core.clock.gap[0]) if ended or capped else 0.0
            value += self.config.return_bonus if came else 0.0
            ended, capped = (ended or capped) and not came, False
        if ended or capped:
            self._started = False
        return _first(self.core.observe()), value, ended, capped, info

    def render(self) -> str | None:
        """``ansi``: the last slate and the response."""
        return self.core.render(0) if self.render_mode == "ansi" else None

    def fairness_metrics(self) -> dict[str, float]:
        """The exposure ledger's metrics, and whether the catalog has provider groups at all."""
        return {**self.core.ledger.metrics(0), "provider_groups": self.world.has_provider_groups}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for heavy in ("world", "core", "observation_space", "action_space"):
            state.pop(heavy, None)
        state["_core_arrays"] = {k: v for k, v in self.core.__dict__.items() if k not in _WORLD_DERIVED}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arrays = state.pop("_core_arrays")
        self.__dict__.update(state)
        started = state.get("_started", False)
        self._build()
        self.core.__dict__.update(arrays)
        self._started = started


_WORLD_DERIVED = frozenset(
    {
        "world",
        "config",
        "item_topic",
        "slot_bias",
        "params",
        "cumulative_weights",
        "weights",
        "embedder",
    }
)
"""Core attributes rebuilt from the (cached) world on unpickling, so a pickle holds session state only."""


def _first(batch: Any) -> Any:
    if isinstance(batch, np.ndarray):
        return batch[0]
    return {name: value[0] for name, value in batch.items()}
