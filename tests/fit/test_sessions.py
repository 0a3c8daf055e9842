"""The whole-session dynamics fit recovers the shop's true coefficients from its logs when the
click model and the users' traits are the truth's: drift and boredom told apart by their
memories, the leave hazard's boredom term from leaving. The step-wise fit it replaces is far off
on the same logs (drift_per_click 1.43, boredom_per_click 1.0 against 0.35 and 0.27)."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.data.steps import build_steps
from simulators.datasets import resolve_data
from simulators.dynamics import DynamicsParams, SessionState
from simulators.fit.config import FitConfig
from simulators.fit.sessions import fit_session_dynamics
from simulators.fit.train import item_topics


def test_the_whole_session_fit_recovers_the_true_dynamics() -> None:
    source = resolve_data("shop")
    logs, truth = source.logs, source.truth
    assert truth is not None
    config = FitConfig()
    train = build_steps(
        logs.split_by_time(config.valid_fraction, config.test_fraction).train, history_from=logs
    )
    topics = item_topics(logs, np.zeros((logs.n_items, 1)), config)
    items = np.maximum(train.items, 0)
    static = truth.relevance(
        train.user, items, SessionState.fresh(len(train.user), truth.config.n_categories)
    )
    traits = truth.user_traits
    start = DynamicsParams(  # where the step-wise fit put them on these logs
        drift_per_click=1.425,
        drift_retention=0.95,
        boredom_per_view=0.063,
        boredom_per_click=1.0,
        boredom_retention=0.95,
        boredom_weight=1.0,
        leave_bias=-2.164,
        leave_per_boredom=0.117,
        leave_if_no_click=0.921,
        leave_per_click=-0.470,
    )
    fit = fit_session_dynamics(
        static, truth.slot_bias(5), train, train, topics, truth.config.max_steps, traits.boredom_scale,
        traits.leave_offset, start,
    )  # fmt: skip
    assert fit is not None
    true, weight = truth.dynamics, truth.dynamics.boredom_weight  # the fit counts boredom in logit units
    got = fit.params
    assert got.drift_per_click == pytest.approx(true.drift_per_click, abs=0.15)
    assert got.boredom_per_click == pytest.approx(weight * true.boredom_per_click, abs=0.12)
    assert got.boredom_per_view == pytest.approx(weight * true.boredom_per_view, abs=0.03)
    assert got.boredom_retention == pytest.approx(true.boredom_retention, abs=0.1)
    assert got.leave_per_boredom == pytest.approx(true.leave_per_boredom / weight, abs=0.25)
    assert got.leave_if_no_click == pytest.approx(true.leave_if_no_click, abs=0.3)
    assert fit.scale == pytest.approx(1.0, abs=0.05)  # the true logits need no calibration
