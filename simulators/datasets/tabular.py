"""Your own logs: CSV or Parquet tables with the columns you have (see :func:`load`), brought
to the schema of ``simulators.data.logs``.

A folder holds an ``interactions`` table and optionally ``items`` and ``users`` tables, each
as ``NAME.parquet``, ``NAME.csv`` or ``NAME.csv.gz``, or as a folder ``NAME/`` of Parquet parts
(``*.parquet``, read in name order, as Spark and the serving log write them; hidden files such
as a part still being written are skipped), and optionally a ``schema.json`` of loader options;
``column_map`` renames your columns.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulators.core.errors import ConfigError, DataError, DataWarning
from simulators.data.logs import DEFAULT_SESSION_GAP_S, LoggedData, is_session_gap, sessionize

SUFFIXES = (".parquet", ".csv", ".csv.gz")


def find_table(folder: Path, name: str) -> Path | None:
    """The file (or folder of Parquet parts) holding table ``name`` in ``folder``, if any."""
    for suffix in SUFFIXES:
        candidate = folder / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    parts = folder / name
    return parts if parts.is_dir() and table_parts(parts) else None


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


def load(
    path: str | Path | None = None,
    column_map: Mapping[str, str] | None = None,
    sensitive_attributes: Sequence[str] | None = None,
    session_gap_s: float | None = None,
    rating_threshold: float | None = None,
    click_events: Sequence[str] | None = None,
    purchase_events: Sequence[str] | None = None,
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
             "rating_threshold": rating_threshold, "click_events": click_events, "purchase_events": purchase_events}  # fmt: skip
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
    interactions = _to_seconds(
        _renamed(read_table(interactions_path), rename, "interactions"), "interactions"
    )
    if missing := [c for c in REQUIRED["interactions"] if c not in interactions.columns]:
        raise DataError(
            f"interactions: missing column(s) {missing}; present: {list(interactions.columns)}"
            + ("" if rename else " (rename yours with column_map)")
        )
    notes: list[str] = []
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
    if "session_id" not in interactions.columns:
        gap = DEFAULT_SESSION_GAP_S if session_gap_s is None else session_gap_s
        try:
            interactions = sessionize(interactions, gap)
        except TypeError:
            raise DataError("interactions.user_id: ids of mixed types (cannot be ordered)") from None
        if session_gap_s is None:
            notes.append(f"session_id: absent, so sessions are cut at idle gaps of {gap / 60:g} minutes")
    order = [c for c in ("session_id", "timestamp", "slate_id", "position") if c in interactions.columns]
    if order and not interactions[order].isna().any().any():
        try:  # files may list rows in any order: each session's rows by time, then slot
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
