"""The on-disk cache of fitted simulators: ``load_or_fit(logs)`` returns the cached simulator,
fitting it (which needs torch) only on a cache miss."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simulators.core.errors import DataError
from simulators.core.storage import MANIFEST, cache_dir, cache_entry_problem, report_rebuild, write_manifest
from simulators.data.logs import LoggedData, data_fingerprint
from simulators.fit.config import FitConfig
from simulators.fit.simulator import FittedSimulator

SIMULATOR_FILES = ("simulator.npz", "dynamics.json", "fidelity.md", "fidelity.json")
"""What a cached simulator's folder holds (its manifest covers them)."""
FIT_VERSION = 9
"""Bump when fitting changes, so cached simulators are refitted."""


# ------------------------------------------------------------------------------ caching
def simulator_folder(logs: LoggedData, config: FitConfig) -> Path:
    """Cache folder of the simulator fitted on ``logs`` with ``config``."""
    key = hashlib.sha256(
        f"{FIT_VERSION}|{data_fingerprint(logs)}|{json.dumps(asdict(config), sort_keys=True)}".encode()
    )
    return cache_dir("simulators", key.hexdigest()[:16])


def load_or_fit(logs: LoggedData, config: FitConfig | None = None) -> tuple[FittedSimulator, dict[str, Any]]:
    """The cached simulator for ``logs`` and ``config``, fitted (and cached) on first use."""
    config = config or FitConfig()
    folder = simulator_folder(logs, config)
    manifest = folder / MANIFEST
    if (folder / "fidelity.json").is_file():
        problem = cache_entry_problem(manifest)
        if problem is None:
            try:
                return FittedSimulator.load(folder), json.loads((folder / "fidelity.json").read_text())
            except (DataError, ValueError) as err:
                problem = str(err)
        report_rebuild("simulator", folder, problem)
    # Training imports torch: only a cache miss pays for it, so envs start without it.
    from simulators.fit.pipeline import fit_and_report
    from simulators.fit.report import write_outputs

    simulator, report = fit_and_report(logs, config)
    write_outputs(simulator, report, folder)
    write_manifest(manifest, [folder / name for name in SIMULATOR_FILES])
    return simulator, report
