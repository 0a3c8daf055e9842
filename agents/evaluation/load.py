"""Policies by name: what ``--policy`` takes in ``agents.evaluate``, ``agents.ope`` and the
benchmarks (a baseline, a tuned re-ranker, a fair re-ranker, a rollout planner, or a run folder
of a trained agent or a distilled planner)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.policies.distilled import DistilledPlanner, is_distilled_run, load_distilled, read_record
from agents.policies.fair import FAIR_NAMES, make_fair
from agents.policies.planner import MODELS, PlannerConfig, RolloutPlanner
from agents.policies.protocol import Policy
from envs.config import EnvConfig, known_options
from simulators.core.errors import ConfigError

PLANNER_NAMES = tuple(f"planner:{model}" for model in MODELS)
"""The rollout planners by the world they simulate: ``planner:true`` (the shop's ground truth:
the ceiling row, only where a ground truth exists) and ``planner:fitted`` (the simulator fitted to
the logs: a model-based agent on any logs)."""
POLICY_CHOICES = (*POLICY_NAMES, *RERANKER_NAMES, *FAIR_NAMES, *PLANNER_NAMES)
"""Policies ``--policy`` takes by name (anything else is a run folder)."""
STATIC_NAMES = (*POLICY_NAMES, *RERANKER_NAMES, *FAIR_NAMES)
"""The static policies among them (a table's best static baseline is chosen among these)."""


def load_policy(
    spec: str,
    device: str = "auto",
    env: EnvConfig | None = None,
    planner: PlannerConfig | None = None,
    budget: TuningBudget | None = None,
) -> Policy:
    """A baseline by name (a re-ranker tuned for the world of ``env``, default options), a rollout
    planner (``planner:true`` / ``planner:fitted``, ``planner``'s options, over the tuned
    ``planner.base``), a distilled planner's run folder (``python -m agents.distill``; its base
    tuned for ``env``, by default the env it was distilled in) or a trained agent's run folder
    (or its ``model.zip``)."""
    if is_distilled_run(spec):
        return load_distilled_run(spec, env, budget)
    env = env or EnvConfig()
    if spec in POLICY_NAMES:
        return make_baseline(spec)
    if spec in RERANKER_NAMES:
        return load_or_tune(spec, env, budget)
    if spec in FAIR_NAMES:  # at its default knob (benchmarks.fairness sweeps it)
        return make_fair(spec, slate_size=env.slate_size)
    if spec in PLANNER_NAMES:
        return make_planner(spec, env, planner or PlannerConfig(), budget)
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--policy {spec!r}: not one of {list(POLICY_CHOICES)} and no such file")
    return TrainedAgent.load(path, device)


def make_planner(
    spec: str, env: EnvConfig, config: PlannerConfig, budget: TuningBudget | None = None
) -> RolloutPlanner:
    """``planner:MODEL`` for sessions of ``env``: the base policy is ``config.base`` tuned for the
    world of ``env`` (in its fitted simulator, like every re-ranker), the model ``env``'s world in
    the shop's ground truth (``true``, on the env's day when it runs in the true shop) or in the
    fitted simulator (``fitted``)."""
    model = spec.partition(":")[2]
    if model not in MODELS:
        raise ConfigError(f"--policy {spec!r}: a planner's model is one of {list(MODELS)}")
    base = load_or_tune(config.base, env, budget)
    day = env.true_day if model == "true" and env.simulator == "true" else None
    model_env = replace(env, simulator=model, true_day=day, pessimism=0.0)  # the planner counts its own
    return RolloutPlanner(base, model_env, config, name=spec)


def load_distilled_run(
    folder: str | Path, env: EnvConfig | None = None, budget: TuningBudget | None = None
) -> DistilledPlanner:
    """The distilled planner of ``folder`` over its base re-ranker tuned for ``env`` (default: the
    logs and options it was distilled with)."""
    record = read_record(Path(folder))
    env = env or EnvConfig(**known_options(record["env_options"]))
    base_name = str(record["planner"]["base"])
    return load_distilled(folder, load_or_tune(base_name, env, budget))


def policy_env_options(policy: Policy) -> dict[str, Any]:
    """Env options a trained agent needs (its observation shapes depend on them)."""
    options = dict(getattr(policy, "env_options", {}))
    options.pop("data", None)
    return options
