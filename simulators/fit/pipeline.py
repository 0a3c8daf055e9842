"""Fitting a simulator end to end: train it, then report its fidelity.

``fit_simulator(logs) -> (FittedSimulator, report)``; :func:`fit_and_report` adds the shop's
ground-truth figures when the logs are the shop's.
"""

from __future__ import annotations

import time
from typing import Any

from encoders.device import deterministic_torch
from simulators.data.logs import LoggedData
from simulators.datasets.shop import truth_of
from simulators.fit.config import FitConfig
from simulators.fit.report import fidelity_report, shop_ground_truth
from simulators.fit.simulator import FittedSimulator
from simulators.fit.train import train_simulator


def fit_simulator(
    logs: LoggedData, config: FitConfig | None = None
) -> tuple[FittedSimulator, dict[str, Any]]:
    """Fit a :class:`FittedSimulator` from validated logs; return it with a fidelity report.

    Deterministic on CPU for a given ``config.seed``.
    """
    config = config or FitConfig()
    start = time.perf_counter()
    with deterministic_torch(config.seed):
        result = train_simulator(logs, config)
        report = fidelity_report(result, config)
    info = dict(result.info)
    report |= {"data": info.pop("data"), "fit_seconds": round(time.perf_counter() - start, 1), **info}
    return result.simulator, report


def fit_and_report(logs: LoggedData, config: FitConfig) -> tuple[FittedSimulator, dict[str, Any]]:
    """:func:`fit_simulator`, plus the ground-truth figures when the logs are the shop's."""
    simulator, report = fit_simulator(logs, config)
    truth = truth_of(logs)
    if truth is not None:
        report |= shop_ground_truth(logs, truth, report, config, simulator)
    return simulator, report
