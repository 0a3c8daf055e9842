"""The whole-session dynamics fit recovers the shop's true coefficients from its logs when the
click model and the users' traits are the truth's: drift and boredom told apart by their
memories, the leave hazard's boredom term from leaving. The step-wise fit it replaces is far off
on the same logs (drift_per_click 1.43, boredom_per_click 1.0 against 0.35 and 0.27)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.identification import training_steps, true_static_logits
from simulators.data.logs import LoggedData
from simulators.data.steps import StepTable, build_steps
from simulators.datasets import resolve_data
from simulators.dynamics import DynamicsParams
from simulators.fit.config import FitConfig
from simulators.fit.sessions import SessionFit, fit_session_dynamics
from simulators.fit.train import item_topics
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def shop_training_steps() -> tuple[LoggedData, ShopWorld, StepTable, np.ndarray, np.ndarray]:
    """The default shop's logs, its truth, the fit's training steps, the items' topics and the
    truth's static click logits of those steps."""
    source = resolve_data("shop")
    logs, truth = source.logs, source.truth
    assert truth is not None
    return logs, truth, *training_steps(logs, truth)


def test_the_whole_session_fit_recovers_the_true_dynamics() -> None:
    _, truth, train, topics, static = shop_training_steps()
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


def test_random_effects_tell_interest_the_static_logits_miss_from_drift() -> None:
    """Static logits that miss part of each user's interest in each topic (the truth's, minus a
    planted ``N(0, 0.6^2)`` per user and topic) and unknown leave offsets: without random effects
    the fit reads the missed interest as drift that never fades (spurious state dependence) and
    gets boredom's pull on leaving wrong in sign; with them the memories and the leave bias are the
    truth's, the spreads the planted ones, and the posterior means track the planted effects. (A
    click's drift and its boredom still trade off against each other and against boredom's leave
    coefficient: those three are not asserted here.)"""
    logs, truth, train, topics, true_static = shop_training_steps()
    items = np.maximum(train.items, 0)
    missed = np.random.default_rng(5).normal(0.0, 0.6, (logs.n_users, int(topics.max()) + 1))
    static = true_static - missed[train.user[:, None], topics[items]]
    traits = truth.user_traits
    unknown = np.zeros(logs.n_users)

    def fit(random_effects: bool) -> SessionFit:
        result = fit_session_dynamics(
            static, truth.slot_bias(5), train, train, topics, truth.config.max_steps, traits.boredom_scale,
            unknown, truth.dynamics, random_effects=random_effects,
        )  # fmt: skip
        assert result is not None
        return result

    true = truth.dynamics
    plain, mixed = fit(False), fit(True)
    # Without random effects the missed interest is read as drift that never fades, and the
    # offsets' spread leaves boredom with a leave coefficient of the wrong sign.
    assert plain.params.drift_retention > 0.99 and plain.params.leave_per_boredom < 0
    assert mixed.params.drift_retention == pytest.approx(true.drift_retention, abs=0.05)
    assert mixed.params.boredom_retention == pytest.approx(true.boredom_retention, abs=0.1)
    assert mixed.params.leave_per_boredom > 0
    assert mixed.params.leave_bias == pytest.approx(true.leave_bias, abs=0.3)
    assert mixed.interest_sd == pytest.approx(0.6, abs=0.1)  # the planted spread
    assert mixed.patience_sd == pytest.approx(float(traits.leave_offset.std()), abs=0.15)
    assert mixed.interests is not None and mixed.leave_offsets is not None
    seen = np.unique(train.user[:, None] * missed.shape[1] + topics[items]).astype(np.int64)
    assert (
        np.corrcoef(mixed.interests.ravel()[seen], missed.ravel()[seen])[0, 1] > 0.15
    )  # most seen once or twice
    assert np.corrcoef(mixed.leave_offsets, traits.leave_offset)[0, 1] > 0.3


@pytest.mark.slow
@pytest.mark.parametrize(("planted", "first"), [(1.0, -1.5), (0.0, 0.0)])
def test_session_effects_recover_a_planted_spread_of_visits(planted: float, first: float) -> None:
    """Logs of a small shop whose every session draws its own leave offset ``N(0, planted^2)``
    on top of its user's, and whose users' first visits add ``first`` to the leave logit (3,000
    sessions of 300 users): the fit recovers both, and finds neither where none was planted; the
    users' spread stays theirs."""
    dynamics = replace(DynamicsParams(), leave_session_sd=planted, leave_first_session=first)
    world = ShopWorld(replace(SMALL_SHOP, n_sessions=3_000, dynamics=dynamics))
    logs = world.simulate_logs()
    steps = build_steps(logs, history_from=logs)
    topics = item_topics(logs, np.zeros((logs.n_items, 1)), FitConfig())
    static = true_static_logits(world, steps)
    traits = world.user_traits
    fit = fit_session_dynamics(
        static, world.slot_bias(5), steps, steps, topics, world.config.max_steps, traits.boredom_scale,
        np.zeros(logs.n_users), world.dynamics, random_effects=True, session_effects=True,
    )  # fmt: skip
    assert fit is not None and fit.session_sd is not None
    assert steps.session_first is not None and 0 < steps.session_first.sum() < steps.n_sessions
    assert fit.session_sd == pytest.approx(planted, abs=0.2)
    assert fit.params.leave_first_session == pytest.approx(first, abs=0.4)
    assert fit.params.leave_session_sd == fit.session_sd  # the spread the simulator plays
    assert fit.patience_sd == pytest.approx(float(traits.leave_offset.std()), abs=0.15)
    # (the leave bias trades off against boredom's pull on leaving at this size: not asserted)
