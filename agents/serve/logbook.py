"""The serving log: what the server showed, with propensities and feedback, in the tabular schema
that ``load_logs`` reads (``simulators.datasets.tabular``).

A log folder holds ``items.parquet`` and ``users.parquet`` (the catalog and users of the logs the
policy trained on, written once) and ``interactions/``, a folder of Parquet parts, one row per
shown item: ``user_id``, ``item_id``, ``timestamp`` (when it was shown, seconds), ``session_id``,
``position`` (1 = top), ``click``, ``purchase``, ``propensity`` (the probability of the whole
slate, as the shop's logs give it), ``prefix_propensity`` (of the slate's items down to this
position: OBP's cascade propensity, which ``agents.ope`` takes as exact), ``slot_propensity`` (of
this item given the ones above), ``slate_id`` (the event id), ``score``,
``temperature``, ``policy_version`` and ``feedback`` (1 when the client reported back; a slate
never reported is written after ``feedback_timeout_s`` with no clicks, as absent feedback means
in production).

A part is written whole under a temporary name and renamed into place, so a reader or a crash
never sees half a part: a server killed with SIGKILL loses only the rows it had not flushed yet.
A restart appends parts after the last one. One server writes to a folder at a time (a lock).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from simulators.core.errors import ConfigError
from simulators.core.storage import atomic_path, claim_folder, release_folder
from simulators.data.logs import LoggedData
from simulators.datasets.tabular import read_table, table_parts

COLUMNS = (
    "user_id", "item_id", "timestamp", "session_id", "position", "click", "purchase", "propensity",
    "prefix_propensity", "slot_propensity", "slate_id", "score", "temperature", "policy_version", "feedback",
)  # fmt: skip
"""Columns of every part, in order."""
PART = re.compile(r"^part-(\d+)\.parquet$")
MAX_REMEMBERED = 1_000_000
"""Written event ids remembered (to answer a repeated report with 409 rather than 404)."""


@dataclass
class Pending:
    """A shown slate waiting for its feedback."""

    rows: dict[str, list[Any]]
    """Its rows, column by column, with no clicks yet."""
    shown_at: float
    """``time.monotonic()`` when it was shown."""
    ranked: Any
    """What the ranker answered (for the session's feedback)."""


def claim(folder: Path) -> IO[str]:
    """Lock the log ``folder`` for this server; :class:`ConfigError` when another server holds it."""
    return claim_folder(
        folder, f"--log-dir {folder}: another server is writing this log; stop it or choose another --log-dir"
    )


class Logbook:
    """Buffered, atomic Parquet parts of shown slates (see the module docstring)."""

    def __init__(
        self, folder: Path, logs: LoggedData, flush_rows: int, feedback_timeout_s: float, claimed: IO[str] | None = None
    ):  # fmt: skip
        self.folder, self.flush_rows, self.feedback_timeout_s = Path(folder), flush_rows, feedback_timeout_s
        self._lock_handle = claimed if claimed is not None else claim(self.folder)
        self.parts = self.folder / "interactions"
        self.parts.mkdir(parents=True, exist_ok=True)
        self._write_catalog(logs)
        for stale in self.parts.glob(".part-*.tmp"):  # a part a killed server was writing (we hold the lock)
            stale.unlink(missing_ok=True)
        numbers = [int(m.group(1)) for p in table_parts(self.parts) if (m := PART.match(p.name))]
        self.next_part = max(numbers, default=-1) + 1
        self.parts_at_start = len(numbers)
        """Parts the folder held when this server started (0 on a fresh log)."""
        self.pending: dict[str, Pending] = {}
        self.done: OrderedDict[str, bool] = OrderedDict()
        """Event ids written (True: with feedback), so a repeated report is told apart from an unknown one."""
        self.ready: list[dict[str, list[Any]]] = []
        self.ready_rows = 0
        self.rows_written = 0
        self.parts_written = 0
        self._mutex = threading.Lock()
        self._write = threading.Lock()

    def _write_catalog(self, logs: LoggedData) -> None:
        """``items.parquet`` and ``users.parquet`` on first use; on a restart, check they are these logs'."""
        for name, table, column in (("items", logs.items, "item_id"), ("users", logs.users, "user_id")):
            path = self.folder / f"{name}.parquet"
            if path.is_file():
                ids = read_table(path).get(column, pd.Series([], dtype=object))
                if len(ids) != len(table) or (ids.to_numpy() != table[column].to_numpy()).any():
                    raise ConfigError(
                        f"--log-dir {self.folder}: its {name} table is another catalog's (not the logs this "
                        "policy trained on); choose another --log-dir"
                    )
                continue
            with atomic_path(path) as tmp:
                table.to_parquet(tmp, index=False)

    # ------------------------------------------------------------------------ events
    def shown(self, event_id: str, rows: dict[str, list[Any]], ranked: Any) -> None:
        """A slate was shown: hold its rows until its feedback (or its timeout)."""
        with self._mutex:
            self.pending[event_id] = Pending(rows, time.monotonic(), ranked)

    def status(self, event_id: str) -> str:
        """``pending``, ``reported`` (feedback already taken), ``expired`` (written without) or ``unknown``."""
        with self._mutex:
            if event_id in self.pending:
                return "pending"
            if event_id in self.done:
                return "reported" if self.done[event_id] else "expired"
        return "unknown"

    def report(self, event_id: str, clicks: list[int], purchases: list[int]) -> Pending | None:
        """Feedback for a pending slate: its rows get the clicks and become ready to write. Returns
        the pending event, or ``None`` when it is not pending (see :meth:`status`)."""
        with self._mutex:
            event = self.pending.pop(event_id, None)
            if event is None:
                return None
            event.rows["click"] = list(clicks)
            event.rows["purchase"] = list(purchases)
            event.rows["feedback"] = [1] * len(clicks)
            self._ready(event_id, event, reported=True)
        return event

    def _ready(self, event_id: str, event: Pending, reported: bool) -> None:
        self.ready.append(event.rows)
        self.ready_rows += len(event.rows["item_id"])
        self.done[event_id] = reported
        while len(self.done) > MAX_REMEMBERED:
            self.done.popitem(last=False)

    def expire(self, everything: bool = False) -> int:
        """Move slates past their feedback timeout (or, on shutdown, all) to the ready rows, with no clicks."""
        now = time.monotonic()
        with self._mutex:
            old = [
                e
                for e, p in self.pending.items()
                if everything or now - p.shown_at >= self.feedback_timeout_s
            ]
            for event_id in old:
                self._ready(event_id, self.pending.pop(event_id), reported=False)
        return len(old)

    def due(self) -> bool:
        """Whether enough rows are ready for a part."""
        return self.ready_rows >= self.flush_rows

    def flush(self) -> Path | None:
        """Write the ready rows as the next part (atomically); ``None`` when none are ready."""
        with self._write:
            with self._mutex:
                batch, self.ready, self.ready_rows = self.ready, [], 0
            if not batch:
                return None
            table = pd.DataFrame({c: [v for rows in batch for v in rows[c]] for c in COLUMNS})
            path = self.parts / f"part-{self.next_part:06d}.parquet"
            try:
                with atomic_path(path) as tmp:
                    table.to_parquet(tmp, index=False)
            except BaseException:
                with self._mutex:  # nothing is lost: the rows wait for the next write
                    self.ready = batch + self.ready
                    self.ready_rows += len(table)
                raise
            self.next_part += 1
            self.parts_written += 1
            self.rows_written += len(table)
            return path

    def close(self) -> None:
        """Write everything held (slates without feedback as no clicks) and release the folder."""
        try:
            self.expire(everything=True)
            self.flush()
        finally:
            release_folder(self._lock_handle)
