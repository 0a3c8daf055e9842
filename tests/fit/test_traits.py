"""simulators.fit.traits: users' breadth, per-user leave offsets, and the traits a fit exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators.datasets import load_logs
from simulators.dynamics import sigmoid
from simulators.fit.pipeline import fit_simulator
from simulators.fit.simulator import FittedSimulator
from simulators.fit.traits import _offsets, centred_breadth, history_breadth
from tests.conftest import SMALL_SHOP
from tests.fit.test_fit import FAST


def test_history_breadth_known_answers() -> None:
    topic = np.array([0, 0, 1, 2, 3])
    history = np.array([[0, 1, -1, -1], [0, 2, -1, -1], [0, 2, 3, 4], [4, -1, -1, -1]])
    breadth = history_breadth(history, topic, 4)
    assert breadth[0] == 0.0  # two items of one topic
    np.testing.assert_allclose(breadth[1], np.log(2) / np.log(4))
    np.testing.assert_allclose(breadth[2], 1.0)  # every topic once
    assert np.isnan(breadth[3])  # one item says nothing about breadth
    centred = centred_breadth(breadth)
    assert centred[3] == 0.0 and abs(centred[:3].mean()) < 1e-12


def test_leave_offsets_recover_simulated_patience() -> None:
    """Users with known offsets leave at ``sigmoid(-2 + b_u)``; the penalised estimates track
    them, shrink towards 0, and vanish with a zero prior."""
    rng = np.random.default_rng(0)
    true = rng.normal(0.0, 1.0, 300)
    user = np.repeat(np.arange(300), 150)
    logit = np.full(len(user), -2.0)
    leave = (rng.random(len(user)) < sigmoid(logit + true[user])).astype(np.float64)
    fitted = _offsets(user, logit, leave, 300, tau=1.0)
    assert np.corrcoef(true, fitted)[0, 1] > 0.85
    assert fitted.std() < true.std() * 1.05  # shrinkage, never inflation
    assert not _offsets(user, logit, leave, 300, tau=0.0).any()


def test_fit_exports_user_traits(tmp_path: Path) -> None:
    logs = load_logs("shop", config=SMALL_SHOP)
    simulator, report = fit_simulator(logs, FAST)
    traits = simulator.user_traits
    assert traits.boredom_scale.shape == traits.leave_offset.shape == (logs.n_users,)
    chosen = report["user_traits"]
    assert chosen["patience_prior_sd"] >= 0 and "breadth_boredom_slope" in chosen
    rates = report["leave_rate_by_breadth_decile"]
    assert len(rates["simulated"]) == len(rates["logged"]) == 10
    simulator.save(tmp_path)
    again = FittedSimulator.load(tmp_path)
    np.testing.assert_array_equal(again.user_traits.leave_offset, traits.leave_offset)
    np.testing.assert_array_equal(again.user_traits.boredom_scale, traits.boredom_scale)
