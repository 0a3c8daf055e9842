"""The on-disk cache of fitted simulators: ``load_or_fit(logs)`` returns the cached simulator,
fitting it (which needs torch) only on a cache miss."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simulators.core.storage import MANIFEST, cache_dir, content_key, load_or_build
from simulators.data.logs import LoggedData
from simulators.fit.config import FitConfig
from simulators.fit.simulator import FittedSimulator

SIMULATOR_FILES = ("simulator.npz", "dynamics.json", "fidelity.md", "fidelity.json")
"""What a cached simulator's folder holds (its manifest covers them)."""
FIT_VERSION = 15
"""Bump when fitting changes, so cached simulators are refitted."""


# ------------------------------------------------------------------------------ caching
def simulator_key(logs: LoggedData, config: FitConfig | None = None) -> str:
    """The identity of the simulator fitted on ``logs`` with ``config`` (its cache folder's name)."""
    return content_key("simulator", FIT_VERSION, logs.fingerprint, asdict(config or FitConfig()))


def simulator_folder(logs: LoggedData, config: FitConfig) -> Path:
    """Cache folder of the simulator fitted on ``logs`` with ``config``."""
    return cache_dir("simulators", simulator_key(logs, config))


def load_or_fit(logs: LoggedData, config: FitConfig | None = None) -> tuple[FittedSimulator, dict[str, Any]]:
    """The cached simulator for ``logs`` and ``config``, fitted (and cached) on first use."""
    config = config or FitConfig()
    folder = simulator_folder(logs, config)

    def load() -> tuple[FittedSimulator, dict[str, Any]]:
        return FittedSimulator.load(folder), json.loads((folder / "fidelity.json").read_text())

    def build() -> tuple[FittedSimulator, dict[str, Any]]:
        # Training imports torch: only a cache miss pays for it, so envs start without it.
        from simulators.fit.pipeline import fit_and_report
        from simulators.fit.report import write_outputs

        simulator, report = fit_and_report(logs, config)
        write_outputs(simulator, report, folder)
        return simulator, report

    files = [folder / name for name in SIMULATOR_FILES]
    return load_or_build("simulator", folder / MANIFEST, files, load, build)
