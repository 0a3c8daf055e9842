"""The shop whose users come back (ShopReturns): off, it is today's shop bit for bit; on, its logs
follow the true return model, which a hazard fit of the truth's own form recovers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from simulators.core.errors import ConfigError
from simulators.fit.returns import fit_returns, session_gaps
from simulators.retention import COVARIATES, MIN_GAP_DAYS
from simulators.shop.config import ShopConfig, ShopReturns
from simulators.shop.world import ShopWorld
from tests.conftest import SMALL_SHOP


def _digest(config: ShopConfig) -> str:
    logs = ShopWorld(config).simulate_logs()
    return hashlib.sha256(logs.interactions.to_csv().encode()).hexdigest()


def test_the_off_switch_is_today_s_shop_bit_for_bit() -> None:
    off = replace(SMALL_SHOP, returns=ShopReturns(enabled=False, shape=2.0))
    assert off.to_json() == SMALL_SHOP.to_json() and off.fingerprint() == SMALL_SHOP.fingerprint()
    assert "returns" not in json.loads(SMALL_SHOP.to_json())
    assert _digest(off) == _digest(SMALL_SHOP)
    # today's shop still has a return process: each user's sessions a Poisson process at their activity share
    process = ShopWorld(SMALL_SHOP).return_process()
    assert process.shape == 1.0 and process.min_gap == 0.0 and not process.beta.any()
    on = replace(SMALL_SHOP, returns=ShopReturns(enabled=True))
    assert on.fingerprint() != SMALL_SHOP.fingerprint() and ShopConfig.from_json(on.to_json()) == on
    assert _digest(on) != _digest(SMALL_SHOP)


def test_the_shop_keeps_today_s_traffic() -> None:
    on = ShopWorld(replace(SMALL_SHOP, returns=ShopReturns(enabled=True)))
    sessions = on.simulate_logs().interactions["session_id"].nunique()
    assert 0.7 * SMALL_SHOP.n_sessions < sessions < 1.4 * SMALL_SHOP.n_sessions
    fixed = ShopWorld(replace(SMALL_SHOP, returns=ShopReturns(enabled=True, scale_days=5.0)))
    assert fixed.return_process().scale == 5.0 and on.return_process().scale != 5.0


def test_bad_return_parameters_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="shape"):
        ShopReturns(shape=0.0)
    with pytest.raises(ConfigError, match="one value per covariate"):
        ShopReturns(beta=(0.1, 0.2))  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_logs_follow_the_true_return_model(seed: int) -> None:
    config = ShopConfig(
        seed=seed, n_users=3_000, n_items=300, n_sellers=30, returns=ShopReturns(enabled=True)
    )
    world = ShopWorld(config)
    logs = world.simulate_logs()
    sessions = session_gaps(logs.interactions, logs.items.set_index("item_id")["category"])
    assert sessions["gap"].min() >= MIN_GAP_DAYS - 1e-9 and 0.2 < sessions["observed"].mean() < 0.9
    starts = logs.interactions.groupby("session_id")["timestamp"].min()
    assert starts.is_monotonic_increasing  # session ids follow the start times
    # the truth's own form: the covariates about its centre and each user's log activity
    x = np.column_stack([
        sessions[list(COVARIATES)].to_numpy() - np.array(config.returns.centre),
        np.log(world.user_activity[sessions["user_id"].to_numpy()] / world.user_activity.mean()),
    ])  # fmt: skip
    model = fit_returns(
        sessions["gap"].to_numpy(),
        sessions["observed"].to_numpy(),
        x,
        (*COVARIATES, "log_activity"),
        MIN_GAP_DAYS,
    )
    truth = [np.log(config.returns.shape), np.log(world.return_process().scale), *config.returns.beta, 1.0]
    estimates = [np.log(model.shape), np.log(model.scale), *model.beta]
    for estimate, true, se in zip(estimates, truth, model.se, strict=True):
        assert abs(estimate - true) < 4 * se, (estimate, true, se)


@pytest.mark.parametrize("returns", [False, True])
def test_the_logger_plays_a_first_visit_s_own_leave_term_in_users_first_sessions_only(returns: bool) -> None:
    """A shop whose users' first visits of the logs are far more patient (``leave_first_session``
    -3): in its logs those sessions run longer than the users' later ones, with or without returns;
    the key of a shop without the term is today's."""
    from simulators.data.steps import build_steps
    from simulators.dynamics import DynamicsParams

    patient = replace(DynamicsParams(), leave_first_session=-3.0)
    config = replace(SMALL_SHOP, n_sessions=1_500, returns=ShopReturns(enabled=returns), dynamics=patient)
    assert "leave_first_session" not in json.loads(SMALL_SHOP.to_json())["dynamics"]
    assert ShopConfig.from_json(config.to_json()) == config
    logs = ShopWorld(config).simulate_logs()
    steps = build_steps(logs)
    assert steps.session_first is not None and 0 < steps.session_first.mean() < 1
    first, later = steps.session_length[steps.session_first], steps.session_length[~steps.session_first]
    assert first.mean() > 1.3 * later.mean()
