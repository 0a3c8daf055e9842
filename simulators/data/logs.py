"""Logged recommendation data: three validated tables and leak-free splits.

Every loader returns a :class:`LoggedData`; nothing downstream reads raw files. This module
knows no dataset by name and imports nothing from the rest of RecGym but its errors.

Schema
------
interactions (one row per shown item)
    ``user_id`` (int or str), ``item_id`` (int or str), ``timestamp`` (seconds, int or float),
    ``session_id`` (int or str), ``position`` (int >= 1, 1 = top slot), ``click`` (0/1);
    optional ``purchase`` (0/1), ``rating`` (float), ``propensity`` (float in (0, 1]: the
    logging policy's probability of what was shown), ``prefix_propensity`` (float in (0, 1]: its
    probability of the slate's items from the top down to this row's position, OBP's cascade
    form, which off-policy evaluation then uses as exact), ``slate_id`` (int or str). Extra
    columns (context features) are kept as they are.
items
    ``item_id``, ``text`` (str: what the text encoder reads), ``provider`` (int or str: who
    supplies the item, the unit of provider fairness); extra columns kept. Popularity is
    derived from the interactions (:meth:`LoggedData.popularity`), never stored.
users
    ``user_id``; any other column is a user attribute, and those named in
    ``sensitive_attributes`` (gender, age group, ...) are used for group metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from simulators.core.errors import DataError

INTERACTION_REQUIRED = ("user_id", "item_id", "timestamp", "session_id", "position", "click")
INTERACTION_OPTIONAL = ("purchase", "rating", "propensity", "prefix_propensity", "slate_id")
ITEM_REQUIRED = ("item_id", "text", "provider")
USER_REQUIRED = ("user_id",)
ITEM_TEXT_SOURCES = ("text", "attributes", "ids")
"""Where an item's ``text`` may come from (:attr:`LoggedData.item_text`)."""

_ID_COLUMNS = {"user_id", "item_id", "session_id", "slate_id", "provider"}
_BINARY_COLUMNS = {"click", "purchase"}
_NUMERIC_COLUMNS = {"timestamp", "rating", "propensity", "prefix_propensity"}


def _example(table: pd.DataFrame, name: str, mask: np.ndarray | pd.Series) -> str:
    """Describe the first offending row of ``table`` for an error message."""
    positions = np.flatnonzero(np.asarray(mask))
    if not len(positions):
        return f"{name} has {len(table)} row(s)"
    first = table.iloc[[int(positions[0])]]  # a one-row frame keeps each column's dtype (ints stay ints)
    label = _plain(first.index[0])
    shown = {str(k): _plain(v) for k, v in list(first.to_dict("records")[0].items())[:8]}
    return f"{len(positions)} bad row(s); first at {name} row {label!r}: {shown}"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for readable messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _fail(table: pd.DataFrame, name: str, column: str, problem: str, mask: Any) -> DataError:
    return DataError(f"{name}.{column}: {problem}; {_example(table, name, mask)}")


def _each_is(series: pd.Series, kinds: type | tuple[type, ...]) -> np.ndarray:
    """``(len,)`` bool: which values are instances of ``kinds`` (whatever the dtype: a categorical
    column's ``map`` may stay categorical, which has no ``all``)."""
    values = series.to_numpy(dtype=object)
    return np.fromiter(
        (isinstance(v, kinds) and not isinstance(v, bool) for v in values), dtype=bool, count=len(values)
    )


_ID_TYPES = (str, int, np.integer)
"""What an id may be (never a bool: ``True == 1`` would match user 1)."""


def _is_id_dtype(series: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_string_dtype(series):
        return True
    if series.dtype == object:
        return bool(_each_is(series, _ID_TYPES).all())
    return False


def _unreadable(series: pd.Series) -> np.ndarray:
    """``(len,)`` bool: the values that ``pd.isna`` cannot even test."""

    def unreadable(value: Any) -> bool:
        try:
            pd.isna(value)
        except (ArithmeticError, TypeError, ValueError):
            return True
        return False

    return np.fromiter(map(unreadable, series.to_numpy(dtype=object)), dtype=bool, count=len(series))


def _check_column(table: pd.DataFrame, name: str, column: str) -> None:
    """Raise :class:`DataError` if ``column`` has NaN, a wrong type or a value out of range."""
    series = table[column]
    try:
        missing = series.isna().to_numpy()
    except (ArithmeticError, TypeError, ValueError):  # a value not even pandas can test (decimal's sNaN)
        raise _fail(table, name, column, "a value that cannot be read", _unreadable(series)) from None
    if missing.any():
        raise _fail(table, name, column, "missing value (NaN/None)", missing)
    if column in _ID_COLUMNS:
        if not _is_id_dtype(series):
            bad = ~_each_is(series, _ID_TYPES)
            if not bad.any():
                bad = np.ones(len(series), dtype=bool)
            raise _fail(table, name, column, f"wrong type {series.dtype} (ids are int or str)", bad)
    elif column in _BINARY_COLUMNS or column == "position":
        if not (pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise _fail(table, name, column, f"wrong type {series.dtype} (expected integers)", ~missing)
        values = series.to_numpy().astype(np.int64)
        if column == "position":
            if (values < 1).any():
                raise _fail(table, name, column, "position must be >= 1", values < 1)
        elif (bad := (values != 0) & (values != 1)).any():
            raise _fail(table, name, column, "expected 0 or 1", bad)
    elif column in _NUMERIC_COLUMNS:
        if (
            not pd.api.types.is_numeric_dtype(series)
            or pd.api.types.is_bool_dtype(series)
            or pd.api.types.is_complex_dtype(series)
        ):
            raise _fail(table, name, column, f"wrong type {series.dtype} (expected real numbers)", ~missing)
        values = series.to_numpy(dtype=np.float64)
        if (bad := ~np.isfinite(values)).any():
            raise _fail(table, name, column, "value is not finite", bad)
        if column in ("propensity", "prefix_propensity") and (bad := (values <= 0) | (values > 1)).any():
            raise _fail(table, name, column, "propensity outside (0, 1]", bad)
    elif column == "text":
        if (bad := ~_each_is(series, str)).any():
            raise _fail(table, name, column, "wrong type (expected strings)", bad)


def _check_unique(table: pd.DataFrame, name: str, key: Sequence[str]) -> None:
    duplicated = table.duplicated(subset=list(key), keep="first").to_numpy()
    if duplicated.any():
        raise _fail(table, name, "+".join(key), "duplicate key", duplicated)


def _isin(values: pd.Series, known: pd.Series) -> np.ndarray:
    """``values.isin(known)`` as a bool array, also where pandas' fast path cannot compare the two
    (arrow strings against ints beyond int64 raise ``OverflowError``)."""
    try:
        return np.asarray(values.isin(known), dtype=bool)
    except (OverflowError, TypeError, ValueError):
        return np.asarray(
            pd.Series(values.to_numpy(dtype=object), dtype=object).isin(known.to_numpy(dtype=object)),
            dtype=bool,
        )


def _check_known(table: pd.DataFrame, name: str, column: str, known: pd.Series, of: str) -> None:
    unknown = ~_isin(table[column], known)
    if unknown.any():
        raise _fail(table, name, column, f"id not in the {of} table", unknown)


class TimeSplit(NamedTuple):
    """Train / validation / test parts of one :class:`LoggedData`, cut by time."""

    train: LoggedData
    valid: LoggedData
    test: LoggedData


@dataclass
class LoggedData:
    """Logged interactions with their item catalog and user table (schema in the module doc).

    Call :meth:`validate` before use; loaders do so. Subsets (splits, hold-outs) share the
    catalog and user table and keep only part of the interactions.
    """

    interactions: pd.DataFrame
    """One row per shown item, sorted by session and time (see the module docstring)."""
    items: pd.DataFrame
    """The catalog: ``item_id``, ``text``, ``provider`` and any extra item columns."""
    users: pd.DataFrame
    """``user_id`` and user attributes."""
    sensitive_attributes: tuple[str, ...] = ()
    """User columns used for group metrics (e.g. ``("gender", "age_group")``)."""
    source: str = "custom"
    """Where the data came from, for reports (e.g. ``"shop(seed=0)"``)."""
    origin: Path | None = None
    """The folder the tables were read from, when they were."""
    item_text: str = "text"
    """Where ``items.text`` came from: ``text`` (the logs' own), ``attributes`` (written by the
    loader from the other item columns) or ``ids`` (no item information at all). BERT reads only
    ``text``; the others are hashed instead (``encoders.text.catalog_vectors``)."""
    notes: tuple[str, ...] = ()
    """What the loader derived or filled in (a missing column and what stands for it), for reports."""
    _item_index: pd.Index | None = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def validate(self) -> LoggedData:
        """Check the schema and return ``self``; raise :class:`DataError` naming the problem."""
        for name, table, required in (
            ("interactions", self.interactions, INTERACTION_REQUIRED),
            ("items", self.items, ITEM_REQUIRED),
            ("users", self.users, USER_REQUIRED),
        ):
            if not isinstance(table, pd.DataFrame):
                raise DataError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
            if (doubled := table.columns[table.columns.duplicated()]).size:
                raise DataError(f"{name}: duplicate column name(s) {sorted(set(map(str, doubled)))}")
            missing = [c for c in required if c not in table.columns]
            if missing:
                raise DataError(f"{name}: missing column(s) {missing}; present: {list(table.columns)}")
            if name != "users" and not len(table):
                raise DataError(f"{name}: the table has no rows")
            optional = INTERACTION_OPTIONAL if name == "interactions" else ()
            for column in (*required, *(c for c in optional if c in table.columns)):
                _check_column(table, name, column)
        if self.item_text not in ITEM_TEXT_SOURCES:
            raise DataError(f"item_text must be one of {ITEM_TEXT_SOURCES}, got {self.item_text!r}")
        for attribute in self.sensitive_attributes:
            if attribute not in self.users.columns:
                raise DataError(f"users: missing sensitive attribute column {attribute!r}")
        _check_unique(self.items, "items", ["item_id"])
        _check_unique(self.users, "users", ["user_id"])
        key = (
            ["slate_id", "position"]
            if "slate_id" in self.interactions.columns
            else ["session_id", "timestamp", "item_id", "position"]
        )
        _check_unique(self.interactions, "interactions", key)
        _check_known(self.interactions, "interactions", "item_id", self.items["item_id"], "items")
        _check_known(self.interactions, "interactions", "user_id", self.users["user_id"], "users")
        self._check_session_order()
        return self

    def require_positive_feedback(self, purpose: str) -> None:
        """Raise :class:`DataError` when no interaction is a click: valid logs, but nothing for
        ``purpose`` (a fit, a model) to learn from."""
        if not (self.interactions["click"].to_numpy() != 0).any():
            raise DataError(
                f"interactions.click: no positive feedback (every click is 0) in {self.source}, so there is "
                f"nothing to {purpose}; map an event or a rating threshold onto click"
            )

    def _check_session_order(self) -> None:
        """Within each session, rows in table order must not go back in time, wherever the
        session's rows sit in the table (they need not be adjacent)."""
        table = self.interactions
        codes = pd.factorize(table["session_id"])[0]
        order = np.argsort(codes, kind="stable")  # each session's rows together, in table order
        same_session = codes[order][1:] == codes[order][:-1]
        backwards = np.diff(table["timestamp"].to_numpy(dtype=np.float64)[order]) < 0
        bad = np.zeros(len(table), dtype=bool)
        bad[order[1:][same_session & backwards]] = True
        if bad.any():
            raise _fail(table, "interactions", "timestamp", "goes backwards within a session", bad)

    # ----------------------------------------------------------------------------- indexing
    @property
    def n_items(self) -> int:
        """Number of items in the catalog."""
        return len(self.items)

    @property
    def n_users(self) -> int:
        """Number of users in the user table."""
        return len(self.users)

    @property
    def item_index(self) -> pd.Index:
        """``item_id`` -> row in ``items`` (0..n_items-1) via ``get_indexer``."""
        if self._item_index is None:
            self._item_index = pd.Index(self.items["item_id"])
        return self._item_index

    def same_catalog(self, other: LoggedData) -> bool:
        """Whether ``other`` has the same users and items in the same rows (the serving log of a
        policy has its training logs' catalog and users, and other interactions): a policy that
        names items and users by row can act on both."""
        return all(
            len(x) == len(y) and bool((x.to_numpy() == y.to_numpy()).all())
            for x, y in (
                (self.items["item_id"], other.items["item_id"]),
                (self.users["user_id"], other.users["user_id"]),
            )
        )

    @property
    def fingerprint(self) -> str:
        """Hash of the three tables' contents (:func:`data_fingerprint`), computed once per object:
        every cache key of what is built from these logs starts with it."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self)
        return self._fingerprint

    def item_rows(self, item_ids: Sequence[Any] | pd.Series | np.ndarray) -> np.ndarray:
        """Catalog rows (int64) of ``item_ids``; raise :class:`DataError` for an unknown id."""
        rows = self.item_index.get_indexer(pd.Index(item_ids))
        if (rows < 0).any():
            unknown = _plain(pd.Index(item_ids)[rows < 0][0])
            raise DataError(f"unknown item id {unknown!r}")
        return rows.astype(np.int64)

    def per_item(self, column: str | None = None) -> np.ndarray:
        """``(n_items,)`` float64 sum of ``column`` (``"click"``, ``"purchase"``) per catalog row;
        impressions when ``column`` is None; zeros when the logs lack the column."""
        if column is not None and column not in self.interactions.columns:
            return np.zeros(self.n_items)
        rows = self.item_rows(self.interactions["item_id"].to_numpy())
        weights = None if column is None else self.interactions[column].to_numpy(dtype=np.float64)
        return np.bincount(rows, weights=weights, minlength=self.n_items).astype(np.float64)

    def on_sale(self, day: float | None = None) -> np.ndarray:
        """``(n_items,)`` bool: the item has launched by ``day`` (days since the first logged
        event; ``None`` = the last one). Items without a ``launch_day`` column are always on sale;
        with one (a catalog that lists items launching later), only those whose day has come."""
        if "launch_day" not in self.items.columns:
            return np.ones(self.n_items, dtype=bool)
        if day is None:
            stamps = self.interactions["timestamp"]
            day = float(stamps.max() - stamps.min()) / 86_400 if len(stamps) else 0.0
        launch = pd.to_numeric(self.items["launch_day"], errors="coerce").to_numpy(np.float64)
        if not np.isfinite(launch).all():
            raise DataError("items: launch_day must be a finite number of days for every item")
        return np.asarray(launch <= day)

    def popularity(self, smoothing: float = 1.0) -> np.ndarray:
        """Share of clicks per catalog row, add-``smoothing`` smoothed; shape ``(n_items,)``."""
        counts = self.per_item("click") + smoothing
        return counts / counts.sum()

    def padded_histories(self, max_len: int, positive_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Each user's last ``max_len`` items (catalog rows, oldest first), in ``users`` order.

        Returns ``item_rows (n_users, max_len)`` int64 (``-1`` where empty) and
        ``mask (n_users, max_len)`` bool. ``positive_only`` keeps clicked rows only.
        """
        if max_len < 1:
            raise DataError(f"history length must be >= 1, got {max_len}")
        table = self.interactions
        if positive_only:
            table = table[table["click"].to_numpy() == 1]
        user_rows = pd.Index(self.users["user_id"]).get_indexer(table["user_id"])
        item_rows = self.item_rows(table["item_id"].to_numpy())
        order = np.lexsort((np.arange(len(table)), table["timestamp"].to_numpy(), user_rows))
        user_rows, item_rows = user_rows[order], item_rows[order]
        from_end = pd.Series(user_rows).groupby(user_rows).cumcount(ascending=False).to_numpy()
        keep = from_end < max_len
        counts = np.minimum(np.bincount(user_rows, minlength=self.n_users), max_len)
        slot = counts[user_rows[keep]] - 1 - from_end[keep]
        items = np.full((self.n_users, max_len), -1, dtype=np.int64)
        items[user_rows[keep], slot] = item_rows[keep]
        return items, items >= 0

    # ---------------------------------------------------------------------------- subsets
    def with_interactions(self, interactions: pd.DataFrame) -> LoggedData:
        """A copy that shares the catalog and users but holds ``interactions``."""
        return LoggedData(
            interactions=interactions.reset_index(drop=True),
            items=self.items,
            users=self.users,
            sensitive_attributes=self.sensitive_attributes,
            source=self.source,
            origin=self.origin,
            item_text=self.item_text,
            notes=self.notes,
        )

    def split_by_time(self, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> TimeSplit:
        """Cut whole sessions into train / valid / test by the time each session ends.

        Sessions ending by the ``1 - valid - test`` quantile of end times go to train, the
        next ``valid_fraction`` to valid, the rest to test: no train row is later than the end
        of any valid or test session, so nothing from the future leaks into training.
        """
        if not (0 <= valid_fraction < 1 and 0 <= test_fraction < 1):
            raise DataError("split fractions must lie in [0, 1)")
        if valid_fraction + test_fraction >= 1:
            raise DataError("valid_fraction + test_fraction must be < 1")
        table = self.interactions
        ends = table.groupby("session_id", sort=False)["timestamp"].max()
        order = ends.sort_values(kind="stable")
        n = len(order)
        n_train = round(n * (1 - valid_fraction - test_fraction))
        n_valid = round(n * valid_fraction)
        part = pd.Series(2, index=order.index)
        part.iloc[:n_train] = 0
        part.iloc[n_train : n_train + n_valid] = 1
        row_part = table["session_id"].map(part).to_numpy()
        parts = [self.with_interactions(table[row_part == k]) for k in range(3)]
        return TimeSplit(*parts)

    def holdout_last(self, n: int = 1) -> tuple[LoggedData, LoggedData]:
        """Hold out each user's last ``n`` interactions (by time): ``(train, held_out)``."""
        if n < 1:
            raise DataError(f"hold-out size must be >= 1, got {n}")
        table = self.interactions
        order = np.lexsort((np.arange(len(table)), table["timestamp"].to_numpy(), table["user_id"]))
        ranked = table.iloc[order]
        from_end = ranked.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
        held = np.zeros(len(table), dtype=bool)
        held[order[from_end < n]] = True
        return self.with_interactions(table[~held]), self.with_interactions(table[held])

    def summary(self) -> dict[str, Any]:
        """Sizes and rates, for reports."""
        table = self.interactions
        out: dict[str, Any] = {
            "source": self.source,
            "interactions": len(table),
            "sessions": int(table["session_id"].nunique()),
            "users": self.n_users,
            "items": self.n_items,
            "providers": int(self.items["provider"].nunique()),
            "click_rate": float(table["click"].mean()) if len(table) else 0.0,
            "item_text": self.item_text,
        }
        if self.notes:
            out["notes"] = list(self.notes)
        if "purchase" in table.columns and len(table):
            out["purchase_rate"] = float(table["purchase"].mean())
        return out


DEFAULT_SESSION_GAP_S = 30 * 60
"""A new session starts after 30 minutes without an interaction (a common web-analytics cut)."""


def is_session_gap(value: object) -> bool:
    """A valid ``session_gap_s``: a finite number of seconds > 0 (not a bool; an int of any size)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return bool(np.isfinite(float(value)) and value > 0)
    except OverflowError:  # an int beyond float range
        return False


def sessionize(table: pd.DataFrame, gap_s: float = DEFAULT_SESSION_GAP_S) -> pd.DataFrame:
    """Sort by user and time and add ``session_id`` (int64): a new session per user whenever
    the time since that user's previous interaction exceeds ``gap_s`` seconds."""
    if not is_session_gap(gap_s):
        raise DataError(f"session gap (session_gap_s) must be a finite number of seconds > 0, got {gap_s!r}")
    ordered = table.sort_values(["user_id", "timestamp"], kind="stable").reset_index(drop=True)
    user = ordered["user_id"].to_numpy()
    time_s = ordered["timestamp"].to_numpy(dtype=np.float64)
    new_user = np.concatenate([[True], user[1:] != user[:-1]])
    new_gap = np.concatenate([[True], np.diff(time_s) > gap_s])
    ordered["session_id"] = np.cumsum(new_user | new_gap).astype(np.int64) - 1
    return ordered


def purchases_imply_clicks(click: np.ndarray, purchase: np.ndarray) -> tuple[np.ndarray, int]:
    """RecGym's one rule for a purchase without a click (the loaders' and the serving API's): a
    purchase implies a click. Returns the clicks with every purchase clicked, and how many were not."""
    click, purchase = np.asarray(click), np.asarray(purchase)
    missing = (purchase > 0) & (click == 0)
    return np.where(missing, 1, click).astype(click.dtype), int(missing.sum())


def data_fingerprint(logs: LoggedData) -> str:
    """Hash of the three tables' contents."""
    digest = hashlib.sha256()
    for table in (logs.interactions, logs.items, logs.users):
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
        digest.update(",".join(map(str, table.columns)).encode())
    return digest.hexdigest()[:16]
