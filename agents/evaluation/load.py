"""Policies by name: what ``--policy`` takes in ``agents.evaluate``, ``agents.ope`` and the
benchmarks (a baseline, a tuned re-ranker, a fair re-ranker, or a trained agent's run folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.evaluation.tuning import load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.policies.fair import FAIR_NAMES, make_fair
from agents.policies.protocol import Policy
from envs.config import EnvConfig
from simulators.core.errors import ConfigError

POLICY_CHOICES = (*POLICY_NAMES, *RERANKER_NAMES, *FAIR_NAMES)
"""Policies ``--policy`` takes by name (anything else is a run folder)."""


def load_policy(spec: str, device: str = "auto", env: EnvConfig | None = None) -> Policy:
    """A baseline by name (a re-ranker tuned for the world of ``env``, default options), or a
    trained agent's run folder (or its ``model.zip``)."""
    if spec in POLICY_NAMES:
        return make_baseline(spec)
    if spec in RERANKER_NAMES:
        return load_or_tune(spec, env or EnvConfig())
    if spec in FAIR_NAMES:  # at its default knob (benchmarks.fairness sweeps it)
        return make_fair(spec, slate_size=(env or EnvConfig()).slate_size)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--policy {spec!r}: not one of {list(POLICY_CHOICES)} and no such file")
    return TrainedAgent.load(path, device)


def policy_env_options(policy: Policy) -> dict[str, Any]:
    """Env options a trained agent needs (its observation shapes depend on them)."""
    options = dict(getattr(policy, "env_options", {}))
    options.pop("data", None)
    return options
