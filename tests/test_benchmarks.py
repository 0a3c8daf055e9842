"""Smoke runs of the benchmark CLIs on tiny budgets (their figures are measured, not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli


@pytest.mark.slow
def test_policies_benchmark_writes_json_markdown_and_curves(tmp_path: Path) -> None:
    out = tmp_path / "policies.json"
    result = run_cli("benchmarks.policies", "--json", str(out), "--seeds", "1", "--timesteps", "512",
                     "--eval-episodes", "16")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"ppo-cold", "ppo-warm", "dqn-cold", "dqn-warm", "ctr", "popularity", "random"} <= set(
        report["summary"]
    )
    assert report["warm_start"]["ppo_warm_initial_return"] == pytest.approx(
        report["summary"]["ctr"]["return_mean"]
    )
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and out.with_suffix(".md").is_file()


def test_ope_accuracy_obd_track(tmp_path: Path) -> None:
    out = tmp_path / "ope.json"
    result = run_cli("benchmarks.ope_accuracy", "--json", str(out), "--quick", "--skip-shop")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["obd"]
    assert {(r["logs"], r["target"]) for r in rows} == {("random", "bts"), ("bts", "random")}
    assert all(r["mean_relative_error"] >= 0 for r in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_gpu_check_without_a_gpu_says_so(tmp_path: Path) -> None:
    result = run_cli("benchmarks.gpu_check", "--json", str(tmp_path / "gpu.json"))
    assert result.returncode == 2 and "no CUDA GPU" in result.stderr
