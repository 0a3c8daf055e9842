"""agents.export: a trained agent as ONNX, run by onnxruntime, acting as the torch agent does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.sessions import run_sessions
from agents.policies.agent import TrainedAgent
from agents.policies.onnx import OnnxPolicy
from agents.serve.export import record_observations
from tests.conftest import TINY, copy_run, run_cli


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_the_onnx_policy_acts_as_the_torch_agent(
    algorithm: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run = tmp_path / algorithm
    if algorithm == "ppo":  # the session's tiny PPO run
        copy_run(request.getfixturevalue("tiny_ppo_run"), run)
    else:
        trained = run_cli("agents.train", algorithm, *TINY, "--out", str(run))
        assert trained.returncode == 0, trained.stderr[-2000:]
    exported = run_cli("agents.export", str(run), "--onnx", str(run / "policy.onnx"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    check = json.loads((run / "policy.check.json").read_text())
    assert check["observations"] == 1000 and check["max_abs_difference"] <= 1e-4
    agent, onnx = TrainedAgent.load(run, device="cpu"), OnnxPolicy.load(run)
    observations = record_observations(agent, 300, seed=7)  # other observations than the check's
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(onnx.act(observations, rng), agent.act(observations, rng), atol=1e-4)
    torch_result = run_sessions(agent, agent.env_config, 64, 3, progress=False)
    onnx_result = run_sessions(onnx, onnx.env_config, 64, 3, progress=False)
    assert abs(onnx_result.returns.mean() - torch_result.returns.mean()) <= 0.02 * abs(
        torch_result.returns.mean()
    )


def test_export_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("agents.export", str(tmp_path), "--onnx", str(tmp_path / "p.onnx"))
    assert (
        result.returncode == 2 and "not a RecGym agent" in result.stderr and "Traceback" not in result.stderr
    )
    missing = run_cli("agents.export", str(tmp_path), "--onnx", str(tmp_path))  # a folder where a file is due
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
