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
never sees half a part. Every slate is also journalled when it is shown, and its feedback when
it comes (a write-ahead record, one line per event in ``.wal/EPOCH.jsonl``, hidden from readers):
a server killed with SIGKILL loses nothing it answered. The next server on the folder writes the
journalled events no part holds as a recovered part, each with its feedback if it came, else as
served without feedback (``feedback`` 0, no clicks: the rule of a slate never reported, which OPE
reads as shown and not clicked). A journal file is removed once every event in it is in a part.
A restart appends parts after the last one. One server writes to a folder at a time (a lock).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from itertools import chain
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
    epoch: int = 0
    """The journal file the event was recorded in."""


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
        self.journal = self.folder / ".wal"
        self.journal.mkdir(exist_ok=True)
        self.ready: list[dict[str, list[Any]]] = []
        self.ready_epochs: list[int] = []
        """The journal epoch of each ready event (``-1``: recovered, journalled nowhere now)."""
        self.ready_rows = 0
        self.rows_written = 0
        self.parts_written = 0
        self.outstanding: dict[int, int] = {}
        self._mutex = threading.Lock()
        self._write = threading.Lock()
        self.recovered = self._recover()
        """Events a killed server had answered that no part held, written now (0 after a clean stop)."""
        self.epoch = self.next_part
        self.outstanding = {self.epoch: 0}
        """Journal epoch -> its events not yet in a part."""
        self._journal_fd = self._open_journal(self.epoch)
        self.pending: dict[str, Pending] = {}
        self.done: OrderedDict[str, bool] = OrderedDict()
        """Event ids written (True: with feedback), so a repeated report is told apart from an unknown one."""

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

    # ------------------------------------------------------------------------ journal
    def _open_journal(self, epoch: int) -> int:
        return os.open(self.journal / f"{epoch:06d}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _record(self, entry: dict[str, Any]) -> None:
        """Append one line to the current journal file (one system call: it survives a SIGKILL)."""
        os.write(self._journal_fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())

    def _recover(self) -> int:
        """Write the journalled events no part holds (a killed server's) as one part; remove the
        journal files. Returns how many events were recovered."""
        files = sorted(self.journal.glob("*.jsonl"))
        if not files:
            return 0
        events: dict[str, dict[str, list[Any]]] = {}
        for file in files:
            for line in file.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by the kill: its event was never answered
                if "rows" in entry:
                    events[entry["event"]] = entry["rows"]
                elif entry.get("event") in events:
                    events[entry["event"]].update(entry["feedback"])
        first = min(int(file.stem) for file in files)
        written: set[str] = set()
        for part in table_parts(self.parts):
            if (m := PART.match(part.name)) and int(m.group(1)) >= first:
                written.update(map(str, pd.read_parquet(part, columns=["slate_id"])["slate_id"].unique()))
        lost = [rows for event, rows in events.items() if event not in written]
        if lost:
            self.ready = lost
            self.ready_rows = sum(len(rows["item_id"]) for rows in lost)
            self.flush()
        for file in files:
            file.unlink()
        return len(lost)

    # ------------------------------------------------------------------------ events
    def shown(self, event_id: str, rows: dict[str, list[Any]], ranked: Any) -> None:
        """A slate was shown: journal it, and hold its rows until its feedback (or its timeout)."""
        with self._mutex:
            self._record({"event": event_id, "rows": rows})
            self.pending[event_id] = Pending(rows, time.monotonic(), ranked, self.epoch)
            self.outstanding[self.epoch] += 1

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
            self._record(
                {"event": event_id, "feedback": {k: event.rows[k] for k in ("click", "purchase", "feedback")}}
            )
            self._ready(event_id, event, reported=True)
        return event

    def _ready(self, event_id: str, event: Pending, reported: bool) -> None:
        self.ready.append(event.rows)
        self.ready_epochs.append(event.epoch)
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
                epochs, self.ready_epochs = self.ready_epochs, []
            if not batch:
                return None
            table = pd.DataFrame({c: list(chain.from_iterable(rows[c] for rows in batch)) for c in COLUMNS})
            path = self.parts / f"part-{self.next_part:06d}.parquet"
            try:
                with atomic_path(path) as tmp:
                    table.to_parquet(tmp, index=False)
            except BaseException:
                with self._mutex:  # nothing is lost: the rows wait for the next write
                    self.ready, self.ready_epochs = batch + self.ready, epochs + self.ready_epochs
                    self.ready_rows += len(table)
                raise
            self.next_part += 1
            self.parts_written += 1
            self.rows_written += len(table)
            self._retire(epochs)
            return path

    def _retire(self, epochs: list[int]) -> None:
        """Events of these journal epochs are in a part now: start a new journal file, and remove
        the old ones whose every event is written."""
        if not hasattr(self, "_journal_fd"):
            return  # the recovery's own part, before any journal is open
        with self._mutex:
            for epoch in epochs:
                if epoch in self.outstanding:
                    self.outstanding[epoch] -= 1
            os.close(self._journal_fd)
            self.epoch = max(self.epoch + 1, self.next_part)
            self.outstanding[self.epoch] = 0
            self._journal_fd = self._open_journal(self.epoch)
            for epoch in [e for e, n in self.outstanding.items() if n <= 0 and e != self.epoch]:
                (self.journal / f"{epoch:06d}.jsonl").unlink(missing_ok=True)
                del self.outstanding[epoch]

    def close(self) -> None:
        """Write everything held (slates without feedback as no clicks) and release the folder."""
        try:
            self.expire(everything=True)
            self.flush()
        finally:
            os.close(self._journal_fd)
            if not self.pending and not self.ready:  # everything is in parts: no journal left
                for file in self.journal.glob("*.jsonl"):
                    file.unlink()
            release_folder(self._lock_handle)
