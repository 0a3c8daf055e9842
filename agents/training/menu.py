"""The weight vectors of a ``menu`` agent (``--action-mode menu``): what it picks among each step.

A ``weights`` agent's Gaussian head can only move its mean between the weight vectors a planner
switches among, and a mean between two of them is neither; a categorical head over the same
vectors can play either one. By default the menu is ``tuned-weights`` (the best static
re-ranker, entry 0: a ``static`` warm start plays it) and the rollout planner's ``weights``
candidates over it (:func:`agents.policies.planner.weight_candidates`); with ``--teacher`` it is
that distilled planner's candidates in the planner's order, so the teacher's choice ``a`` is the
agent's action ``a``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.distilled import planner_config, read_record
from agents.policies.planner import PlannerConfig, candidate_kinds, weight_candidates
from agents.training.config import TrainConfig
from simulators.core.errors import ConfigError

MENU_CANDIDATES = ("perturb", "diversify", "greedy")
"""The planner's candidate families a default menu holds besides ``tuned-weights`` itself."""


def menu_of(config: TrainConfig) -> tuple[float, ...]:
    """The ``action_menu`` a run of ``config`` picks among (module docstring), row-major."""
    budget = TuningBudget(sessions=config.tuning_sessions, cem_generations=config.tuning_generations)
    tuned = np.asarray(load_or_tune("tuned-weights", config.options, budget).weights, dtype=np.float32)[None]
    planner = (
        planner_config(read_record(Path(config.teacher))["planner"])
        if config.teacher
        else PlannerConfig(candidates=MENU_CANDIDATES)
    )
    rows = [tuned, *weight_candidates(tuned, candidate_kinds(planner, "weights"), planner.perturbation)]
    return tuple(float(v) for v in np.concatenate(rows).ravel())


def with_menu(config: TrainConfig) -> TrainConfig:
    """``config`` with its ``action_menu`` filled (a new ``menu`` run that names none); a menu
    given beside ``--teacher`` must be the teacher's (its choices index it)."""
    if config.options.action_mode != "menu":
        return config
    given = config.options.action_menu
    if given and not config.teacher:
        return config
    menu = menu_of(config)
    if given and given != menu:
        raise ConfigError(
            f"--teacher {config.teacher}: its choices index its candidate weight vectors; --action-menu names "
            "others: leave --action-menu out"
        )
    return replace(config, env_options=replace(config.options, action_menu=menu))
