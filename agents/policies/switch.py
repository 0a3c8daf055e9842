"""State-dependent switches: the simplest adaptive policies, a rule a reader can state in a line
("drop the one-per-topic rule for the last three steps", "rank by freshness once the user stops
clicking"). The counterfactual fidelity report uses them to ask whether a fitted simulator values
adapting the way the truth does; each is also a fair baseline for a learned policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.config import CONTEXT, STRATEGIES, WEIGHTS
from simulators.core.errors import ConfigError

SWITCH_MODES = ("weights", "discrete")


@dataclass(frozen=True)
class ContextSwitch:
    """Play ``before`` while ``context[feature] < threshold``, then ``after``: two constant actions
    of one env ``action_mode`` (``weights``: a ``len(WEIGHTS)`` vector; ``discrete``: a strategy
    index), switched per session on one entry of the observation's ``context`` (``CONTEXT``)."""

    name: str
    """How the switch appears in reports."""
    mode: str
    """``weights`` or ``discrete``."""
    before: tuple[float, ...]
    """The action below the threshold (one strategy index in ``discrete`` mode)."""
    after: tuple[float, ...]
    """The action at or above it."""
    feature: str
    """The ``context`` entry read (e.g. ``step_fraction``, ``clicks_per_step``)."""
    threshold: float
    """Where the switch happens."""

    def __post_init__(self) -> None:
        if self.mode not in SWITCH_MODES:
            raise ConfigError(f"mode must be one of {SWITCH_MODES}, got {self.mode!r}")
        if self.feature not in CONTEXT:
            raise ConfigError(f"feature must be one of {CONTEXT}, got {self.feature!r}")
        size = len(WEIGHTS) if self.mode == "weights" else 1
        for action in (self.before, self.after):
            if len(action) != size:
                raise ConfigError(f"a {self.mode} action has {size} values, got {action}")
            if self.mode == "discrete" and action[0] not in range(len(STRATEGIES)):
                raise ConfigError(f"a strategy index lies in [0, {len(STRATEGIES)}), got {action[0]}")
            if self.mode == "weights" and not all(-1 <= w <= 1 for w in action):
                raise ConfigError(f"weights lie in [-1, 1], got {action}")

    @property
    def action_mode(self) -> str:
        """The env ``action_mode`` of its actions."""
        return self.mode

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """``before`` or ``after`` per row, by the row's ``context[feature]``."""
        switched = observation["context"][:, CONTEXT.index(self.feature)] >= self.threshold
        if self.mode == "discrete":
            return np.where(switched, int(self.after[0]), int(self.before[0])).astype(np.int64)
        before, after = (np.asarray(a, dtype=np.float32) for a in (self.before, self.after))
        return np.where(switched[:, None], after[None, :], before[None, :])
