"""Environment speed: single env, gymnasium's SyncVectorEnv, and the native batched env.

``python -m benchmarks.env_speed --json FILE [--quick]``; all at N=50 candidates, K=5, on
``ecommerce-v0`` (fitted simulator). The SyncVectorEnv run is the in-run baseline.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import EnvConfig
from envs.ranking import RankingEnv
from envs.vector import RankingVectorEnv
from envs.world import build_world
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.storage import check_output_file, write_text_atomic


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


REPEATS = 3
"""Each rate is the best of this many timed runs, after a warm-up run (compiled kernels,
caches): this machine's neighbours make single runs vary by a third."""


def _best_rate(run: Callable[[], float]) -> float:
    run()
    return max(run() for _ in range(REPEATS))


def _fixed_scores(batch: int) -> np.ndarray:
    return np.tile(np.linspace(1, -1, 50).astype(np.float32), (batch, 1))


def single_env_steps_per_s(steps: int) -> float:
    """Steps per second of one ``RankingEnv`` (no wrappers) with a fixed scores action."""
    env = RankingEnv()
    env.reset(seed=0)
    action = _fixed_scores(1)[0]

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - start)

    return _best_rate(run)


def _vector_rate(vector: Any, num_envs: int, steps: int) -> float:
    vector.reset(seed=0)
    actions = _fixed_scores(num_envs)

    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            vector.step(actions)
        return num_envs * steps / (time.perf_counter() - start)

    return _best_rate(run)


def sync_vector_steps_per_s(num_envs: int, steps: int) -> float:
    """User-steps per second of ``num_envs`` RankingEnvs in ``gymnasium.vector.SyncVectorEnv``."""
    return _vector_rate(
        gym.vector.SyncVectorEnv([lambda: RankingEnv() for _ in range(num_envs)]), num_envs, steps
    )


def batched_user_steps_per_s(num_envs: int, steps: int, copy: bool = True) -> tuple[float, float]:
    """User-steps per second of the native vector env, and the MiB it added to the process."""
    before = _rss_mib()
    vector = RankingVectorEnv(num_envs=num_envs, copy=copy)
    rate = _vector_rate(vector, num_envs, steps)
    return rate, _rss_mib() - before


def resident_mib_for_4096_users() -> float:
    """Peak RSS of a fresh process that loads ``ecommerce-v0`` from the cache and steps 4,096
    users: what running that many parallel users costs, without fitting or benchmarking."""
    code = (
        "import numpy as np, resource; from envs.vector import RankingVectorEnv;"
        "v = RankingVectorEnv(num_envs=4096); v.reset(seed=0);"
        "a = np.zeros((4096, 50), dtype=np.float32);"
        "[v.step(a) for _ in range(20)];"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, Any]:
    """Every figure of this benchmark, measured in one process."""
    scale = 0.1 if quick else 1.0
    before_world = _rss_mib()
    build_world(EnvConfig())  # fit or load the simulator first: not part of any timing
    figures: dict[str, Any] = {
        "n_candidates": 50,
        "slate_size": 5,
        "world_mib": round(_rss_mib() - before_world, 1),
    }
    figures["single_env_steps_per_s"] = round(single_env_steps_per_s(int(20_000 * scale)), 1)
    figures["sync_vector_num_envs"] = 64
    figures["sync_vector_steps_per_s"] = round(sync_vector_steps_per_s(64, int(500 * scale)), 1)
    batched, memory = {}, {}
    for num_envs, steps in ((1, 20_000), (64, 2_000), (4096, 100)):
        rate, added = batched_user_steps_per_s(num_envs, max(int(steps * scale), 10))
        batched[str(num_envs)], memory[str(num_envs)] = round(rate, 1), round(added, 1)
    figures["batched_user_steps_per_s"] = batched
    figures["batched_env_added_mib"] = memory
    no_copy, _ = batched_user_steps_per_s(4096, max(int(100 * scale), 10), copy=False)
    figures["batched_4096_no_copy_user_steps_per_s"] = round(no_copy, 1)
    figures["batched_over_sync_ratio"] = round(batched["4096"] / figures["sync_vector_steps_per_s"], 1)
    figures["benchmark_process_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    figures["peak_rss_mib"] = round(resident_mib_for_4096_users(), 1)
    return figures


def markdown(figures: dict[str, Any]) -> str:
    """The figures as a table."""
    rows = [
        ("single env (steps/s)", figures["single_env_steps_per_s"]),
        ("SyncVectorEnv x64 (user-steps/s, baseline)", figures["sync_vector_steps_per_s"]),
        *((f"native batched x{k} (user-steps/s)", v) for k, v in figures["batched_user_steps_per_s"].items()),
        ("native batched x4096, copy=False", figures["batched_4096_no_copy_user_steps_per_s"]),
        ("batched x4096 / SyncVectorEnv", figures["batched_over_sync_ratio"]),
        ("shared world (MiB)", figures["world_mib"]),
        ("x4096 env state added (MiB)", figures["batched_env_added_mib"]["4096"]),
        ("peak RSS, 4096 users in a fresh process (MiB)", figures["peak_rss_mib"]),
        ("peak RSS of this benchmark process (MiB)", figures["benchmark_process_peak_rss_mib"]),
    ]
    return "| figure | value |\n| --- | --- |\n" + "".join(f"| {name} | {value} |\n" for name, value in rows)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure, write JSON and markdown."""
    parser = ArgumentParser(prog="python -m benchmarks.env_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the steps (smoke test)")
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    figures = run(args.quick)
    write_text_atomic(args.json, json.dumps(figures, indent=2) + "\n")
    table = markdown(figures)
    write_text_atomic(args.json.with_suffix(".md"), table)
    print(table)


if __name__ == "__main__":
    main()
