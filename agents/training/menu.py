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

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from agents.evaluation.tuning import load_or_tune
from agents.policies.distilled import planner_config, read_record
from agents.policies.planner import PlannerConfig, candidate_kinds, weight_candidates
from agents.training.config import TrainConfig
from simulators.core.errors import ConfigError

MENU_CANDIDATES = ("perturb", "diversify", "greedy")
"""The planner's candidate families a default menu holds besides ``tuned-weights`` itself."""


def menu_of(config: TrainConfig) -> tuple[float, ...]:
    """The ``action_menu`` a run of ``config`` picks among (module docstring), row-major."""
    budget = config.tuning_budget
    tuned = np.asarray(load_or_tune("tuned-weights", config.options, budget).weights, dtype=np.float32)[None]
    planner = (
        planner_config(read_record(Path(config.teacher))["planner"])
        if config.teacher
        else PlannerConfig(candidates=MENU_CANDIDATES)
    )
    rows = [tuned, *weight_candidates(tuned, candidate_kinds(planner, "weights"), planner.perturbation)]
    return tuple(float(v) for v in np.concatenate(rows).ravel())


def with_menu(config: TrainConfig, recorded: Path | None = None) -> TrainConfig:
    """``config`` with its ``action_menu`` filled: a ``menu`` run that names none gets its default
    (module docstring), or a resumed one (``recorded``: its ``config.json``) the menu it trained with."""
    if config.options.action_mode != "menu" or config.options.action_menu:
        return config
    if recorded is not None:
        try:
            menu = tuple(json.loads(recorded.read_text())["env_options"]["action_menu"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{recorded}: no menu recorded to resume with ({err!r})") from None
    else:
        menu = menu_of(config)
    return replace(config, env_options=replace(config.options, action_menu=menu))
