"""A run folder belongs to one run: a lock while it trains, a run id in ``config.json``, and
checkpoints tagged with it, so a second run never mixes its files with (or resumes from) another's.

A new run refuses a folder that holds another run's files unless told to replace them
(``--overwrite``); ``--resume`` continues the run the folder holds, from its own checkpoints only.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agents.policies.agent import EXPORT_FILES, RUN_FILES, RUN_FOLDERS
from agents.policies.distilled import DISTILLED_FILE, DISTILLED_RUN_FILES, SCORER_FILE
from simulators.core.errors import ConfigError

LOCK_FILE = ".lock"
"""Held (``flock``) while a run uses the folder; the kernel releases it when the process dies."""


def run_id_of(folder: Path) -> str | None:
    """The run id recorded in ``folder/config.json`` (or a distillation's ``distilled.json``;
    ``None`` without one)."""
    for name in ("config.json", DISTILLED_FILE):
        try:
            value = json.loads((folder / name).read_text()).get("run_id")
        except (OSError, ValueError, AttributeError):
            continue
        return str(value) if value else None
    return None


def holds_a_run(folder: Path) -> bool:
    """Whether ``folder`` holds any file or sub-folder a run writes (or its export)."""
    return any(
        (folder / name).exists()
        for name in (*RUN_FILES, *RUN_FOLDERS, *EXPORT_FILES, DISTILLED_FILE, SCORER_FILE)
    )


def checkpoint_prefix(run_id: str | None) -> str:
    """The name prefix of a run's checkpoints (``rl_model`` for runs from before run ids)."""
    return f"run-{run_id}" if run_id else "rl_model"


@contextmanager
def own_run_folder(
    folder: Path, resume: bool, overwrite: bool, resumable: bool = True
) -> Iterator[str | None]:
    """Lock ``folder`` for one run and yield its run id: the folder's own when resuming, a new
    one otherwise (``resumable``: whether the command can resume a run, for its error's hint). Raises :class:`ConfigError` when another process holds the folder, when a new
    run would land on another run's files without ``overwrite``, or when there is nothing to resume."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"--out {folder}: another run is using this folder right now; wait for it or choose another --out"
            ) from None
        try:
            if resume:
                if not (folder / "config.json").is_file():
                    raise ConfigError(f"--resume {folder}: no run to resume (no config.json)")
                run_id = run_id_of(folder)
                if run_id is None:
                    raise ConfigError(
                        f"--resume {folder}: its config.json names no run_id, so its checkpoints cannot be told "
                        "from another run's; start a new run (--out elsewhere)"
                    )
                yield run_id
                return
            if holds_a_run(folder):
                if not overwrite:
                    previous = run_id_of(folder)
                    hint = f" or --resume {folder} to continue it" if resumable else ""
                    raise ConfigError(
                        f"--out {folder}: holds another run{f' ({previous})' if previous else ''}; pass --overwrite "
                        f"to replace it{hint}"
                    )
                for name in (
                    *RUN_FILES,
                    *EXPORT_FILES,
                    *DISTILLED_RUN_FILES,
                ):  # the replaced run's export would be stale
                    (folder / name).unlink(missing_ok=True)
                for name in RUN_FOLDERS:
                    shutil.rmtree(folder / name, ignore_errors=True)
            yield uuid.uuid4().hex[:12]
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
