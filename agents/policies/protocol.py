"""The one interface every policy has: a batch of observations in, a batch of actions out, in
the env's ``action_mode``. Baselines, re-rankers, trained agents, their ONNX exports and the
planner all satisfy it, so the evaluation, OPE and serving code takes any of them."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Policy(Protocol):
    """Anything that turns a batch of observations into a batch of actions.

    A policy that reads the sessions' state beyond the observation (the planner) also has a
    ``bind(core)`` method: ``run_sessions`` calls it with the env's :class:`~envs.core.SessionCore`
    before the first step, and the policy reads the core only through its interface."""

    @property
    def action_mode(self) -> str:
        """The env ``action_mode`` its actions are for."""
        ...

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """A batch of actions for a batch of ``observation``."""
        ...
