"""Generated bad input against RecGym's promise: every bad input ends in *one* :class:`RecGymError`
whose message (one line) names the offending field, column or option, or gives a valid result;
never another exception type.

Hypothesis generates the input; each example either raises a ``RecGymError`` naming what is
wrong, or returns a result that is checked to be valid (tables that hold the schema and can be
used, a config whose fields hold their types and ranges, a step with a finite reward and an
observation in its space). Any other exception fails the test. The runs are derandomized
(the same examples every time); ``RECGYM_FUZZ_EXPLORE=1`` draws fresh ones and
``RECGYM_FUZZ_SCALE=N`` draws N times as many.

Classes covered, with the generated examples per class (``max_examples``; hypothesis also
replays explicit ``@example`` cases and may stop early once a strategy is exhausted):

====  ======================================================================  ========
      class                                                                   examples
====  ======================================================================  ========
A1    valid tables (int or str ids, seconds / ISO dates / datetimes), CSV,        60
      CSV.gz or Parquet, in any row order: load as the sorted table
A2    malformed tables through the tabular loader (``load_logs(folder)``):       400
      missing columns, wrong dtypes, NaN / inf / negative / huge cells,
      duplicated ids and rows, unknown item and user ids, empty tables and
      empty files, unparseable timestamps, positions <= 0, clicks outside
      {0, 1}, propensities outside (0, 1], text in numeric columns
A3    ``LoggedData(...).validate()`` on in-memory tables with arbitrary          300
      cells (lists, dicts, complex, bytes, NA, datetimes, huge ints), whole
      columns of another dtype (category, complex, timedelta, nullable,
      sparse), duplicated column names, non-DataFrame tables
A4    time going backwards within a session, in any row order                    100
      (``validate`` names it; the loader sorts and accepts)
A5    loader options: unknown option names, ``column_map``,                      150
      ``session_gap_s``, ``sensitive_attributes`` of any type and value
A6    timestamps in seconds, milliseconds, microseconds or ISO dates load as      40
      the same sessions (the unit inferred from the values' size, and noted)
B1    one ``EnvConfig`` field at a time (every field of                   14 x 40 = 560
      ``dataclasses.fields(EnvConfig)``): None, bools, ints, huge ints,
      floats, NaN, inf, strings, lists, dicts, numpy scalars
B2    random option sets (known and unknown names, any values)                   250
B3    ``gym.make("ecommerce-v0", **options)`` refuses what ``env_config``         40
      refuses, with the same message (no world is built)
B4    checks that need the world (n_candidates beyond the catalog; session         4
      caps beyond ``MAX_STEPS``) on the small shop world
C1    actions for the single env, per action mode: wrong shape, dtype   3 x 150 = 450
      (float16..complex, bool, object, str, datetime), NaN, inf, huge
      values, out-of-range discrete actions, scalars, lists, junk
C2    the same for the vector env (2 envs), per action mode              3 x 40 = 120
D1    a run folder's ``config.json`` for ``--resume``: any text, any JSON,        150
      a real run config with one run or env field replaced by any value
E1    output paths (``check_output_file`` / ``check_output_folder``): a           80
      folder where a file is due, a file where a folder is due, a file in
      the way, ``.`` and ``..``, folders that cannot be written
====  ======================================================================  ========

In all 2,704 generated examples a run (about 20 s on 2 cores with warm caches). The inputs the
properties found to break the promise, now fixed, are pinned in
``test_what_the_properties_found_stays_fixed`` and in the regression tests at the end of the
module. One stays a strict xfail: gymnasium's ``make`` reads ``render_mode`` before RecGym's
env sees it (``RankingEnv`` alone refuses it by name).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import fields
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import gymnasium as gym
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

import envs  # noqa: F401 (registers the env ids)
from agents.training.config import TrainConfig, parse_train_config
from agents.training.run_folder import run_id_of
from envs.config import (
    ACTION_MODES,
    CANDIDATE_SOURCES,
    MAX_HISTORY,
    MAX_STEPS,
    MAX_WEIGHT,
    OBS_MODES,
    SIMULATORS,
    STRATEGIES,
    WEIGHTS,
    ActionError,
    EnvConfig,
    env_config,
)
from envs.ranking import RankingEnv
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError, DataError, DataWarning, RecGymError
from simulators.core.storage import check_output_file, check_output_folder
from simulators.data.logs import (
    INTERACTION_OPTIONAL,
    INTERACTION_REQUIRED,
    ITEM_REQUIRED,
    LoggedData,
    sessionize,
)
from simulators.datasets import load_logs, tabular
from simulators.datasets.shop import shop_folder
from simulators.datasets.tabular import UNIT_NAMES
from tests.conftest import MENU, SMALL_SHOP, mode_options, tiny_logs

T = TypeVar("T")
EXPLORE = bool(os.environ.get("RECGYM_FUZZ_EXPLORE"))
SCALE = int(os.environ.get("RECGYM_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    """Hypothesis settings of this suite: ``examples`` generated cases, no deadline, no database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,
        derandomize=not EXPLORE,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def check_refusal(err: RecGymError, *names: str) -> None:
    """``err``'s message is one line and names one of ``names``."""
    message = str(err)
    assert "\n" not in message, f"a RecGymError of more than one line: {message!r}"
    assert any(name in message for name in names), f"{message!r} names none of {names}"


def outcome(call: Callable[[], T], *names: str) -> T | RecGymError:
    """``call()``'s result, or the :class:`RecGymError` it raised, once checked to be one line
    naming one of ``names``. Any other exception propagates (and fails the test)."""
    try:
        return call()
    except RecGymError as err:
        check_refusal(err, *names)
        return err


# ================================================================================ tables
WORDS = ("red leather boot", "blue cotton shirt", "brass desk lamp", "green mug", "oak shelf")
TIME_FORMATS = ("seconds", "iso", "datetime")
FORMATS = ("csv", "csv.gz", "parquet")
CHECKED = {
    "interactions": (*INTERACTION_REQUIRED, *INTERACTION_OPTIONAL),
    "items": ITEM_REQUIRED,
    "users": ("user_id",),
}
"""The columns validation reads, per table (other columns are kept as they are)."""
REQUIRED = {"interactions": INTERACTION_REQUIRED, "items": ITEM_REQUIRED, "users": ("user_id",)}

Tables = dict[str, pd.DataFrame | None]


@st.composite
def valid_tables(draw: st.DrawFn, slates: bool | None = None) -> Tables:
    """Small valid logs: 1-5 items, 1-3 users, 1-3 sessions of 1-2 slates, int or str ids."""
    string_ids = draw(st.booleans())

    def ident(prefix: str, k: int) -> int | str:
        return f"{prefix}{k}" if string_ids else k + 1

    n_items, n_users, n_sessions = (draw(st.integers(1, high)) for high in (5, 3, 3))
    items = [ident("i", k) for k in range(n_items)]
    users = [ident("u", k) for k in range(n_users)]
    with_slates = draw(st.booleans()) if slates is None else slates
    optional = draw(st.booleans())
    rows: list[dict[str, Any]] = []
    slate = 0
    for s in range(n_sessions):
        user = draw(st.sampled_from(users))
        time = draw(st.integers(0, 2_000_000_000))
        for _ in range(draw(st.integers(1, 2))):
            time += draw(st.integers(1, 10_000))
            shown = draw(st.permutations(items))[: draw(st.integers(1, n_items))]
            for position, item in enumerate(shown, start=1):
                row: dict[str, Any] = {
                    "user_id": user,
                    "item_id": item,
                    "timestamp": time,
                    "session_id": ident("s", s),
                    "position": position,
                    "click": draw(st.integers(0, 1)),
                }
                if optional:  # a purchase comes with its click (the loaders' purchases_imply_clicks)
                    row["purchase"] = draw(st.integers(0, row["click"]))
                    row["propensity"] = draw(st.floats(0.001, 1.0))
                if with_slates:
                    row["slate_id"] = slate
                rows.append(row)
            slate += 1
    return {
        "interactions": pd.DataFrame(rows),
        "items": pd.DataFrame(
            {
                "item_id": items,
                "text": [WORDS[k % len(WORDS)] for k in range(n_items)],
                "provider": [draw(st.sampled_from(["a", "b", "c"])) for _ in items],
            }
        ),
        "users": (
            pd.DataFrame({"user_id": users, "gender": [draw(st.sampled_from("fm")) for _ in users]})
            if draw(st.booleans())
            else None
        ),
    }


def with_time_format(tables: Tables, time_format: str) -> Tables:
    """The interactions' seconds as they are, as ISO strings, or as a datetime column."""
    interactions = tables["interactions"]
    assert interactions is not None
    if time_format == "seconds":
        return tables
    dates = pd.to_datetime(interactions["timestamp"], unit="s", utc=True)
    shown = dates.map(lambda d: d.isoformat()) if time_format == "iso" else dates
    return {**tables, "interactions": interactions.assign(timestamp=shown)}


def write_tables(folder: Path, tables: Tables, formats: dict[str, str]) -> None:
    """Write each present table as CSV, CSV.gz or Parquet (CSV where Parquet cannot hold it)."""
    for name, table in tables.items():
        if table is None:
            continue
        if formats[name] == "parquet":
            try:
                table.to_parquet(folder / f"{name}.parquet", index=False)
                continue
            except (pa.ArrowException, TypeError, ValueError, OverflowError):  # mixed types: CSV instead
                (folder / f"{name}.parquet").unlink(missing_ok=True)
        suffix = ".csv.gz" if formats[name] == "csv.gz" else ".csv"
        table.to_csv(folder / f"{name}{suffix}", index=False)


@st.composite
def table_formats(draw: st.DrawFn) -> dict[str, str]:
    return {name: draw(st.sampled_from(FORMATS)) for name in ("interactions", "items", "users")}


def load_written(tables: Tables, formats: dict[str, str], **options: Any) -> LoggedData | RecGymError:
    """Write ``tables`` to a fresh folder and load it with the public loader; the result or the
    (checked by the caller) RecGymError."""
    with tempfile.TemporaryDirectory() as tmp:
        write_tables(Path(tmp), tables, formats)
        try:
            return load_logs(tmp, **options)
        except RecGymError as err:
            return err


def assert_valid_logs(logs: LoggedData) -> None:
    """What a valid result holds, checked directly (not by calling ``validate`` again), and that
    it can be used: popularity and histories."""
    assert isinstance(logs, LoggedData)
    table, items, users = logs.interactions, logs.items, logs.users
    assert len(table) and len(items)
    assert not table[list(INTERACTION_REQUIRED)].isna().to_numpy().any()
    for column in ("position", "click", *(c for c in ("purchase",) if c in table.columns)):
        assert table[column].dtype.kind in "iub", (column, table[column].dtype)
    positions = table["position"].to_numpy().astype(np.int64)
    assert (positions >= 1).all()
    for column in ("click", *(c for c in ("purchase",) if c in table.columns)):
        assert np.isin(table[column].to_numpy().astype(np.int64), [0, 1]).all(), column
    for column in ("timestamp", *(c for c in ("propensity", "rating") if c in table.columns)):
        assert table[column].dtype.kind in "iuf", (column, table[column].dtype)
        assert np.isfinite(table[column].to_numpy(dtype=np.float64)).all(), column
    if "propensity" in table.columns:
        propensity = table["propensity"].to_numpy(dtype=np.float64)
        assert ((propensity > 0) & (propensity <= 1)).all()
    assert items["item_id"].is_unique and users["user_id"].is_unique
    for column, known in (("item_id", items), ("user_id", users)):
        shown, listed = (frame[column].to_numpy(dtype=object) for frame in (table, known))
        assert pd.Series(shown, dtype=object).isin(listed).all(), column
    assert all(isinstance(text, str) for text in items["text"].to_numpy(dtype=object))
    codes = pd.factorize(table["session_id"])[0]
    times = table["timestamp"].to_numpy(dtype=np.float64)
    for code in np.unique(codes):
        assert (np.diff(times[codes == code]) >= 0).all(), "time goes back within a session"
    popularity = logs.popularity()
    assert popularity.shape == (len(items),) and np.isfinite(popularity).all()
    history, mask = logs.padded_histories(3)
    assert history.shape == (len(users), 3) and mask.shape == history.shape


def canonical(table: pd.DataFrame) -> pd.DataFrame:
    """The identity of each shown item, in the loader's order (session, time, slate, position)."""
    order = [c for c in ("session_id", "timestamp", "slate_id", "position") if c in table.columns]
    columns = [c for c in ("session_id", "slate_id", "position", "item_id", "click") if c in table.columns]
    return table.sort_values(order, kind="stable")[columns].astype(str).reset_index(drop=True)


# ----------------------------------------------------------------------- A1: valid tables
@fuzz(60)
@given(
    tables=valid_tables(),
    time_format=st.sampled_from(TIME_FORMATS),
    formats=table_formats(),
    data=st.data(),
)
def test_valid_tables_in_any_format_and_row_order_load_as_the_sorted_table(
    tables: Tables, time_format: str, formats: dict[str, str], data: st.DataObject
) -> None:
    interactions = tables["interactions"]
    assert interactions is not None
    order = data.draw(st.permutations(range(len(interactions))), label="row order")
    shuffled = {**tables, "interactions": interactions.iloc[list(order)].reset_index(drop=True)}
    logs = load_written(with_time_format(shuffled, time_format), formats)
    assert not isinstance(logs, RecGymError), logs
    assert_valid_logs(logs)
    pd.testing.assert_frame_equal(canonical(logs.interactions), canonical(interactions))
    np.testing.assert_allclose(  # seconds, whichever way they were written
        np.sort(logs.interactions["timestamp"].to_numpy(dtype=np.float64)),
        np.sort(interactions["timestamp"].to_numpy(dtype=np.float64)),
    )


# ------------------------------------------------------------------- A2: malformed tables
NUMBERS = st.one_of(
    st.integers(-(10**25), 10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2, -(2**63), 2**63, 2**64, 1e308, -1e-300, 0.5, math.nan, math.inf, -math.inf]),
)
TEXTS = st.one_of(
    st.text(st.characters(exclude_characters="\r"), max_size=8),  # pandas writes a bare \r: another table
    st.sampled_from(
        ["", " ", "nan", "NULL", "NA", "None", "inf", "-inf", "1e400", "0x10", "1,5", "True", "x"]
    ),
)
DATES = st.one_of(
    st.text(alphabet="0123456789-:T .+Z/", max_size=25),
    st.builds(
        "{}-{:02d}-{:02d} {:02d}:{:02d}".format,
        st.integers(-5, 99_999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
    st.datetimes(timezones=st.sampled_from([None, timezone.utc])).map(str),
    st.sampled_from(
        [
            "2023-01-01T00:00:00+25:00",
            "9999-12-31",
            "0001-01-01",
            "1e10",
            "NaT",
            "now",
            "today",
            "-1",
            "1970-01-01 00:00:00+14:00",
            "2262-04-12",
            "1677-09-21",
            "Jan 5 2020",
            "5/13/2020",
            "x",
        ]
    ),
)
CELLS = st.one_of(NUMBERS, TEXTS, DATES, st.booleans(), st.none())


def set_cell(table: pd.DataFrame, row: int, column: str, value: Any) -> pd.DataFrame:
    """A copy of ``table`` with one cell replaced (the column becomes ``object`` to hold it)."""
    changed = table.copy()
    changed[column] = changed[column].astype(object)
    changed.iat[row, list(changed.columns).index(column)] = value
    return changed


Mutation = tuple[Tables, bool, tuple[str, ...], str]
"""The changed tables, whether they must be refused, the names a refusal must mention, and a label."""


@st.composite
def mutations(draw: st.DrawFn, tables: Tables) -> Mutation:
    """One way of breaking ``tables`` (see the module docstring, A2)."""
    present = [name for name, table in tables.items() if table is not None]
    interactions = tables["interactions"]
    assert interactions is not None
    kind = draw(
        st.sampled_from(
            [
                "drop column",
                "bad cell",
                "duplicate row",
                "unknown id",
                "empty table",
                "empty file",
                "bad timestamp",
                "bad position",
                "bad click",
                "bad propensity",
                "text column",
            ]
        )
    )
    name = draw(st.sampled_from(present))
    table = tables[name]
    assert table is not None
    row = draw(st.integers(0, len(table) - 1))
    if kind == "drop column":
        # The tabular loader fills in what it can (position, session_id, text, provider) and refuses
        # only a table without its ids, time or any feedback, or slates without positions.
        column = draw(st.sampled_from(REQUIRED[name]))
        feedback = {"click", "rating", "event"} & set(interactions.columns) - {column}
        refused = (
            column in tabular.REQUIRED[name]
            or (column == "click" and not feedback)
            or (column == "position" and "slate_id" in table.columns)
        )
        return {**tables, name: table.drop(columns=[column])}, refused, (column,), kind
    if kind == "bad cell":
        column = draw(st.sampled_from(list(table.columns)))
        value = draw(CELLS, label="cell")
        checked = column in CHECKED[name]
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        numeric = column in ("timestamp", "position", "click", "purchase", "propensity", "rating")
        infinite = isinstance(value, float) and math.isinf(value) and numeric  # "inf" is a fine id or text
        return (
            {**tables, name: set_cell(table, row, column, value)},
            checked and (missing or infinite),
            (column,),
            kind,
        )
    if kind == "duplicate row":
        doubled = pd.concat([table, table.iloc[[row]]], ignore_index=True)
        doubled = doubled.iloc[draw(st.permutations(range(len(doubled))))].reset_index(drop=True)
        names = {
            "items": ("items.item_id: duplicate key",),
            "users": ("users.user_id: duplicate key",),
            "interactions": (
                "interactions.slate_id+position: duplicate key",
                "interactions.session_id+timestamp+item_id+position: duplicate key",
            ),
        }[name]
        return {**tables, name: doubled}, True, names, kind
    if kind == "unknown id":
        column = draw(st.sampled_from(["item_id", "user_id"] if tables["users"] is not None else ["item_id"]))
        value = draw(st.one_of(st.integers(10**6, 10**12), st.just("zz"), st.just("i99")))
        row = draw(st.integers(0, len(interactions) - 1))
        changed = set_cell(interactions, row, column, value)
        return {**tables, "interactions": changed}, True, (f"interactions.{column}",), kind
    if kind == "empty table":
        return {**tables, name: table.iloc[:0]}, True, (name,), kind
    if kind == "empty file":
        return {**tables, name: pd.DataFrame()}, True, (name,), kind
    if kind == "bad timestamp":
        row = draw(st.integers(0, len(interactions) - 1))
        value = draw(DATES, label="timestamp")
        return (
            {**tables, "interactions": set_cell(interactions, row, "timestamp", value)},
            False,
            ("timestamp",),
            kind,
        )
    if kind == "bad position":
        row = draw(st.integers(0, len(interactions) - 1))
        value = draw(st.integers(-(10**6), 0))
        return (
            {**tables, "interactions": set_cell(interactions, row, "position", value)},
            True,
            ("position",),
            kind,
        )
    if kind == "bad click":
        column = draw(st.sampled_from([c for c in ("click", "purchase") if c in interactions.columns]))
        row = draw(st.integers(0, len(interactions) - 1))
        value = draw(st.integers(-(10**6), 10**6).filter(lambda v: v not in (0, 1)))
        return {**tables, "interactions": set_cell(interactions, row, column, value)}, True, (column,), kind
    if kind == "bad propensity":
        if "propensity" not in interactions.columns:
            return tables, False, (), "unchanged"
        row = draw(st.integers(0, len(interactions) - 1))
        value = draw(st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True)))
        return (
            {**tables, "interactions": set_cell(interactions, row, "propensity", value)},
            True,
            ("propensity",),
            kind,
        )
    # a whole numeric column of words
    columns = [
        c for c in ("timestamp", "position", "click", "purchase", "propensity") if c in interactions.columns
    ]
    column = draw(st.sampled_from(columns))
    words = [f"x{k}" for k in range(len(interactions))]
    return {**tables, "interactions": interactions.assign(**{column: words})}, True, (column,), kind


@fuzz(400)
@given(
    tables=valid_tables(),
    time_format=st.sampled_from(TIME_FORMATS),
    formats=table_formats(),
    data=st.data(),
)
def test_malformed_tables_are_one_error_naming_the_column_or_load_valid(
    tables: Tables, time_format: str, formats: dict[str, str], data: st.DataObject
) -> None:
    changed, must_fail, names, kind = data.draw(
        mutations(with_time_format(tables, time_format)), label="mutation"
    )
    result = load_written(changed, formats)
    event(f"{kind}: {'refused' if isinstance(result, RecGymError) else 'loaded'}")
    if isinstance(result, RecGymError):
        check_refusal(result, *names)
        assert isinstance(result, DataError), type(result)
    else:
        assert not must_fail, f"{kind}: accepted logs that break the schema"
        assert_valid_logs(result)


# ------------------------------------------------------- A3: validate on in-memory tables
OBJECTS = st.one_of(
    CELLS,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.sets(st.integers(), max_size=2),
    st.complex_numbers(),
    st.binary(max_size=3),
    st.decimals(allow_nan=True),
    st.datetimes(),
    st.sampled_from(
        [
            pd.NA,
            pd.NaT,
            np.datetime64("2020-01-01"),
            np.timedelta64(5, "s"),
            np.float32("nan"),
            np.int8(3),
            np.uint64(2**64 - 1),
            np.bool_(True),
            Decimal("1e400"),
            object(),
            datetime(2020, 1, 1, tzinfo=timezone.utc),
        ]
    ),
)
CASTS = (
    "category", "complex128", "timedelta64[ns]", "datetime64[ns]", "Int64", "Float64", "boolean", "string",
    "float16", "float32", "uint64", "int8", "bool", "object", "Sparse[int64]", "str",
)  # fmt: skip
NOT_TABLES = st.sampled_from(
    [None, [], [1, 2], {"item_id": [1]}, "items.csv", 3, np.zeros((2, 3)), pd.Series([1])]
)


def with_users(tables: Tables) -> dict[str, Any]:
    """The three tables, the users derived from the interactions where none were drawn."""
    interactions = tables["interactions"]
    assert interactions is not None
    users = tables["users"]
    if users is None:
        users = pd.DataFrame({"user_id": interactions["user_id"].drop_duplicates().to_numpy()})
    return {"interactions": interactions, "items": tables["items"], "users": users}


@fuzz(300)
@given(tables=valid_tables(), data=st.data())
def test_validate_names_the_column_of_any_odd_cell_dtype_or_table(
    tables: Tables, data: st.DataObject
) -> None:
    frames = with_users(tables)
    name = data.draw(st.sampled_from(list(frames)), label="table")
    table = frames[name]
    kind = data.draw(st.sampled_from(["cell", "cast", "duplicate column", "not a table"]), label="kind")
    names: tuple[str, ...] = (name,)
    must_fail = False
    if kind == "not a table":
        frames[name] = data.draw(NOT_TABLES, label="not a table")
        must_fail = True
    else:
        column = data.draw(st.sampled_from(list(table.columns)), label="column")
        names = (column,)
        if kind == "cell":
            row = data.draw(st.integers(0, len(table) - 1), label="row")
            frames[name] = set_cell(table, row, column, data.draw(OBJECTS, label="value"))
        elif kind == "cast":
            dtype = data.draw(st.sampled_from(CASTS), label="dtype")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    frames[name] = table.assign(**{column: table[column].astype(dtype)})
            except (TypeError, ValueError, OverflowError):
                assume(False)  # pandas cannot hold these values in that dtype
        else:
            frames[name] = pd.concat([table, table[[column]]], axis=1)
            must_fail = True
    logs = LoggedData(**frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)  # complex never passes as real
        result = outcome(logs.validate, *names)
    if isinstance(result, RecGymError):
        assert isinstance(result, DataError), type(result)
    else:
        assert not must_fail, f"{kind}: accepted"
        assert_valid_logs(result)


# ------------------------------------------------------ A4: time going back in a session
def goes_back(table: pd.DataFrame) -> bool:
    """Whether any session's rows, in table order, go back in time."""
    last: dict[Any, float] = {}
    for session, time in zip(table["session_id"], table["timestamp"].astype(float), strict=True):
        if time < last.get(session, -math.inf):
            return True
        last[session] = time
    return False


@fuzz(100)
@given(tables=valid_tables(slates=True), formats=table_formats(), data=st.data())
def test_time_going_back_in_a_session_is_named_in_any_row_order_and_the_loader_sorts(
    tables: Tables, formats: dict[str, str], data: st.DataObject
) -> None:
    interactions = tables["interactions"]
    assert interactions is not None
    order = data.draw(st.permutations(range(len(interactions))), label="row order")
    table = interactions.iloc[list(order)].reset_index(drop=True)
    if data.draw(st.booleans(), label="move a row back in time"):
        row = data.draw(st.integers(0, len(table) - 1), label="row")
        back = data.draw(st.integers(1, 20_000), label="by")
        table["timestamp"] = table["timestamp"] - np.where(np.arange(len(table)) == row, back, 0)
    frames = with_users({**tables, "interactions": table})
    if goes_back(table):
        with pytest.raises(
            DataError, match=r"interactions\.timestamp: goes backwards within a session"
        ) as info:
            LoggedData(**frames).validate()
        check_refusal(info.value, "timestamp")
    else:
        assert_valid_logs(LoggedData(**frames).validate())
    loaded = load_written({**tables, "interactions": table}, formats)  # files may list rows in any order
    assert not isinstance(loaded, RecGymError), loaded
    assert_valid_logs(loaded)
    pd.testing.assert_frame_equal(canonical(loaded.interactions), canonical(table))


# ------------------------------------------------------------------ A6: timestamp units
UNIT_SCALE = {"s": 1, "ms": 1_000, "us": 1_000_000}


@fuzz(40)
@given(
    starts=st.lists(st.integers(1_000_000_000, 2_000_000_000), min_size=1, max_size=6),
    gaps=st.lists(st.integers(0, 5_000), min_size=1, max_size=5),
    unit=st.sampled_from([*UNIT_SCALE, "iso"]),
)
def test_timestamps_in_any_unit_give_the_sessions_seconds_give(
    starts: list[int], gaps: list[int], unit: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Logs written in seconds, milliseconds, microseconds or ISO dates load as the same sessions
    in the same order (the unit inferred from the values' size, and said when not seconds)."""
    seconds = [start + sum(gaps[:i]) for start in starts for i in range(len(gaps))]
    table = pd.DataFrame(
        {"user_id": 1, "item_id": [i % 3 + 1 for i in range(len(seconds))], "timestamp": seconds, "click": 1}
    )
    folders = {}
    for name, written in (("s", table), (unit, table)):
        if name == "iso":
            written = table.assign(
                timestamp=pd.to_datetime(table["timestamp"], unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
            )
        elif name != "s":
            written = table.assign(timestamp=table["timestamp"] * UNIT_SCALE[name])
        folder = tmp_path_factory.mktemp(f"unit-{name}")
        written.to_csv(folder / "interactions.csv", index=False)
        folders[name] = folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        reference, loaded = load_logs(folders["s"]), load_logs(folders[unit])
    columns = ["user_id", "item_id", "timestamp", "session_id"]
    pd.testing.assert_frame_equal(loaded.interactions[columns], reference.interactions[columns])
    if unit in ("ms", "us"):
        assert any(UNIT_NAMES[unit] in note for note in loaded.notes), loaded.notes


# -------------------------------------------------------------------- A5: loader options
TABULAR_OPTIONS = set(inspect.signature(tabular.load).parameters)
OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.text(max_size=6), max_size=3),
    st.tuples(st.sampled_from(["gender", "user_id", "age"])),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)
COLUMN_NAMES = st.sampled_from(
    [*INTERACTION_REQUIRED, *INTERACTION_OPTIONAL, *ITEM_REQUIRED, "gender", "uid", "ts", ""]
)


@fuzz(150)
@given(tables=valid_tables(), formats=table_formats(), data=st.data())
def test_loader_options_of_any_name_type_and_value_are_named(
    tables: Tables, formats: dict[str, str], data: st.DataObject
) -> None:
    option = data.draw(
        st.sampled_from(
            ["unknown", "column_map", "session_gap_s", "sensitive_attributes", "rating_threshold", "click_events",
             "purchase_events"]
        ),
        label="option",
    )  # fmt: skip
    interactions = tables["interactions"]
    assert interactions is not None
    if option == "unknown":
        name = data.draw(
            st.text(min_size=1, max_size=10).filter(lambda n: n not in TABULAR_OPTIONS), label="name"
        )
        result = load_written(tables, formats, **{name: data.draw(OPTION_VALUES, label="value")})
        assert isinstance(result, ConfigError), result
        check_refusal(result, name, repr(name))
        return
    if option == "column_map":
        value = data.draw(
            st.one_of(
                st.dictionaries(
                    st.one_of(COLUMN_NAMES, st.text(max_size=3)),
                    st.one_of(COLUMN_NAMES, st.text(max_size=3)),
                    max_size=3,
                ),
                OPTION_VALUES,
            ),
            label="column_map",
        )
        names: tuple[str, ...] = ("column_map",)
        if isinstance(value, dict):
            names += tuple(map(str, (*value, *value.values())))
    elif option == "session_gap_s":
        tables = {**tables, "interactions": interactions.drop(columns=["session_id"])}
        value = data.draw(st.one_of(OPTION_VALUES, st.floats(1e-3, 1e9)), label="session_gap_s")
        names = ("session_gap_s", "session_id")
    elif option == "rating_threshold":  # feedback as ratings: the threshold makes the clicks
        ratings = data.draw(
            st.lists(st.integers(1, 5), min_size=len(interactions), max_size=len(interactions))
        )
        tables = {**tables, "interactions": interactions.drop(columns=["click"]).assign(rating=ratings)}
        value = data.draw(st.one_of(OPTION_VALUES, st.floats(0, 6)), label="rating_threshold")
        names = ("rating_threshold",)
    elif option in ("click_events", "purchase_events"):
        events = data.draw(st.lists(st.sampled_from(["view", "click", "purchase", "Cart", 3]),
                                    min_size=len(interactions), max_size=len(interactions)))  # fmt: skip
        tables = {**tables, "interactions": interactions.drop(columns=["click"]).assign(event=events)}
        value = data.draw(
            st.one_of(OPTION_VALUES, st.lists(st.sampled_from(["click", "view"]))), label=option
        )
        names = (option,)
    else:
        value = data.draw(
            st.one_of(OPTION_VALUES, st.lists(st.sampled_from(["gender", "user_id", "age", 3]), max_size=2)),
            label="sensitive_attributes",
        )
        names = ("sensitive_attributes", "sensitive attribute")
    result = load_written(tables, formats, **{option: value})
    if isinstance(result, RecGymError):
        check_refusal(result, *names)
    else:
        assert_valid_logs(result)
        if option == "session_gap_s" and value is not None:  # None: the default gap
            assert isinstance(value, (int, float)) and not isinstance(value, bool)
            assert math.isfinite(value) and value > 0, value
        if option == "rating_threshold" and value is not None:
            assert isinstance(value, (int, float)) and math.isfinite(value), value
            loaded = result.interactions  # a purchase counts as a click (purchases_imply_clicks)
            bought = loaded["purchase"] if "purchase" in loaded.columns else pd.Series(0, index=loaded.index)
            assert loaded["click"].tolist() == [
                int(r >= value or p > 0) for r, p in zip(loaded["rating"], bought, strict=True)
            ]
        if option in ("click_events", "purchase_events") and value is not None:
            assert isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value), (
                value
            )
        if option == "sensitive_attributes":
            assert not isinstance(value, str), value
            assert all(isinstance(a, str) and a in result.users.columns for a in result.sensitive_attributes)


# ---------------------------------------------- the bugs these properties found, pinned
def _tiny_folder(tmp_path: Path) -> Path:
    logs = tiny_logs()
    for name in ("interactions", "items", "users"):
        getattr(logs, name).to_csv(tmp_path / f"{name}.csv", index=False)
    return tmp_path


def _with(table: str, **columns: Any) -> Callable[[Path], Any]:
    """Validate ``tiny_logs`` with some columns of one table replaced."""

    def run(_: Path) -> Any:
        logs = tiny_logs()
        frames = {name: getattr(logs, name) for name in ("interactions", "items", "users")}
        frames[table] = frames[table].assign(**columns)
        return LoggedData(**frames).validate()

    return run


def _two_click_columns(_: Path) -> Any:
    logs = tiny_logs()
    doubled = pd.concat([logs.interactions, logs.interactions[["click"]]], axis=1)
    return logs.with_interactions(doubled).validate()


def _single_category_text(_: Path) -> Any:
    logs = tiny_logs()
    items = logs.items.iloc[:1].assign(text=lambda t: t["text"].astype("category"))
    interactions = logs.interactions[logs.interactions["item_id"] == 10]
    return LoggedData(interactions, items, logs.users).validate()


def _far_dates(tmp_path: Path) -> Any:
    folder = _tiny_folder(tmp_path)
    table = pd.read_csv(folder / "interactions.csv")
    table["timestamp"] = ["0001-01-01"] * 4 + ["9999-12-31"] * 2
    table.to_csv(folder / "interactions.csv", index=False)
    return load_logs(folder)


def _object_ids(*values: Any) -> pd.Series:
    return pd.Series(list(values), dtype=object)


FOUND: dict[str, tuple[Callable[[Path], Any], type[RecGymError] | None, str]] = {
    "dates far from 1970 (year 1, 9999)": (_far_dates, None, ""),
    "two columns of one name": (_two_click_columns, DataError, "interactions: duplicate column name(s) ['click']"),
    "column_map onto an existing column": (
        lambda t: load_logs(_tiny_folder(t), column_map={"user_id": "session_id"}),
        DataError,
        "duplicate column name(s) ['session_id'] after column_map",
    ),
    "an unknown loader option": (
        lambda t: load_logs(_tiny_folder(t), colour=1), ConfigError, "unknown option(s) ['colour'] for the tabular",
    ),
    "an unknown option of a named dataset": (
        lambda t: load_logs("shop", colour=1), ConfigError, "unknown option(s) ['colour'] for the shop",
    ),
    "the path twice": (lambda t: load_logs(t, path=t), ConfigError, "path given twice"),
    "an empty dataset name": (lambda t: load_logs(""), DataError, "unknown dataset ''"),
    "column_map a list": (lambda t: load_logs(_tiny_folder(t), column_map=["uid"]), ConfigError, "column_map must"),
    "sensitive_attributes an int": (
        lambda t: load_logs(_tiny_folder(t), sensitive_attributes=3), ConfigError, "sensitive_attributes must",
    ),
    "sensitive_attributes a string": (
        lambda t: load_logs(_tiny_folder(t), sensitive_attributes="gender"), ConfigError, "sensitive_attributes must",
    ),
    "session_gap_s text": (
        lambda t: load_logs(_tiny_folder(t), session_gap_s="1800"), ConfigError, "session_gap_s must",
    ),
    "session_gap_s NaN": (
        lambda t: load_logs(_tiny_folder(t), session_gap_s=math.nan), ConfigError, "session_gap_s must",
    ),
    "sessionize with a gap of text": (
        lambda t: sessionize(tiny_logs().interactions, "1800"),  # type: ignore[arg-type]
        DataError,
        "session gap (session_gap_s) must",
    ),
    "a categorical text column of one category": (_single_category_text, None, ""),
    "a bool user id (True == 1)": (
        _with("users", user_id=_object_ids(True, 2)), DataError, "users.user_id: wrong type object",
    ),
    "an id beyond int64 against string ids": (
        _with("users", user_id=_object_ids(2**63, 2)), DataError, "interactions.user_id: id not in the users table",
    ),
    "decimal's signalling NaN": (
        _with("interactions", user_id=_object_ids(Decimal("sNaN"), *[1] * 3, 2, 2)),
        DataError,
        "interactions.user_id: a value that cannot be read; 1 bad row(s)",
    ),
    "complex timestamps": (
        _with("interactions", timestamp=np.arange(6) + 0j), DataError, "interactions.timestamp: wrong type complex128",
    ),
}  # fmt: skip
"""Inputs the properties above found to end in another exception (or accepted), each now fixed."""


@pytest.mark.parametrize("case", FOUND)
def test_what_the_properties_found_stays_fixed(tmp_path: Path, case: str) -> None:
    call, error, message = FOUND[case]
    if error is None:
        assert_valid_logs(call(tmp_path))
        return
    with pytest.raises(error) as info:
        call(tmp_path)
    check_refusal(info.value, message)


# ============================================================================ env options
FIELDS = tuple(f.name for f in fields(EnvConfig))
CHOICES = (*ACTION_MODES, *OBS_MODES, *SIMULATORS, *CANDIDATE_SOURCES, "ansi", "human", "shop", "movielens")
OPTIONS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 60),
    st.integers(-(10**30), 10**30),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, MAX_HISTORY, MAX_HISTORY + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 0.5, 1.5, 1e300, -0.0, 1.0, 2.5, MAX_WEIGHT, MAX_WEIGHT * 2]
    ),
    st.text(max_size=8),
    st.sampled_from(CHOICES),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.sampled_from([np.int64(5), np.float64("nan"), np.float32(0.5), np.bool_(True), np.int32(20)]),
)
GYM_MAKE_PARAMETERS = set(inspect.signature(gym.make).parameters)
"""Names ``gym.make`` keeps for itself (``max_episode_steps``, ...): never passed to the env."""


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` is of an annotation's base type (``int``, ``float``, ``str``: no bools;
    ``bool``: a Python bool)."""
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, (bool, np.bool_)):
        return False
    if kind == "tuple[float, ...]":
        return isinstance(value, tuple) and all(type(v) is float for v in value)
    allowed: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "str": str}
    return isinstance(value, allowed[kind])


RANGES: dict[str, Callable[[Any, EnvConfig], bool]] = {
    "simulator": lambda v, c: v in SIMULATORS,
    "candidates": lambda v, c: v in CANDIDATE_SOURCES and (c.obs_mode != "embedding" or v == "ctr"),
    "slate_size": lambda v, c: 1 <= v <= c.n_candidates,
    "n_candidates": lambda v, c: v >= c.slate_size,
    "action_mode": lambda v, c: v in ACTION_MODES,
    "action_menu": lambda v, c: len(v) % len(WEIGHTS) == 0 and all(-1 <= x <= 1 for x in v),
    "obs_mode": lambda v, c: v in OBS_MODES,
    "fairness_lambda": lambda v, c: math.isfinite(v) and 0 <= v <= MAX_WEIGHT,
    "fairness_target": lambda v, c: v is None or 0 <= v <= 1,
    "purchase_weight": lambda v, c: math.isfinite(v) and 0 <= v <= MAX_WEIGHT,
    "max_steps": lambda v, c: 1 <= v <= MAX_STEPS,
    "history_length": lambda v, c: 1 <= v <= MAX_HISTORY,
    "render_mode": lambda v, c: v in (None, "ansi"),
}
"""What a valid config holds, field by field (a field without an entry: its type only)."""


def assert_valid_config(config: EnvConfig, options: dict[str, Any]) -> None:
    """Every field has its annotation's type and range; the options given are kept as given."""
    assert isinstance(config, EnvConfig)
    for f in fields(EnvConfig):
        value = getattr(config, f.name)
        kind, optional = str(f.type).removesuffix(" | None"), str(f.type).endswith("| None")
        assert (optional and value is None) or _is(value, kind), (f.name, value)
        assert RANGES.get(f.name, lambda v, c: True)(value, config), (f.name, value)
    for name, value in options.items():
        kept = getattr(config, name)
        assert (
            kept is value
            or (isinstance(value, int) and kept == float(value))
            or (isinstance(value, (list, tuple)) and kept == tuple(float(v) for v in value))
        ), name  # ints for floats: floats; a list for a tuple: a tuple


@pytest.mark.parametrize("field", FIELDS)
@fuzz(40)
@given(value=OPTIONS)
def test_every_env_option_refuses_a_bad_value_by_name(field: str, value: Any) -> None:
    result = outcome(lambda: env_config(**{field: value}), field)
    if isinstance(result, RecGymError):
        assert isinstance(result, ConfigError), type(result)
    else:
        assert_valid_config(result, {field: value})


OPTION_SETS = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10)), OPTIONS, max_size=4
)


@fuzz(250)
@given(options=OPTION_SETS)
def test_random_option_sets_are_one_error_naming_an_option_or_a_valid_config(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(FIELDS))
    result = outcome(lambda: env_config(**options), *options, *map(repr, options))
    if isinstance(result, RecGymError):
        assert isinstance(result, ConfigError), type(result)
        if unknown:
            check_refusal(result, *map(repr, unknown))
    else:
        assert not unknown
        assert_valid_config(result, options)


@fuzz(40)
@given(options=OPTION_SETS.map(lambda o: {k: v for k, v in o.items() if k not in GYM_MAKE_PARAMETERS}))
def test_gym_make_refuses_what_env_config_refuses_with_the_same_message(options: dict[str, Any]) -> None:
    assume(isinstance(options.get("render_mode", ""), str))  # gymnasium reads it first (xfail below)
    expected = outcome(lambda: env_config(**{"data": "shop", **options}), *options, *map(repr, options))
    assume(isinstance(expected, RecGymError))  # a valid set would build the default world
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium warns of a render mode it does not know
        with pytest.raises(RecGymError) as info:
            gym.make("ecommerce-v0", **options)
    assert str(info.value) == str(expected)


# ----------------------------------------------------------- B4 and C: the small world
@pytest.fixture(scope="module")
def small_data() -> str:
    """The unit tests' small shop (200 items) as a folder, the ``data`` of the envs below."""
    return str(shop_folder(SMALL_SHOP))


def small_env(data: str, **options: Any) -> RankingEnv:
    return RankingEnv(data=data, candidates="popularity", **options)


@fuzz(2)
@given(n_candidates=st.integers(SMALL_SHOP.n_items + 1, 10**30))
@example(n_candidates=SMALL_SHOP.n_items + 1)
def test_more_candidates_than_items_is_named(small_data: str, n_candidates: int) -> None:
    with pytest.raises(ConfigError) as info:
        gym.make("ecommerce-v0", data=small_data, candidates="popularity", n_candidates=n_candidates)
    check_refusal(info.value, f"n_candidates ({n_candidates}) must be <= the catalog's {SMALL_SHOP.n_items}")


@fuzz(2)
@given(max_steps=st.sampled_from([MAX_STEPS + 1, 2**31, 2**62, 2**63, 10**30]))
@example(max_steps=2**63 - 1)
def test_huge_max_steps_are_refused_by_name(small_data: str, max_steps: int) -> None:
    with pytest.raises(ConfigError) as info:
        small_env(small_data, max_steps=max_steps)
    check_refusal(info.value, f"max_steps must be <= {MAX_STEPS:,}")


def test_the_largest_session_cap_runs(small_data: str) -> None:
    env = small_env(small_data, max_steps=MAX_STEPS)
    env.reset(seed=0)
    _, reward, _, truncated, _ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert math.isfinite(reward) and not truncated


# ------------------------------------------------------------------------------ actions
SHAPES = ((), (1,), (0,), (2,), (3,))
ELEMENTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2, 2),
    st.integers(-10, 10).map(float),
    st.sampled_from([1e6, 1e6 + 1, -1e7, 1e300, 2.0**62, -(2.0**62), 7.0, 8.0, 3.0]),
)
DTYPES = (
    np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_,
    np.complex64, np.object_, np.str_,
)  # fmt: skip
JUNK: tuple[Any, ...] = (
    None,
    "abc",
    b"x",
    {},
    {"a": 1},
    (),
    set(),
    np.array(["2020-01-01"], dtype="datetime64[s]"),
)


@st.composite
def actions(draw: st.DrawFn, width: int, batch: int | None) -> Any:
    """An action for a ``width``-wide Box (or Discrete), for one env (``batch=None``) or a batch:
    arrays of many shapes and dtypes, scalars, nested lists (never ragged), junk."""
    from hypothesis.extra.numpy import array_shapes, arrays

    kind = draw(st.sampled_from(["array"] * 4 + ["scalar", "list", "junk"]))
    if kind == "junk":
        return draw(st.sampled_from(JUNK))
    if kind == "scalar":
        return draw(
            st.one_of(
                st.integers(-3, 12),
                st.integers(-(2**70), 2**70),
                st.floats(allow_nan=True, allow_infinity=True),
                st.booleans(),
                st.text(max_size=3),
                st.sampled_from(
                    [np.int64(3), np.uint64(2**64 - 1), np.float32(np.nan), np.int8(-1), np.bool_(False)]
                ),
            )
        )
    lead = () if batch is None else (batch,)
    right = lead if width == 1 else (*lead, width)  # a Discrete action is a scalar per env
    near = [
        lead,
        (*lead, width),
        (*lead, width - 1),
        (*lead, width + 1),
        (1, *lead, width),
        (*lead, width, 1),
    ]
    shapes = {
        "right": st.just(right),
        "near": st.sampled_from(near + list(SHAPES)),
        "any": array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=8),
    }
    shape = draw(st.sampled_from(["right"] * 3 + ["near", "any"]).flatmap(shapes.__getitem__), label="shape")
    values = draw(arrays(np.float64, shape, elements=ELEMENTS), label="values")
    dtype = draw(st.sampled_from(DTYPES), label="dtype")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # NaN or 1e300 cast to an integer: whatever numpy makes of it
        array: np.ndarray = values.astype(dtype)
    return array.tolist() if kind == "list" else array


def action_problem(mode: str, action: Any, width: int, batch: int | None) -> str | None:
    """What is wrong with ``action`` (a word its refusal must contain), or None for a valid one."""
    array = np.asarray(action)
    lead = () if batch is None else (batch,)
    if mode in ("discrete", "menu"):
        if array.shape != lead or not np.issubdtype(array.dtype, np.integer):
            return "integer"
        count = len(STRATEGIES) if mode == "discrete" else len(MENU) // len(WEIGHTS)
        return None if ((array >= 0) & (array < count)).all() else "must lie in"
    if array.shape != (*lead, width):
        return "shape"
    if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
        return "NaN"
    if mode == "weights" and np.abs(array.astype(np.float64)).max(initial=0.0) > MAX_WEIGHT:
        return "[-1, 1]"
    return None


def action_width(mode: str, n_candidates: int) -> int:
    return {"scores": n_candidates, "weights": len(WEIGHTS), "discrete": 1, "menu": 1}[mode]


@pytest.fixture(scope="module")
def single_envs(small_data: str) -> dict[str, RankingEnv]:
    """One small env per action mode (one world between them)."""
    built = {mode: small_env(small_data, **mode_options(mode)) for mode in ACTION_MODES}
    for env in built.values():
        env.reset(seed=0)
    return built


@pytest.fixture(scope="module")
def vector_envs(small_data: str) -> dict[str, RankingVectorEnv]:
    built = {
        mode: RankingVectorEnv(num_envs=2, data=small_data, candidates="popularity", **mode_options(mode))
        for mode in ACTION_MODES
    }
    for env in built.values():
        env.reset(seed=0)
    return built


@pytest.mark.parametrize("mode", ACTION_MODES)
@fuzz(150)
@given(data=st.data())
def test_bad_actions_are_one_action_error_naming_the_problem(
    single_envs: dict[str, RankingEnv], mode: str, data: st.DataObject
) -> None:
    env = single_envs[mode]
    width = action_width(mode, env.config.n_candidates)
    action = data.draw(actions(width, None), label="action")
    problem = action_problem(mode, action, width, None)
    event(f"refused: {problem}" if problem else "stepped")
    result = outcome(lambda: env.step(action), *([problem] if problem else ["action"]))
    if isinstance(result, RecGymError):
        assert isinstance(result, ActionError) and "action" in str(result), result
        assert problem is not None, f"a valid action refused: {result}"
        return
    obs, reward, terminated, truncated, info = result
    if terminated or truncated:
        env.reset()  # before any assertion: the next example steps a started session
    assert problem is None, f"an action with a {problem!r} problem was accepted: {action!r}"
    assert env.observation_space.contains(obs)
    assert math.isfinite(reward) and len(set(info["slate"].tolist())) == env.config.slate_size


@pytest.mark.parametrize("mode", ACTION_MODES)
@fuzz(40)
@given(data=st.data())
def test_bad_batched_actions_are_one_action_error_naming_the_problem(
    vector_envs: dict[str, RankingVectorEnv], mode: str, data: st.DataObject
) -> None:
    env = vector_envs[mode]
    width = action_width(mode, env.config.n_candidates)
    action = data.draw(actions(width, env.num_envs), label="action")
    problem = action_problem(mode, action, width, env.num_envs)
    event(f"refused: {problem}" if problem else "stepped")
    result = outcome(lambda: env.step(action), *([problem] if problem else ["action"]))
    if isinstance(result, RecGymError):
        assert isinstance(result, ActionError), result
        assert problem is not None, f"a valid action refused: {result}"
        return
    assert problem is None, f"an action with a {problem!r} problem was accepted: {action!r}"
    obs, reward, _, _, _ = result
    assert env.observation_space.contains(obs) and np.isfinite(reward).all()


# ===================================================================== run config.json
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
JSON_OPTIONS = st.one_of(
    JSON, st.sampled_from([*CHOICES, "cpu", "cuda", "auto", "ppo", "dqn", "static", "none", "ecommerce-v0"])
)


@st.composite
def run_configs(draw: st.DrawFn) -> str:
    """A run folder's ``config.json``: any text, any JSON, a real run's config as written, or
    with one field (of the run or of its env options) replaced by any JSON value."""
    kind = draw(st.sampled_from(["text", "json", "as written", "field", "env field", "env field"]))
    if kind == "text":
        return draw(st.text(max_size=40))
    if kind == "json":
        return json.dumps(draw(JSON))
    record = TrainConfig("ppo", timesteps=4096, out="ignored").to_json()
    if kind == "field":
        record[draw(st.sampled_from([f.name for f in fields(TrainConfig)]))] = draw(JSON_OPTIONS)
    elif kind == "env field":
        record["env_options"][draw(st.sampled_from(FIELDS))] = draw(JSON_OPTIONS)
    return json.dumps(record)


@fuzz(150)
@given(text=run_configs())
def test_resuming_from_any_config_json_is_one_error_naming_it_or_a_valid_run(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "config.json").write_text(text)
        names = ("--resume", "run config", *(f.name for f in fields(TrainConfig)), *FIELDS)
        result = outcome(lambda: parse_train_config(["ppo", "--resume", folder]), *names)
        assert run_id_of(Path(folder)) is None or isinstance(run_id_of(Path(folder)), str)
    event("refused" if isinstance(result, RecGymError) else "resumed")
    if isinstance(result, RecGymError):
        assert isinstance(result, ConfigError), type(result)
        return
    config, resume, overwrite = result
    assert isinstance(config, TrainConfig) and resume and not overwrite
    assert config.out == folder and config.algorithm == "ppo"
    assert_valid_config(config.options, {})


# ========================================================================= output paths
def _nearest_existing(path: Path) -> Path:
    return next(candidate for candidate in (path, *path.parents) if candidate.exists())


@fuzz(80)
@given(
    parts=st.lists(
        st.sampled_from(["a_file", "a_folder", "new", "out.json", ".", ".."]), min_size=1, max_size=3
    ),
    kind=st.sampled_from(["file", "folder"]),
    flag=st.sampled_from(["--out", "--json", "--report"]),
    writable=st.booleans(),
)
def test_output_paths_are_checked_before_any_work_naming_the_flag(
    parts: list[str], kind: str, flag: str, writable: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "a_folder").mkdir(parents=True)
        (root / "a_file").write_text("x")
        before = sorted(str(p) for p in Path(tmp).rglob("*"))
        target = root.joinpath(*parts)
        check = check_output_file if kind == "file" else check_output_folder
        refusal = None if writable else "Permission denied"  # as root, a real trial write never fails
        with mock.patch("simulators.core.storage._trial_write", return_value=refusal):
            result = outcome(lambda: check(target, flag), flag)
        assert sorted(str(p) for p in Path(tmp).rglob("*")) == before  # nothing made, nothing removed
    if isinstance(result, RecGymError):
        assert isinstance(result, ConfigError) and str(result).startswith(f"{flag} "), result
        return
    assert result == target and writable
    existing = _nearest_existing(target if kind == "folder" else target.parent)
    assert existing.is_dir()
    assert not (kind == "file" and target.is_dir()) and not (kind == "folder" and target.is_file())


# ======================================== found by the properties above, fixed, kept as regressions
def test_a_ragged_action_is_an_action_error(single_envs: dict[str, RankingEnv]) -> None:
    with pytest.raises(ActionError, match="action"):
        single_envs["scores"].step([[0.0] * 50, [0.0]])


def test_a_ragged_batched_action_is_an_action_error(vector_envs: dict[str, RankingVectorEnv]) -> None:
    with pytest.raises(ActionError, match="action"):
        vector_envs["weights"].step([[0.0] * 7, [0.0]])


@pytest.mark.parametrize("max_steps", [2**63, 10**30])
def test_max_steps_beyond_int64_is_refused(small_data: str, max_steps: int) -> None:
    with pytest.raises(ConfigError, match="max_steps"):
        small_env(small_data, max_steps=max_steps).reset(seed=0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_a_weights_action_of_an_int_minimum_is_refused(
    single_envs: dict[str, RankingEnv], dtype: type
) -> None:
    env = single_envs["weights"]
    env.reset(seed=0)
    try:
        with pytest.raises(ActionError, match=r"\[-1, 1\]"):
            env.step(np.full(len(WEIGHTS), np.iinfo(dtype).min, dtype=dtype))
    finally:
        env.reset(seed=0)  # it stepped: leave a started session to whoever steps next


@pytest.mark.parametrize(("field", "value"), [("fairness_lambda", -(2**63) - 1), ("purchase_weight", 10**30)])
def test_a_float_option_beyond_64_bits_is_a_config_error(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        env_config(**{field: value})


@pytest.mark.xfail(
    strict=True,
    raises=AttributeError,
    reason="gymnasium's make calls render_mode.endswith() before the env is built (RankingEnv itself refuses it)",
)
def test_gym_make_with_a_render_mode_that_is_not_a_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="render_mode"):
        RankingEnv(render_mode=False)  # the env alone: one clear error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="render_mode"):
            gym.make("ecommerce-v0", render_mode=False)


def test_a_run_config_with_a_device_that_is_not_a_string_is_a_config_error(tmp_path: Path) -> None:
    record = TrainConfig("ppo", timesteps=4096).to_json()
    (tmp_path / "config.json").write_text(json.dumps({**record, "device": 5}))
    with pytest.raises(ConfigError, match="device"):
        parse_train_config(["ppo", "--resume", str(tmp_path)])


@pytest.mark.parametrize("options", ["scores", [1], 3])
def test_a_run_config_whose_env_options_are_not_an_object_is_a_config_error(
    tmp_path: Path, options: Any
) -> None:
    record = TrainConfig("ppo", timesteps=4096).to_json()
    (tmp_path / "config.json").write_text(json.dumps({**record, "env_options": options}))
    with pytest.raises(ConfigError, match="env_options"):
        parse_train_config(["ppo", "--resume", str(tmp_path)])
