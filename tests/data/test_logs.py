"""simulators.data.logs: LoggedData's schema validation (table-driven), time splits, hold-outs and sessions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.core.errors import DataError
from simulators.data.logs import LoggedData, sessionize
from tests.conftest import tiny_logs

Mutation = Callable[[LoggedData], None]


def _set(table: str, column: str, row: int, value: object) -> Mutation:
    def mutate(logs: LoggedData) -> None:
        frame = getattr(logs, table)
        if isinstance(value, str) and not pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value

    return mutate


def _drop(table: str, column: str) -> Mutation:
    def mutate(logs: LoggedData) -> None:
        setattr(logs, table, getattr(logs, table).drop(columns=[column]))

    return mutate


def _retype(table: str, column: str, values: list[object]) -> Mutation:
    def mutate(logs: LoggedData) -> None:
        getattr(logs, table)[column] = values

    return mutate


BAD_INPUTS: list[tuple[str, Mutation, str]] = [
    ("missing interaction column", _drop("interactions", "click"), "interactions: missing column(s) ['click']"),
    ("missing item column", _drop("items", "text"), "items: missing column(s) ['text']"),
    ("missing user column", _drop("users", "user_id"), "users: missing column(s) ['user_id']"),
    ("click as words", _retype("interactions", "click", ["yes", "no"] * 3), "interactions.click: wrong type"),
    ("float ids", _retype("interactions", "item_id", [10.5, 11.0, 12.0, 10.0, 11.0, 12.0]), "interactions.item_id: wrong type"),
    ("timestamp as words", _retype("interactions", "timestamp", ["a"] * 6), "interactions.timestamp: wrong type"),
    ("text not a string", _retype("items", "text", ["a", 3, "c"]), "items.text: wrong type"),
    ("NaN timestamp", _set("interactions", "timestamp", 2, np.nan), "interactions.timestamp: missing value"),
    ("NaN item id", _set("interactions", "item_id", 1, None), "interactions.item_id: missing value"),
    ("NaN propensity", _set("interactions", "propensity", 0, np.nan), "interactions.propensity: missing value"),
    ("click of 2", _set("interactions", "click", 0, 2), "interactions.click: expected 0 or 1"),
    ("position 0", _set("interactions", "position", 0, 0), "interactions.position: position must be >= 1"),
    ("zero propensity", _set("interactions", "propensity", 3, 0.0), "propensity outside (0, 1]"),
    ("negative propensity", _set("interactions", "propensity", 3, -0.2), "propensity outside (0, 1]"),
    ("propensity above 1", _set("interactions", "propensity", 3, 1.5), "propensity outside (0, 1]"),
    ("infinite rating", _retype("interactions", "rating", [1.0, np.inf, 1.0, 1.0, 1.0, 1.0]), "interactions.rating: value is not finite"),
    ("unknown item", _set("interactions", "item_id", 4, 99), "interactions.item_id: id not in the items table"),
    ("unknown user", _set("interactions", "user_id", 5, 3), "interactions.user_id: id not in the users table"),
    ("duplicate item", _set("items", "item_id", 2, 11), "items.item_id: duplicate key"),
    ("duplicate user", _set("users", "user_id", 1, 1), "users.user_id: duplicate key"),
    ("duplicate slot", _set("interactions", "position", 1, 1), "interactions.slate_id+position: duplicate key"),
    ("time goes backwards", _set("interactions", "timestamp", 2, 50), "interactions.timestamp: goes backwards"),
    ("missing sensitive column", _drop("users", "gender"), "missing sensitive attribute column 'gender'"),
]  # fmt: skip


def test_tiny_logs_are_valid() -> None:
    assert tiny_logs().validate().summary()["interactions"] == 6


@pytest.mark.parametrize(("case", "mutate", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_names_the_problem(case: str, mutate: Mutation, message: str) -> None:
    logs = tiny_logs()
    mutate(logs)
    with pytest.raises(DataError) as err:
        logs.validate()
    assert message in str(err.value)
    if "missing column" not in message and "sensitive" not in message:
        assert "row" in str(err.value), "the message shows an example row"


def test_error_shows_the_offending_row() -> None:
    logs = tiny_logs()
    logs.interactions.loc[4, "item_id"] = 99
    with pytest.raises(DataError, match=r"first at interactions row 4: .*'item_id': .*99"):
        logs.validate()


def test_per_item_sums_a_column_by_catalog_row() -> None:
    logs = tiny_logs()
    np.testing.assert_array_equal(logs.per_item(), [2, 2, 2])  # impressions
    np.testing.assert_array_equal(logs.per_item("click"), [2, 0, 0])
    np.testing.assert_array_equal(logs.per_item("purchase"), [1, 0, 0])
    no_purchases = LoggedData(logs.interactions.drop(columns="purchase"), logs.items, logs.users)
    np.testing.assert_array_equal(no_purchases.per_item("purchase"), [0, 0, 0])


def test_popularity_is_a_smoothed_click_share() -> None:
    popularity = tiny_logs().popularity(smoothing=1.0)
    np.testing.assert_allclose(popularity, np.array([3, 1, 1]) / 5)


def test_item_rows_rejects_unknown_ids() -> None:
    logs = tiny_logs()
    np.testing.assert_array_equal(logs.item_rows([12, 10]), [2, 0])
    with pytest.raises(DataError, match="unknown item id 5"):
        logs.item_rows([5])


def _random_logs(n_sessions: int, seed: int) -> LoggedData:
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(n_sessions):
        start = int(rng.integers(0, 10_000))
        for step in range(int(rng.integers(1, 5))):
            rows.append(
                (
                    int(rng.integers(0, 5)),
                    int(rng.integers(0, 4)),
                    start + 10 * step,
                    session,
                    1,
                    int(rng.integers(0, 2)),
                )
            )
    interactions = pd.DataFrame(
        rows, columns=["user_id", "item_id", "timestamp", "session_id", "position", "click"]
    )
    items = pd.DataFrame({"item_id": range(4), "text": ["x"] * 4, "provider": ["p"] * 4})
    users = pd.DataFrame({"user_id": range(5)})
    return LoggedData(interactions, items, users).validate()


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 60), st.integers(0, 10_000), st.floats(0.0, 0.4), st.floats(0.0, 0.4))
def test_time_split_partitions_sessions_without_leaks(n: int, seed: int, valid: float, test: float) -> None:
    logs = _random_logs(n, seed)
    split = logs.split_by_time(valid_fraction=valid, test_fraction=test)
    sizes = [len(part.interactions) for part in split]
    assert sum(sizes) == len(logs.interactions)
    sessions = [set(part.interactions["session_id"]) for part in split]
    assert not (sessions[0] & sessions[1] or sessions[0] & sessions[2] or sessions[1] & sessions[2])
    ends = [part.interactions.groupby("session_id")["timestamp"].max() for part in split]
    for earlier, later in ((0, 1), (0, 2), (1, 2)):
        if len(ends[earlier]) and len(ends[later]):
            assert ends[earlier].max() <= ends[later].min()


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 40), st.integers(0, 10_000))
def test_a_session_is_first_where_it_starts_its_users_logs_split_or_not(n: int, seed: int) -> None:
    """``StepTable.session_first``: the sessions that start at their user's earliest interaction
    in the logs the histories come from, a split's sessions judged against the full logs."""
    from simulators.data.steps import build_steps

    rng = np.random.default_rng(seed)
    rows = [  # each session one user's, at a random start
        (user, int(rng.integers(0, 4)), start + 10 * step, session, 1, int(rng.integers(0, 2)))
        for session, (user, start) in enumerate(
            zip(rng.integers(0, 5, n), rng.integers(0, 10_000, n), strict=True)
        )
        for step in range(int(rng.integers(1, 5)))
    ]
    columns = ["user_id", "item_id", "timestamp", "session_id", "position", "click"]
    items = pd.DataFrame({"item_id": range(4), "text": ["x"] * 4, "provider": ["p"] * 4})
    logs = LoggedData(
        pd.DataFrame(rows, columns=columns), items, pd.DataFrame({"user_id": range(5)})
    ).validate()
    table = logs.interactions
    starts = table.groupby("session_id")["timestamp"].min()
    users = table.groupby("session_id")["user_id"].first()
    expected = starts <= table.groupby("user_id")["timestamp"].min()[users].to_numpy()
    steps = build_steps(logs)
    assert steps.session_first is not None
    order = table["session_id"].unique()  # the steps' sessions: in order of first appearance
    np.testing.assert_array_equal(steps.session_first, expected[order].to_numpy())
    later = logs.split_by_time(valid_fraction=0.0, test_fraction=0.5).test
    test = build_steps(later, history_from=logs)
    assert test.session_first is not None
    late = later.interactions["session_id"].unique()
    np.testing.assert_array_equal(test.session_first, expected[late].to_numpy())
    kept = test.subset_sessions(~test.session_first)  # a subset carries it
    assert kept.session_first is not None and not kept.session_first.any()


def test_split_fractions_are_checked() -> None:
    with pytest.raises(DataError, match="must be < 1"):
        tiny_logs().split_by_time(0.5, 0.5)


def test_holdout_keeps_each_users_last_interactions() -> None:
    logs = tiny_logs().validate()
    train, held = logs.holdout_last(1)
    assert len(train.interactions) + len(held.interactions) == 6
    assert sorted(held.interactions["user_id"]) == [1, 2]
    for user, group in logs.interactions.groupby("user_id"):
        last_time = group["timestamp"].max()
        assert (held.interactions.loc[held.interactions["user_id"] == user, "timestamp"] == last_time).all()
        assert (train.interactions.loc[train.interactions["user_id"] == user, "timestamp"] <= last_time).all()
    with pytest.raises(DataError):
        logs.holdout_last(0)


def test_sessionize_cuts_at_gaps() -> None:
    table = pd.DataFrame(
        {"user_id": [1, 1, 1, 2, 1], "item_id": [0] * 5, "timestamp": [0, 60, 4000, 10, 4100]}
    )
    out = sessionize(table, gap_s=1800)
    assert out["session_id"].tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(DataError):
        sessionize(table, gap_s=0)


def test_padded_histories_keep_the_last_clicks_in_order() -> None:
    logs = tiny_logs().validate()
    items, mask = logs.padded_histories(max_len=3)
    # user 1 clicked item 10 (t=100) then item 10 again (t=130): catalog row 0 twice.
    assert items[0].tolist() == [0, 0, -1] and mask[0].tolist() == [True, True, False]
    assert not mask[1].any()
    everything, _ = logs.padded_histories(max_len=1, positive_only=False)
    assert everything[:, 0].tolist() == [0, 2]  # last shown: user 1 -> item 10 at slot 2, user 2 -> 12
