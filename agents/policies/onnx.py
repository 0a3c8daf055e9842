"""A trained agent exported to ONNX (``python -m agents.export``), run by onnxruntime with the
policy interface: what the serving path runs by default."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.config import EnvConfig, known_options
from simulators.core.errors import ConfigError
from simulators.core.storage import file_digest

ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
               "tensor(int32)": np.int32, "tensor(int8)": np.int8}  # fmt: skip
"""numpy dtype of each ONNX input type (an observation is cast to what the graph declares)."""


@dataclass
class OnnxPolicy:
    """An exported agent run by onnxruntime, with the policy interface of :class:`TrainedAgent`."""

    path: Path
    """The ``.onnx`` file."""
    algorithm: str
    """The SB3 algorithm it was trained with."""
    env_options: dict[str, Any]
    """Options of the env it acts in (from the run's ``config.json``)."""
    session: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one request per thread; a server scales by workers
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types for a bad file
            raise ConfigError(f"{self.path}: not an ONNX policy ({err})") from None
        self.inputs = {i.name: ONNX_DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()}

    @classmethod
    def load(cls, run_dir: str | Path, onnx_file: str | Path | None = None) -> OnnxPolicy:
        """The run's exported policy (``RUN_DIR/policy.onnx`` unless ``onnx_file`` is given)."""
        folder = Path(run_dir)
        try:
            config = json.loads((folder / "config.json").read_text())
            algorithm, options = str(config["algorithm"]), dict(config["env_options"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{folder}: not a RecGym run folder ({err!r})") from None
        path = Path(onnx_file) if onnx_file else folder / "policy.onnx"
        if not path.is_file():
            raise ConfigError(
                f"{path}: no such file (write it with python -m agents.export {folder} --onnx {path})"
            )
        try:
            digest = json.loads(path.with_suffix(".check.json").read_text()).get("model_digest")
        except (OSError, ValueError, AttributeError):
            digest = None  # an export from before exports recorded their model: it cannot be told
        if (
            digest is not None
            and (folder / "model.zip").is_file()
            and digest != file_digest(folder / "model.zip")
        ):
            raise ConfigError(
                f"{path}: exported from an earlier model than {folder / 'model.zip'} (a resumed or replaced run); "
                f"export it again (python -m agents.export {folder} --onnx {path})"
            )
        return cls(path, algorithm, options)

    @property
    def action_mode(self) -> str:
        """The env action mode its actions are for."""
        return str(self.env_options.get("action_mode", "scores"))

    @property
    def env_config(self) -> EnvConfig:
        """The env it acts in (its recorded options that are :class:`EnvConfig` fields)."""
        return EnvConfig(**known_options(self.env_options))

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Deterministic batched actions, as :meth:`TrainedAgent.act` gives them."""
        del rng
        if missing := sorted(set(self.inputs) - set(observation)):
            raise ConfigError(f"observation lacks {missing} (the policy reads {sorted(self.inputs)})")
        feed = {
            name: np.ascontiguousarray(observation[name], dtype=dtype) for name, dtype in self.inputs.items()
        }
        if len({len(array) for array in feed.values()}) != 1 or any(
            array.ndim < 2 for array in feed.values()
        ):
            raise ConfigError("observation arrays must be batched alike (a leading batch axis on each)")
        return np.asarray(self.session.run(["action"], feed)[0])
