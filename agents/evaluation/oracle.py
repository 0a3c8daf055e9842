"""The oracle-adaptive reference: the best static baseline for each type of user, chosen with
the users' true parameters (the shop's :class:`~simulators.shop.world.UserVariety`).

It is the upper bound of what adapting to a user's type can earn with static rankers: a policy
that knew each user's true variety taste and patience and picked, per type, the static baseline
that does best on such users. Types are the cells of a ``bins x bins`` grid of quantiles of true
variety and true patience (minus the leave offset). The choice per cell is made on one set of
sessions (``tuning``), the return measured on another (``evaluation``), so selection noise does
not inflate it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.evaluation.sessions import EvaluationResult
from simulators.core.errors import ConfigError
from simulators.shop.world import ShopWorld

TYPE_BINS = 3
"""Quantile bins per axis (variety, patience): 9 user types."""


def user_types(world: ShopWorld, bins: int = TYPE_BINS) -> np.ndarray:
    """``(n_users,)`` the type cell of each user: ``bins * variety bin + patience bin``, by
    quantiles over all users (a homogeneous shop puts everyone in one cell)."""
    axes = (world.user_variety, -world.user_traits.leave_offset)
    cells = np.zeros(world.config.n_users, dtype=np.int64)
    for values in axes:
        if np.ptp(values) == 0:
            index = np.zeros(len(values), dtype=np.int64)
        else:
            edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
            index = np.searchsorted(edges, values, side="right")
        cells = cells * bins + index
    return cells


def _users(result: EvaluationResult) -> np.ndarray:
    if result.users is None:
        raise ConfigError("the oracle needs each session's user (EvaluationResult.users)")
    return result.users


@dataclass
class OracleAdaptive:
    """The chosen baseline per type and the oracle's per-session returns on the evaluation users."""

    choice: dict[int, str]
    """Type cell -> the baseline chosen for it."""
    returns: np.ndarray
    """``(episodes,)`` the oracle's return on each evaluation session."""
    best_single: str
    """The best single baseline on the tuning sessions (what cells without sessions get)."""


def oracle_adaptive(
    tuning: dict[str, EvaluationResult], evaluation: dict[str, EvaluationResult], types: np.ndarray
) -> OracleAdaptive:
    """Per type cell, the baseline with the highest mean return on the ``tuning`` sessions; its
    returns on the ``evaluation`` sessions of that cell. Every result of one dict must have met
    the same users in the same order (same seed and episodes)."""
    if set(tuning) != set(evaluation) or not tuning:
        raise ConfigError("tuning and evaluation must hold results for the same baselines")
    names = sorted(tuning)
    for results in (tuning, evaluation):
        first = _users(results[names[0]])
        if any(not np.array_equal(_users(results[n]), first) for n in names):
            raise ConfigError("every baseline must meet the same users (same seed and episodes)")
    tune_cells = types[_users(tuning[names[0]])]
    best_single = max(names, key=lambda n: float(tuning[n].returns.mean()))
    choice = {}
    for cell in np.unique(types):
        rows = tune_cells == cell
        choice[int(cell)] = (
            max(names, key=lambda n: float(tuning[n].returns[rows].mean())) if rows.any() else best_single
        )
    eval_cells = types[_users(evaluation[names[0]])]
    returns = np.array(
        [evaluation[choice[int(c)]].returns[i] for i, c in enumerate(eval_cells)], dtype=np.float64
    )
    return OracleAdaptive(choice, returns, best_single)


def captured_share(agent: float, best_static: float, oracle: float) -> float | None:
    """The share of the oracle's gain over the best static baseline that ``agent`` earns
    (``None`` when the oracle gains nothing)."""
    gain = oracle - best_static
    return (agent - best_static) / gain if gain > 0 else None
