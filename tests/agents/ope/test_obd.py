"""agents.ope.obd: the OBD Bernoulli-TS marginals and the agents.ope CLI on OBD logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.ope.obd import bts_marginals
from simulators.datasets.obd import prior_bts
from tests.conftest import run_cli


def test_bts_marginals_are_distributions() -> None:
    marginals = bts_marginals(*prior_bts("men"), 3, 20_000, np.random.default_rng(0))
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0)
    assert (marginals.sum(axis=1) <= 1.0 + 1e-9).all()


def test_ope_cli_on_obd_writes_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    result = run_cli("agents.ope", "--policy", "obd-bts", "--logs", "obd:random/all", "--bootstrap", "10",
                     "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"policy", "logs", "n", "estimates", "ground_truth"} <= set(report)
    assert {"dm", "ips", "snips", "dr", "sndr", "switch_dr"} <= set(report["estimates"])
    for entry in report["estimates"].values():
        assert {"value", "ci95", "ess"} <= set(entry) and entry["ci95"][0] <= entry["ci95"][1]
    assert report["n"] == 10_000 and report["ground_truth"] == pytest.approx(42 / 10_000)
