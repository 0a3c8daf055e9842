"""Your own logs: CSV or Parquet tables with the columns you have (see :func:`load`), brought
to the schema of ``simulators.data.logs``.

A folder holds an ``interactions`` table and optionally ``items`` and ``users`` tables, each
as ``NAME.parquet``, ``NAME.csv`` or ``NAME.csv.gz``, or as a folder ``NAME/`` of Parquet parts
(``*.parquet``, read in name order, as Spark and the serving log write them; hidden files such
as a part still being written are skipped), and optionally a ``schema.json`` of loader options;
``column_map`` renames your columns.
"""

from __future__ import annotations

import csv
import gzip
import inspect
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError, DataError, DataWarning
from simulators.data.logs import (
    DEFAULT_SESSION_GAP_S,
    LoggedData,
    is_session_gap,
    purchases_imply_clicks,
    sessionize,
)
from simulators.data.steps import MAX_SLOTS

SUFFIXES = (".parquet", ".csv", ".csv.gz")


def find_table(folder: Path, name: str) -> Path | None:
    """The file (or folder of Parquet parts) holding table ``name`` in ``folder``, if any; two of
    them (``interactions.csv`` beside ``interactions.parquet``) are a :class:`DataError`: which one
    holds the logs is not for the loader to guess."""
    found = [folder / f"{name}{suffix}" for suffix in SUFFIXES if (folder / f"{name}{suffix}").is_file()]
    parts = folder / name
    if parts.is_dir() and table_parts(parts):
        found.append(parts)
    if len(found) > 1:
        raise DataError(
            f"{folder}: the {name} table is there {len(found)} times ({', '.join(p.name for p in found)}); "
            "keep one"
        )
    return found[0] if found else None


def table_parts(folder: Path) -> list[Path]:
    """The Parquet parts of a table folder, in name order (hidden files skipped)."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".") and p.is_file())


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file, or a folder of Parquet parts; raise :class:`DataError` if
    it cannot be parsed."""
    try:
        if path.is_dir():
            if not (parts := table_parts(path)):
                raise DataError(f"{path}: a table folder without Parquet parts (*.parquet)")
            return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        if path.name.endswith(".parquet"):
            return pd.read_parquet(path)
        _check_header(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{path}: cannot read table ({err})") from None


def _check_header(path: Path) -> None:
    """A CSV file's header must name each column once (pandas would rename a second ``click`` to
    ``click.1`` and the loader would never see it)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    names = [name.strip() for name in header]
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise DataError(f"{path}: duplicate column name(s) {doubled} in the header")


def _renamed(table: pd.DataFrame, rename: Mapping[str, str], name: str) -> pd.DataFrame:
    """``table`` with its columns renamed; two columns of one name are a :class:`DataError`."""
    renamed = table.rename(columns=rename)
    if (doubled := renamed.columns[renamed.columns.duplicated()]).size:
        raise DataError(
            f"{name}: duplicate column name(s) {sorted(set(map(str, doubled)))}"
            + (f" after column_map {dict(rename)}" if rename else "")
        )
    return renamed


def _check_options(options: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the first loader option of the wrong type or range."""
    column_map, sensitive = options.get("column_map"), options.get("sensitive_attributes", ())
    if column_map is not None and (
        not isinstance(column_map, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in column_map.items())
    ):
        raise ConfigError(
            f"column_map must map column names to schema names (str -> str), got {column_map!r}"
        )
    if isinstance(sensitive, str) or not (
        isinstance(sensitive, Sequence) and all(isinstance(a, str) for a in sensitive)
    ):
        raise ConfigError(f"sensitive_attributes must be a list of user column names, got {sensitive!r}")
    gap = options.get("session_gap_s")
    if gap is not None and not is_session_gap(gap):
        raise ConfigError(f"session_gap_s must be a finite number of seconds > 0, got {gap!r}")
    unit = options.get("timestamp_unit")
    if unit is not None and unit not in TIMESTAMP_UNITS:
        raise ConfigError(f"timestamp_unit must be one of {list(TIMESTAMP_UNITS)}, got {unit!r}")
    threshold = options.get("rating_threshold")
    if threshold is not None and not (
        isinstance(threshold, int | float) and not isinstance(threshold, bool) and np.isfinite(threshold)
    ):
        raise ConfigError(f"rating_threshold must be a finite number, got {threshold!r}")
    for name in ("click_events", "purchase_events"):
        events = options.get(name, CLICK_EVENTS)
        if isinstance(events, str) or not (
            isinstance(events, Sequence) and events and all(isinstance(v, str) for v in events)
        ):
            raise ConfigError(f"{name} must be a non-empty list of event names, got {events!r}")


def recognises(path: Path) -> bool:
    """A folder with an interactions table."""
    return path.is_dir() and find_table(path, "interactions") is not None


TIMESTAMP_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""The units a numeric ``timestamp`` may be in, and their size in seconds."""
UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def infer_unit(values: np.ndarray) -> str:
    """The unit of numeric timestamps by their size: epoch seconds are about 1e9 (2001 to 2286
    lie below 1e10), milliseconds 1e12, microseconds 1e15, nanoseconds 1e18; a median of 1e11
    or more is read as the next finer unit (1e11 seconds is the year 5138)."""
    finite = np.abs(values[np.isfinite(values)])
    size = float(np.median(finite)) if len(finite) else 0.0
    return "s" if size < 1e11 else "ms" if size < 1e14 else "us" if size < 1e17 else "ns"


def _to_seconds(table: pd.DataFrame, name: str, unit: str | None, notes: list[str]) -> pd.DataFrame:
    """``timestamp`` as float seconds: numbers in their unit (``unit``, else :func:`infer_unit`,
    said in a note when not seconds), dates and date strings since the epoch. A value that is
    neither, or a column that mixes numbers and dates, is a :class:`DataError` naming its row."""
    if "timestamp" not in table.columns:
        return table
    column = table["timestamp"]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return table.assign(timestamp=_from_numbers(column.to_numpy(np.float64), name, unit, notes))
    if pd.api.types.is_datetime64_any_dtype(column):
        return table.assign(timestamp=_from_dates(column, name))
    numbers = pd.to_numeric(column, errors="coerce")
    is_number = numbers.notna().to_numpy()
    present = column.notna().to_numpy()
    if is_number.all():  # numbers written as text
        return table.assign(timestamp=_from_numbers(numbers.to_numpy(np.float64), name, unit, notes))
    dates = pd.to_datetime(column.where(~is_number), utc=True, format="mixed", errors="coerce")
    is_date = dates.notna().to_numpy()
    if (neither := present & ~is_number & ~is_date).any():
        row = int(np.flatnonzero(neither)[0])
        raise DataError(
            f"{name}.timestamp: {column.iloc[row]!r} at row {row} is neither seconds nor a date "
            f"({int(neither.sum())} such row(s))"
        )
    if is_number.any() and is_date.any():
        minority = is_number if is_number.sum() <= is_date.sum() else is_date
        row = int(np.flatnonzero(minority)[0])
        raise DataError(
            f"{name}.timestamp: mixes numbers and dates ({int(is_number.sum())} numbers, {int(is_date.sum())} dates); "
            f"first of the fewer at row {row}: {column.iloc[row]!r}"
        )
    return table.assign(timestamp=_from_dates(dates, name))


def _from_numbers(values: np.ndarray, name: str, unit: str | None, notes: list[str]) -> np.ndarray:
    chosen = unit or infer_unit(values)
    if chosen != "s":
        finite = values[np.isfinite(values)]
        size = f" (about {float(np.median(np.abs(finite))):.3g})" if len(finite) else ""
        how = (
            "as given by timestamp_unit"
            if unit
            else f"by their size{size}; timestamp_unit in {SCHEMA_FILE} sets it"
        )
        notes.append(f"{name}.timestamp: numbers read as {UNIT_NAMES[chosen]}, {how}")
    return values * TIMESTAMP_UNITS[chosen]


def _from_dates(column: pd.Series, name: str) -> pd.Series:
    parsed = pd.to_datetime(column, utc=True, format="mixed", errors="coerce")
    try:  # the epoch in the dates' own unit: year 1 or 9999 overflows nanoseconds, not seconds
        epoch = pd.Timestamp(0, tz="UTC").as_unit(parsed.dt.unit)
        seconds = (parsed - epoch).dt.total_seconds()
    except (OverflowError, pd.errors.OutOfBoundsDatetime, pd.errors.OutOfBoundsTimedelta) as err:
        raise DataError(f"{name}.timestamp: dates out of the representable range ({err})") from None
    return seconds.where(parsed.notna())


SCHEMA_FILE = "schema.json"
"""A folder's own loader options, as a JSON object (``{"column_map": {"uid": "user_id"},
"rating_threshold": 4}``): how options reach the loader from a CLI, whose ``--data`` names
only the folder. Options passed in Python win over the file's."""
REQUIRED = {"interactions": ("user_id", "item_id", "timestamp"), "items": ("item_id",), "users": ("user_id",)}
"""The columns a folder must have; everything else in the schema is optional here (see :func:`load`)."""
CLICK_EVENTS = ("click", "cart", "add_to_cart", "addtocart", "purchase", "transaction")
"""Values of an ``event`` column that count as a click (case-insensitive)."""
PURCHASE_EVENTS = ("purchase", "transaction")
"""Values of an ``event`` column that count as a purchase."""
_SAID: set[str] = set()
"""The notes already said as warnings in this process."""
NO_PROVIDER = "(none)"
"""The one provider of every item when the logs name none: no provider groups, no provider fairness."""


def _file_options(folder: Path) -> dict[str, Any]:
    """The options of the folder's :data:`SCHEMA_FILE` (none when absent)."""
    path = folder / SCHEMA_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a readable JSON object ({err})") from None
    known = set(inspect.signature(load).parameters) - {"path", "spec"}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must hold a JSON object of loader options, got {type(raw).__name__}")
    if unknown := sorted(set(raw) - known):
        raise ConfigError(f"{path}: unknown option(s) {unknown}; options: {sorted(known)}")
    if "sensitive_attributes" in raw and isinstance(raw["sensitive_attributes"], list):
        raw["sensitive_attributes"] = tuple(raw["sensitive_attributes"])
    return raw


def _feedback(
    table: pd.DataFrame, rating_threshold: float | None, click_events: Sequence[str],
    purchase_events: Sequence[str], notes: list[str],
) -> pd.DataFrame:  # fmt: skip
    """``table`` with a ``click`` column: its own, else from ``event``, else from ``rating``."""
    if "click" in table.columns:
        return table
    if "event" in table.columns:
        event = table["event"].astype(str).str.strip().str.lower()
        clicks, buys = {e.lower() for e in click_events}, {e.lower() for e in purchase_events}
        table = table.assign(click=event.isin(clicks | buys).astype(np.int64))  # a purchase is a click too
        if "purchase" not in table.columns:
            table = table.assign(purchase=event.isin(buys).astype(np.int64))
        notes.append(
            f"click: from the event column (click events {sorted(clicks)}, purchases {sorted(buys)})"
        )
        return table
    if "rating" in table.columns:
        rating = pd.to_numeric(table["rating"], errors="coerce")
        if (bad := rating.isna() | ~np.isfinite(rating)).any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"interactions.rating: {table['rating'].iloc[row]!r} at row {row} is not a finite number"
            )
        if rating_threshold is None:
            if not 4 <= rating.max() <= 5:
                raise DataError(
                    f"interactions: a rating but no click column, and ratings up to {rating.max():g}, not a 1-5 "
                    f"scale: give rating_threshold (in {SCHEMA_FILE} or as a loader option), the rating from which "
                    "a row counts as a click"
                )
            rating_threshold = 4.0
        notes.append(f"click: rating >= {rating_threshold:g}")
        return table.assign(click=(rating >= rating_threshold).astype(np.int64))
    raise DataError(
        "interactions: no feedback column: give click (0/1), rating (with rating_threshold) or event (with "
        f"click_events), renaming yours with column_map; present: {list(table.columns)}"
    )


def _single_impressions(table: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """No ``position``: each row is one item shown alone at position 1; rows repeating a user,
    item and time are one impression (its feedback the largest logged)."""
    if "slate_id" in table.columns:
        raise DataError("interactions: slate_id without position: give each shown item's position (1 = top)")
    key = [c for c in ("session_id", "user_id", "item_id", "timestamp") if c in table.columns]
    doubled = int(table.duplicated(key).sum())
    if doubled:
        feedback = {c: "max" for c in ("click", "purchase") if c in table.columns}
        first = {c: "first" for c in table.columns if c not in feedback and c not in key}
        try:
            table = (
                table.groupby(key, sort=False, dropna=False, observed=True)
                .agg({**feedback, **first})
                .reset_index()
            )
        except (TypeError, ValueError):
            pass  # unorderable feedback: the validation names the column
    notes.append(
        "position: absent, so every row is a single-item impression at position 1"
        + (f" ({doubled} repeated user-item-time row(s) merged)" if doubled else "")
    )
    return table.assign(position=1)


def _catalog(
    items: pd.DataFrame | None, interactions: pd.DataFrame, notes: list[str]
) -> tuple[pd.DataFrame, str]:
    """The items table with ``text`` and ``provider``, and where its text came from."""
    if items is None:
        items = pd.DataFrame({"item_id": interactions["item_id"].drop_duplicates().to_numpy()})
        notes.append("items: no items table; the catalog is the logged item ids")
    source = "text"
    if "text" not in items.columns and "item_id" in items.columns:
        attributes = [c for c in items.columns if c not in ("item_id", "provider")]
        if attributes:
            records = items[attributes].astype(str).to_dict("records")  # an empty table stays a column
            text = pd.Series(
                ["; ".join(f"{c}: {v}" for c, v in row.items()) for row in records], dtype=object
            )
            source = "attributes"
        else:
            text = "item " + items["item_id"].astype(str)
            source = "ids"
        items = items.assign(text=text.to_numpy())
        notes.append(f"text: absent, so the item encoders read hashed item {source} (BERT is not used)")
    if "provider" not in items.columns:
        items = items.assign(provider=NO_PROVIDER)
        notes.append(
            "provider: absent, so there are no provider groups and provider fairness is off (map an item "
            "column onto provider with column_map to have them)"
        )
    return items, source


def _purchases_clicked(interactions: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """A purchase implies a click (RecGym's one rule, :func:`purchases_imply_clicks`): the rows
    that hold one without the other get their click, and a note says how many."""
    if "purchase" not in interactions.columns or "click" not in interactions.columns:
        return interactions
    click, purchase = interactions["click"], interactions["purchase"]
    if not (pd.api.types.is_numeric_dtype(click) and pd.api.types.is_numeric_dtype(purchase)):
        return interactions  # the validation names the column of the wrong type
    if click.isna().any() or purchase.isna().any():
        return interactions
    clicks, implied = purchases_imply_clicks(click.to_numpy(), purchase.to_numpy())
    if implied:
        notes.append(
            f"click: {implied} purchase(s) without a click counted as clicks (a purchase implies a click)"
        )
        interactions = interactions.assign(click=clicks)
    return interactions


def _beyond_slots(interactions: pd.DataFrame, notes: list[str]) -> None:
    """Say how many rows lie below the slots RecGym models (the top :data:`MAX_SLOTS`)."""
    position = pd.to_numeric(interactions["position"], errors="coerce")
    beyond = int((position > MAX_SLOTS).sum())
    if beyond:
        notes.append(
            f"position: {beyond} row(s) below position {MAX_SLOTS} are kept but not modelled (the simulator and "
            f"the estimators read the top {MAX_SLOTS} slots of a slate)"
        )


def _note_time_order(interactions: pd.DataFrame, notes: list[str]) -> None:
    """Say, naming the first, how many rows of a session (the file's ``session_id``) come earlier
    in time than the session's row before them in the file. The loader sorts each session's rows
    by time (exports often list them in another order), so nothing is dropped, but a session whose
    rows go back in time may also mean a wrong clock or a wrong session id: the user is told."""
    times = pd.to_numeric(interactions["timestamp"], errors="coerce").to_numpy(np.float64)
    try:
        codes = pd.factorize(interactions["session_id"])[0]
    except TypeError:
        return  # unhashable ids: the validation names the column
    order = np.argsort(codes, kind="stable")
    ordered = times[order]
    same = codes[order][1:] == codes[order][:-1]
    back = np.flatnonzero(same & (ordered[1:] < ordered[:-1]))
    if back.size:
        row, before = int(order[back[0] + 1]), int(order[back[0]])
        session = interactions["session_id"].iloc[row]
        notes.append(
            f"timestamp: {back.size} row(s) come earlier than their session's row above them in the file, "
            f"the first row {row} of session {session.item() if hasattr(session, 'item') else session!r} "
            f"({times[row]:g} s, after {times[before]:g} s at row {before}); each session's rows are sorted by "
            "time (check the clock or the session ids if that is not what the file meant)"
        )


def load(
    path: str | Path | None = None,
    column_map: Mapping[str, str] | None = None,
    sensitive_attributes: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    rating_threshold: float | None = None,
    click_events: Sequence[str] | None = None,
    purchase_events: Sequence[str] | None = None,
    timestamp_unit: str | None = None,
    spec: str | None = None,
) -> LoggedData:
    """Read a folder of tables (or one interactions file, with any ``items`` and ``users`` beside it).

    Interactions need ``user_id``, ``item_id``, ``timestamp`` and one feedback column: ``click``
    (0/1), or ``rating`` (a click from ``rating_threshold``, default 4 for ratings up to 5), or
    ``event`` (a click for ``click_events``, a purchase for ``purchase_events``). Without
    ``position`` each row is a single-item impression at position 1; without ``session_id``,
    sessions are cut at idle gaps of ``session_gap_s`` (default 30 minutes). The items table
    is optional, and so are its ``text`` (else the other item columns, or the id, are hashed for
    the encoders) and ``provider`` (else no provider groups); a missing users table is derived
    from the interactions. Each of these is said once as a :class:`DataWarning` and kept in
    ``LoggedData.notes``. ``column_map`` maps your column names to the schema's
    (``{"uid": "user_id"}``). Options may also sit in the folder's :data:`SCHEMA_FILE`.
    """
    if path is None and spec:
        path = spec
    if path is None:
        raise DataError("tabular: pass path=FOLDER holding an interactions table")
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"path must be a folder or file path, got {path!r}")
    folder = Path(path)
    if not folder.exists():
        raise DataError(f"{folder}: no such file or folder")
    interactions_path = folder if folder.is_file() else find_table(folder, "interactions")
    folder = folder.parent if folder.is_file() else folder
    given = {"column_map": column_map, "sensitive_attributes": sensitive_attributes, "session_gap_s": session_gap_s,
             "rating_threshold": rating_threshold, "click_events": click_events, "purchase_events": purchase_events,
             "timestamp_unit": timestamp_unit}  # fmt: skip
    options = {**_file_options(folder), **{k: v for k, v in given.items() if v is not None}}
    _check_options(options)
    column_map = options.get("column_map")
    sensitive_attributes = options.get("sensitive_attributes", ())
    session_gap_s = options.get("session_gap_s")
    rating_threshold = options.get("rating_threshold")
    click_events = options.get("click_events", CLICK_EVENTS)
    purchase_events = options.get("purchase_events", PURCHASE_EVENTS)
    if interactions_path is None:
        raise DataError(
            f"{folder}: no interactions table ({', '.join('interactions' + s for s in SUFFIXES)})"
        )
    rename = dict(column_map or {})
    notes: list[str] = []
    interactions = _renamed(read_table(interactions_path), rename, "interactions")
    if missing := [c for c in REQUIRED["interactions"] if c not in interactions.columns]:
        raise DataError(
            f"interactions: missing column(s) {missing}; present: {list(interactions.columns)}"
            + ("" if rename else " (rename yours with column_map)")
        )
    interactions = _to_seconds(interactions, "interactions", options.get("timestamp_unit"), notes)
    interactions = _feedback(interactions, rating_threshold, click_events, purchase_events, notes)
    if "position" not in interactions.columns:
        interactions = _single_impressions(interactions, notes)
    items_path = find_table(folder, "items")
    items = None if items_path is None else _renamed(read_table(items_path), rename, "items")
    items, item_text = _catalog(items, interactions, notes)
    users_path = find_table(folder, "users")
    if users_path is not None:
        users = _renamed(read_table(users_path), rename, "users")
    else:
        users = pd.DataFrame({"user_id": interactions["user_id"].drop_duplicates().to_numpy()})
    session_id_given = "session_id" in interactions.columns
    if not session_id_given:
        gap = DEFAULT_SESSION_GAP_S if session_gap_s is None else session_gap_s
        try:
            interactions = sessionize(interactions, gap)
        except TypeError:
            raise DataError("interactions.user_id: ids of mixed types (cannot be ordered)") from None
        if session_gap_s is None:
            notes.append(f"session_id: absent, so sessions are cut at idle gaps of {gap / 60:g} minutes")
    interactions = _purchases_clicked(interactions, notes)
    _beyond_slots(interactions, notes)
    if session_id_given:
        _note_time_order(interactions, notes)
    order = [c for c in ("session_id", "timestamp", "slate_id", "position") if c in interactions.columns]
    if order and not interactions[order].isna().any().any():
        try:  # sessions may interleave in the file: each session's rows together, by time, then slot
            interactions = interactions.sort_values(order, kind="stable").reset_index(drop=True)
        except TypeError:
            pass  # mixed types: the validation below names the column
    said = f"{folder.resolve()}: " + "; ".join(notes)
    if notes and said not in _SAID:  # once per process, however often the logs load
        _SAID.add(said)
        warnings.warn(said, DataWarning, stacklevel=2)
    logs = LoggedData(
        interactions=interactions,
        items=items,
        users=users,
        sensitive_attributes=tuple(sensitive_attributes),
        source=f"tabular({folder})",
        item_text=item_text,
        notes=tuple(notes),
    )
    return logs.validate()
