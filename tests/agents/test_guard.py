"""The deployment guard's sequential canary test against known answers: its lower bounds cover the
true difference at their nominal rate, it ships a candidate that is not better at most at
``alpha``, it ships a clearly better one early, and it never ships a copy of the deployed policy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.studies.adapt.guard import canary_seed, look_sizes, sequential_test


def sessions(rng: np.random.Generator, shift: float, n: int) -> np.ndarray:
    """Paired per-session differences shaped like the shop's, with known mean ``shift``: returns of
    two policies on the same users (a shared, overdispersed user level, Poisson counts) where the
    candidate's rate is ``shift`` higher plus a zero-mean per-session effect."""
    level = 5.0 + rng.gamma(2.0, 12.5, n)  # mean 30, at least 5: the rates below stay positive
    deployed = rng.poisson(level)
    candidate = rng.poisson(level + shift + rng.uniform(-2.0, 2.0, n))
    return (candidate - deployed).astype(float)


def test_look_sizes_end_at_the_budget_and_grow() -> None:
    assert look_sizes(2000, 4) == [500, 1000, 1500, 2000]
    assert look_sizes(5, 4) == [2, 3, 4, 5] and look_sizes(7, 1) == [7]


@pytest.mark.parametrize("shift", [0.0, -0.3])
def test_a_candidate_that_is_not_better_ships_at_most_at_alpha(shift: float) -> None:
    rng = np.random.default_rng(7)
    trials, alpha = 1_000, 0.10
    ships = sum(
        sequential_test({"a": sessions(rng, shift, 400), "b": sessions(rng, shift, 400)}, alpha, 4)[
            "decision"
        ]
        == "ship"
        for _ in range(trials)
    )
    # Binomial(1000, 0.10) exceeds 0.10 + 3 sd (0.128) with chance ~0.2%.
    assert ships / trials <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / trials)


def test_one_look_s_lower_bound_misses_the_true_difference_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(11)
    trials, alpha, shift = 1_000, 0.2, 0.4
    misses = sum(
        sequential_test({"a": sessions(rng, shift, 300)}, alpha, 1)["looks"][0]["candidates"]["a"]["lower"]
        > shift
        for _ in range(trials)
    )
    sd = np.sqrt(alpha * (1 - alpha) / trials)
    assert alpha - 3 * sd <= misses / trials <= alpha + 3 * sd


def test_every_look_s_lower_bound_covers_the_true_difference_together_at_least_at_one_minus_alpha() -> None:
    rng = np.random.default_rng(12)
    trials, alpha, shift = 1_000, 0.1, 0.4
    misses = 0
    for _ in range(trials):
        record = sequential_test({"a": sessions(rng, shift, 400)}, alpha, 4)
        misses += any(look["candidates"]["a"]["lower"] > shift for look in record["looks"])
    assert misses / trials <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / trials)


def test_a_clearly_better_candidate_ships_early_and_the_best_of_two_is_chosen() -> None:
    rng = np.random.default_rng(3)
    record = sequential_test({"small": sessions(rng, 0.5, 2000), "large": sessions(rng, 3.0, 2000)}, 0.05, 4)
    assert record["decision"] == "ship" and record["shipped"] == "large"
    assert record["sessions"] == 500 and record["bound"] > 0


def test_a_copy_of_the_deployed_policy_is_never_shipped() -> None:
    record = sequential_test({"copy": np.zeros(2000)}, 0.05, 4)
    assert record["decision"] == "keep" and record["shipped"] is None and record["bound"] == 0.0
    assert len(record["looks"]) == 4  # it never leaves the canary early either: its upper bound is 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=4, max_size=60),
    st.floats(0.01, 0.4),
    st.integers(1, 5),
)
def test_a_shipped_candidate_had_a_positive_lower_bound_at_the_look_that_shipped_it(
    values: list[float], alpha: float, looks: int
) -> None:
    d = np.array(values)
    record = sequential_test({"a": d, "b": -d}, alpha, looks)
    assert record["level_per_test"] == pytest.approx(alpha / (2 * looks))
    if record["decision"] == "ship":
        last = record["looks"][-1]["candidates"][record["shipped"]]
        assert last["lower"] > 0 and record["bound"] == last["lower"]
        assert all(
            look["candidates"].get(record["shipped"], {"lower": 0})["lower"] <= 0
            for look in record["looks"][:-1]
        )
    else:
        assert record["sessions"] <= len(d)


def test_canary_users_differ_by_loop_and_week() -> None:
    seeds = {canary_seed(s, w) for s in range(10) for w in range(1, 10)}
    assert len(seeds) == 90 and all(0 <= s < 2**30 for s in seeds)
