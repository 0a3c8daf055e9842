"""Your own logs: CSV or Parquet tables in the documented schema (see ``simulators.data.logs``).

A folder holds ``interactions``, ``items`` and optionally ``users`` tables, each as
``NAME.parquet``, ``NAME.csv`` or ``NAME.csv.gz``; ``column_map`` renames your columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError, DataError
from simulators.data.logs import LoggedData, is_session_gap, sessionize

SUFFIXES = (".parquet", ".csv", ".csv.gz")


def find_table(folder: Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``folder``, if any."""
    for suffix in SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file; raise :class:`DataError` if it cannot be parsed."""
    try:
        if path.name.endswith(".parquet"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read table ({err})") from None


def _renamed(table: pd.DataFrame, rename: Mapping[str, str], name: str) -> pd.DataFrame:
    """``table`` with its columns renamed; two columns of one name are a :class:`DataError`."""
    renamed = table.rename(columns=rename)
    if (doubled := renamed.columns[renamed.columns.duplicated()]).size:
        raise DataError(
            f"{name}: duplicate column name(s) {sorted(set(map(str, doubled)))}"
            + (f" after column_map {dict(rename)}" if rename else "")
        )
    return renamed


def _check_options(column_map: Any, sensitive_attributes: Any, session_gap_s: Any) -> None:
    """Raise :class:`ConfigError` naming the first option of the wrong type or range."""
    if column_map is not None and (
        not isinstance(column_map, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in column_map.items())
    ):
        raise ConfigError(
            f"column_map must map column names to schema names (str -> str), got {column_map!r}"
        )
    if isinstance(sensitive_attributes, str) or not (
        isinstance(sensitive_attributes, Sequence) and all(isinstance(a, str) for a in sensitive_attributes)
    ):
        raise ConfigError(
            f"sensitive_attributes must be a list of user column names, got {sensitive_attributes!r}"
        )
    if session_gap_s is not None and not is_session_gap(session_gap_s):
        raise ConfigError(f"session_gap_s must be a finite number of seconds > 0, got {session_gap_s!r}")


def recognises(path: Path) -> bool:
    """A folder with an interactions table."""
    return path.is_dir() and find_table(path, "interactions") is not None


def _to_seconds(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Turn a datetime or date-string ``timestamp`` column into float seconds."""
    if "timestamp" not in table.columns:
        return table
    column = table["timestamp"]
    if pd.api.types.is_string_dtype(column) or column.dtype == object:
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.notna().all():  # seconds written as text
            return table.assign(timestamp=numbers.astype(np.float64))
    if (
        pd.api.types.is_datetime64_any_dtype(column)
        or pd.api.types.is_string_dtype(column)
        or column.dtype == object
    ):
        parsed = pd.to_datetime(column, utc=True, format="mixed", errors="coerce")
        bad = (parsed.isna() & column.notna()).to_numpy()
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name}.timestamp: {column.iloc[position]!r} at row {position} is neither seconds nor a date "
                f"({int(bad.sum())} such row(s))"
            )
        try:  # the epoch in the dates' own unit: year 1 or 9999 overflows nanoseconds, not seconds
            epoch = pd.Timestamp(0, tz="UTC").as_unit(parsed.dt.unit)
            seconds = (parsed - epoch).dt.total_seconds()
        except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta) as err:
            raise DataError(f"{name}.timestamp: dates out of the representable range ({err})") from None
        table = table.assign(timestamp=seconds.where(parsed.notna()))
    return table


def load(
    path: str | Path | None = None,
    column_map: Mapping[str, str] | None = None,
    sensitive_attributes: Sequence[str] = (),
    session_gap_s: float | None = None,
    spec: str | None = None,
) -> LoggedData:
    """Read a folder of tables (or one interactions file with ``items`` beside it).

    ``column_map`` maps your column names to the schema's (``{"uid": "user_id"}``).
    Without a ``session_id`` column, pass ``session_gap_s`` to cut sessions at time gaps.
    A missing users table is derived from the interactions' user ids.
    """
    _check_options(column_map, sensitive_attributes, session_gap_s)
    if path is None and spec:
        path = spec
    if path is None:
        raise DataError("tabular: pass path=FOLDER holding interactions and items tables")
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: no such file or folder")
    interactions_path = folder if folder.is_file() else find_table(folder, "interactions")
    folder = folder.parent if folder.is_file() else folder
    if interactions_path is None:
        raise DataError(
            f"{folder}: no interactions table ({', '.join('interactions' + s for s in SUFFIXES)})"
        )
    items_path = find_table(folder, "items")
    if items_path is None:
        raise DataError(f"{folder}: no items table (items.parquet or items.csv with item_id, text, provider)")
    rename = dict(column_map or {})
    interactions = _to_seconds(
        _renamed(read_table(interactions_path), rename, "interactions"), "interactions"
    )
    items = _renamed(read_table(items_path), rename, "items")
    users_path = find_table(folder, "users")
    if users_path is not None:
        users = _renamed(read_table(users_path), rename, "users")
    elif "user_id" in interactions.columns:
        users = pd.DataFrame({"user_id": interactions["user_id"].drop_duplicates().to_numpy()})
    else:
        users = pd.DataFrame({"user_id": []})
    if "session_id" not in interactions.columns and session_gap_s is not None:
        if {"user_id", "timestamp"} <= set(interactions.columns):
            interactions = sessionize(interactions, session_gap_s)
    order = [c for c in ("session_id", "timestamp", "slate_id", "position") if c in interactions.columns]
    if order and not interactions[order].isna().any().any():
        try:  # files may list rows in any order: each session's rows by time, then slot
            interactions = interactions.sort_values(order, kind="stable").reset_index(drop=True)
        except TypeError:
            pass  # mixed types: the validation below names the column
    logs = LoggedData(
        interactions=interactions,
        items=items,
        users=users,
        sensitive_attributes=tuple(sensitive_attributes),
        source=f"tabular({folder})",
    )
    return logs.validate()
