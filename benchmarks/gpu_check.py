"""The CUDA path in one short run: BERT catalog encoding, then PPO and DQN training, on a GPU.

``python -m benchmarks.gpu_check --json FILE [--timesteps N]`` (fails with a clear error
without CUDA). On a fresh cache it also fits the simulator and trains the CTR model (on the GPU).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, write_text_atomic


def encode_catalog(device: str) -> dict[str, Any]:
    """Encode the shop's product texts with BERT on ``device`` (no cache), twice; the second is timed."""
    from encoders.text import TextEncoder, TextEncoderConfig
    from simulators.datasets import load_logs

    texts = load_logs("shop").items["text"].astype(str).tolist()
    encoder = TextEncoder(TextEncoderConfig(device=device, use_cache=False))
    encoder.encode(texts[:256])  # load the weights and warm up the kernels
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    vectors = encoder.encode(texts)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"device": device, "items": len(texts), "seconds": round(seconds, 3), "items_per_s": round(len(texts) / seconds, 1),
            "dim": int(vectors.shape[1])}  # fmt: skip


def train_on(algorithm: str, device: str, timesteps: int, out: Path) -> dict[str, Any]:
    """A short ``agents.train`` run on ``device``."""
    from agents.training.config import TrainConfig
    from agents.training.train import train

    config = TrainConfig(
        algorithm,
        timesteps=timesteps,
        device=device,
        eval_episodes=200,
        eval_freq=timesteps,
        curve_episodes=200,
        out=str(out),
    )
    start = time.perf_counter()
    report = train(config, overwrite=True)  # its own scratch folder
    seconds = time.perf_counter() - start
    parameters = json.loads((out / "config.json").read_text())
    return {"algorithm": algorithm, "device": device, "timesteps": report["timesteps"], "seconds_incl_eval": round(seconds, 1),
            "return_mean": report["policy"]["return_mean"], "ctr_return_mean": report["baselines"]["ctr"]["return_mean"],
            "warm_start": parameters.get("warm_start")}  # fmt: skip


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Run the checks; write the JSON."""
    parser = ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the timings (JSON)")
    parser.add_argument(
        "--timesteps", type=int, default=4_096, help="environment steps per run (default: 4096)"
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/gpu_check"),
        help="folder of the runs (default: runs/gpu_check)",
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    if not torch.cuda.is_available():
        raise ConfigError("no CUDA GPU visible to torch: this check needs one")
    report: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    started = time.perf_counter()
    report["bert_cuda"] = encode_catalog("cuda")
    report["bert_cpu"] = encode_catalog("cpu")
    print(json.dumps(report, indent=1), flush=True)
    from envs.config import EnvConfig
    from envs.world import build_world

    world_start = time.perf_counter()
    build_world(
        EnvConfig()
    )  # fits the simulator and trains the CTR model (device auto = CUDA) on a fresh cache
    report["world_seconds"] = round(time.perf_counter() - world_start, 1)
    report["training"] = [train_on(a, "cuda", args.timesteps, args.runs / a) for a in ("ppo", "dqn")]
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"), report_markdown("The CUDA path (benchmarks.gpu_check)", report)
    )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
