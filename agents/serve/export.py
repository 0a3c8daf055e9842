"""``python -m agents.export RUN_DIR --onnx FILE``: a trained agent's deterministic policy as an
ONNX graph, checked against torch on recorded observations (run by
:class:`~agents.policies.onnx.OnnxPolicy`).

The graph maps the env's ``ids`` observation (one input per key, batch first) to what the agent's
``predict(deterministic=True)`` returns: the action mean clipped to the action space (PPO, A2C)
or the greedy action (DQN: a strategy or a menu entry, with its Q-values as a second output), or for a categorical head
(PPO, A2C in ``menu`` mode) the most probable entry, with its logits as a second output. The pattern is SB3's export
guide's (wrap the policy's features extractor, latent network and action head in one module and
trace it with ``torch.onnx.export``); the LSTM user tower runs without data-dependent branches,
so the trace holds for any history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agents.policies.agent import EXPORT_FILES, TrainedAgent, run_files
from agents.policies.onnx import OnnxPolicy
from envs.factory import make_vector_env
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import atomic_path, check_output_file, file_digest, write_text_atomic

OPSET = 17
"""The ONNX opset the graph is written in."""


class DeterministicPolicy(nn.Module):
    """The agent's deterministic action as one module over the observation's arrays, in ``keys`` order."""

    low: torch.Tensor
    high: torch.Tensor
    policy: Any

    def __init__(self, agent: TrainedAgent):
        super().__init__()
        self.policy = agent.model.policy
        space = agent.model.observation_space
        assert isinstance(space, spaces.Dict)
        self.keys = list(space.spaces)
        self.q_learning = agent.algorithm == "dqn"
        action_space = agent.model.action_space
        self.categorical = isinstance(action_space, spaces.Discrete) and not self.q_learning
        if not (self.q_learning or self.categorical):
            assert isinstance(action_space, spaces.Box)
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))

    def forward(self, *arrays: torch.Tensor) -> Any:
        """The action (and, for DQN, the Q-values; for a categorical head, its logits) of a batch of
        observations."""
        observation = {key: array.float() for key, array in zip(self.keys, arrays, strict=True)}
        if self.q_learning:
            q_values = self.policy.q_net(observation)
            return q_values.argmax(dim=1), q_values
        features = self.policy.extract_features(observation, self.policy.pi_features_extractor)
        latent = self.policy.mlp_extractor.forward_actor(features)
        if self.categorical:  # (a menu: the most probable weight vector, as predict(deterministic) plays)
            logits = self.policy.action_net(latent)
            return logits.argmax(dim=1), logits
        return torch.minimum(torch.maximum(self.policy.action_net(latent), self.low), self.high)


def export_onnx(agent: TrainedAgent, observation: dict[str, np.ndarray], path: Path) -> None:
    """Trace the agent on ``observation`` (a batch of the env's observations) into ``path``."""
    module = DeterministicPolicy(agent).eval()
    inputs = tuple(torch.as_tensor(observation[key]) for key in module.keys)
    outputs = (
        ["action", "q_values"]
        if module.q_learning
        else ["action", "logits"]
        if module.categorical
        else ["action"]
    )
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(
            module, inputs, str(tmp), input_names=module.keys, output_names=outputs, opset_version=OPSET,
            dynamic_axes={name: {0: "batch"} for name in [*module.keys, *outputs]}, dynamo=False,
        )  # fmt: skip


def record_observations(agent: TrainedAgent, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` observations the agent meets acting in its env (for the export's trace and its check)."""
    env = make_vector_env(agent.env_config, min(n, 32))
    observation, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    batches: list[dict[str, np.ndarray]] = []
    while sum(len(b["candidates"]) for b in batches) < n:
        batches.append(observation)
        observation, *_ = env.step(agent.act(observation, rng))
    return {key: np.concatenate([b[key] for b in batches])[:n] for key in batches[0]}


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Export, then check ONNX against torch on recorded observations; write the check beside it."""
    parser = ArgumentParser(prog="python -m agents.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder written by agents.train")
    parser.add_argument("--onnx", type=Path, required=True, help="where to write the ONNX graph")
    parser.add_argument(
        "--check",
        type=int,
        default=1000,
        help="recorded observations the export is checked on (default: 1000)",
    )
    args = parser.parse_args(argv)
    exports = {args.run_dir / name for name in EXPORT_FILES}  # its own export it may rewrite
    inputs = [path for path in run_files(args.run_dir) if path not in exports]
    check_output_file(args.onnx, "--onnx", inputs=inputs, beside=(".check.json",))
    if not 1 <= args.check <= MAX_CHECK:
        raise ConfigError(f"--check must lie in [1, {MAX_CHECK:,}], got {args.check}")
    check = export_run(args.run_dir, args.onnx, args.check)
    print(
        f"wrote {args.onnx}; ONNX and torch agree to {check['max_abs_difference']:.2e} on {args.check} "
        "recorded observations"
    )


MAX_CHECK = 100_000
"""Most observations an export is checked on (they are held in memory)."""
TOLERANCE = 1e-3
"""Largest difference between the ONNX and the torch actions an export may show (float32: about 1e-5)."""


def export_run(run_dir: Path, onnx: Path, check: int = 1000) -> dict[str, Any]:
    """Export ``run_dir``'s agent to ``onnx`` and check it against torch on ``check`` recorded
    observations; write ``onnx``'s ``.check.json`` (with the model's digest, so a later model is
    never served by an earlier export) and return it. An export whose actions differ by more than
    :data:`TOLERANCE` is removed and refused."""
    agent = TrainedAgent.load(run_dir, device="cpu")
    if agent.env_options.get("obs_mode", "ids") != "ids":
        raise ConfigError(f"{run_dir}: only agents of obs_mode 'ids' export (this one reads 'embedding')")
    observations = record_observations(agent, check)
    export_onnx(agent, {k: v[:8] for k, v in observations.items()}, onnx)
    exported = OnnxPolicy(onnx, agent.algorithm, agent.env_options)
    rng = np.random.default_rng(0)
    torch_actions = agent.act(observations, rng).astype(np.float64)
    onnx_actions = exported.act(observations, rng).astype(np.float64)
    difference = float(np.abs(torch_actions - onnx_actions).max())
    if not difference <= TOLERANCE:
        onnx.unlink(missing_ok=True)
        raise ConfigError(f"{run_dir}: the ONNX export acts {difference:.2e} away from torch; not written")
    record = {"observations": check, "max_abs_difference": difference, "opset": OPSET,
              "model_digest": file_digest(run_dir / "model.zip")}  # fmt: skip
    write_text_atomic(onnx.with_suffix(".check.json"), json.dumps(record, indent=1) + "\n")
    return record


def export_is_current(run_dir: Path, onnx: Path) -> bool:
    """Whether ``onnx`` is the export of ``run_dir``'s current model (its check records the model's
    digest: an export from before a ``--resume`` or an ``--overwrite`` is not)."""
    try:
        record = json.loads(onnx.with_suffix(".check.json").read_text())
    except (OSError, ValueError):
        return False
    return onnx.is_file() and record.get("model_digest") == file_digest(run_dir / "model.zip")


if __name__ == "__main__":
    main()
