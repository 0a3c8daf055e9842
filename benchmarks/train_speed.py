"""Training speed: env steps per second of learning for each algorithm at several numbers of
parallel users, beside the batched env's own speed.

``python -m benchmarks.train_speed --json FILE [--quick] [--algorithms ppo a2c dqn] [--n-envs 16 64]
[--timesteps 20480] [--data shop]``

Each row builds the main job's model (the ``RankingExtractor``, warm start ``static``, the fairness
weight priced on the logs), then times ``model.learn(timesteps)`` alone: no evaluation, no
checkpoint, one torch thread, after the world and the tuned re-rankers are cached (an untimed
first build). ``ALGO-frozen-towers`` trains with ``--frozen-towers`` (the towers keep the warm
start's weights; their catalog tables are cached, :mod:`agents.training.networks`). The ``env`` row steps the batched env under the tuned-weights
action for as many user-steps: the most any learner could reach. Rates are ratios of one run on
one machine; compare rows of the same run only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError
from simulators.core.storage import atomic_path, check_output_file, write_text_atomic

LEARNERS = ("ppo", "a2c", "dqn", "ppo-frozen-towers", "a2c-frozen-towers", "dqn-frozen-towers")
"""What a row can time (``ALGO-frozen-towers``: ``ALGO`` with ``--frozen-towers``)."""


@dataclass(frozen=True)
class SpeedPlan:
    """What the benchmark times."""

    algorithms: tuple[str, ...] = LEARNERS
    """Learners to time (:data:`LEARNERS`)."""
    n_envs: tuple[int, ...] = (16, 64, 256)
    """Parallel users in the training env, one row per value."""
    timesteps: int = 20_480
    """Env steps each row learns for (rounded up to whole rollouts by SB3)."""
    data: str = "shop"
    """The logs the simulator is fitted to."""
    tuning_sessions: int = 256
    """Sessions per candidate when the static re-rankers (the warm start) are tuned: the main job's."""
    tuning_generations: int = 5
    """CEM generations of ``tuned-weights``: the main job's."""
    torch_threads: int = 1
    """Torch's threads (1: one process per core, as a study's trials run; 2 uses both of a
    2-core machine for one run)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.algorithms) - set(LEARNERS))
        if unknown or not self.algorithms:
            raise ConfigError(f"--algorithms must name some of {LEARNERS}, got {unknown or 'none'}")
        if not self.n_envs or min(self.n_envs) < 1 or max(self.n_envs) > 4_096:
            raise ConfigError(f"--n-envs must be between 1 and 4096, got {self.n_envs}")
        if not 1 <= self.torch_threads <= 256:
            raise ConfigError(f"--torch-threads must be between 1 and 256, got {self.torch_threads}")
        if min(self.tuning_sessions, self.tuning_generations) < 1:
            raise ConfigError("--tuning-sessions and --tuning-generations must be >= 1")
        if not 1 <= self.timesteps <= 10**8:
            raise ConfigError(f"--timesteps must be between 1 and 100,000,000, got {self.timesteps}")


QUICK = {"algorithms": ("ppo", "dqn"), "n_envs": (16,), "timesteps": 4_096}
"""``--quick``: two learners, one width, a short run."""


def _config(plan: SpeedPlan, learner: str, n_envs: int) -> Any:
    from agents.training.config import TrainConfig, priced_config

    algorithm = learner.split("-")[0]
    # (the config's own budget is never trained: each row passes plan.timesteps to learn)
    config, _ = priced_config(
        TrainConfig(algorithm, n_envs=n_envs, timesteps=10**8, env_options={"data": plan.data},
                    tuning_sessions=plan.tuning_sessions, tuning_generations=plan.tuning_generations,
                    frozen_towers=learner.endswith("-frozen-towers"))
    )  # fmt: skip
    return config


def time_learner(plan: SpeedPlan, learner: str, n_envs: int) -> dict[str, Any]:
    """One row: build and warm-start the main job's model, then time ``learn``."""
    from stable_baselines3.common.logger import Logger

    from agents.training.train import build_model
    from agents.training.warm_start import warm_start
    from envs.sb3 import make_sb3_env

    config = _config(plan, learner, n_envs)
    venv = make_sb3_env(config.options, n_envs)
    venv.seed(0)
    model = build_model(config, venv, venv.world)
    warm_start(model, config, venv.world)
    model.set_logger(Logger(folder=None, output_formats=[]))  # no run folder: it logs nowhere
    start = time.perf_counter()
    model.learn(plan.timesteps)
    seconds = time.perf_counter() - start
    steps = int(model.num_timesteps)
    return {"learner": learner, "n_envs": n_envs, "steps": steps, "seconds": round(seconds, 2),
            "steps_per_s": round(steps / seconds, 1)}  # fmt: skip


def time_env(plan: SpeedPlan, n_envs: int) -> dict[str, Any]:
    """The batched env alone under the tuned-weights action, for ``plan.timesteps`` user-steps."""
    from agents.evaluation.tuning import TuningBudget, load_or_tune
    from envs.factory import make_vector_env

    config = _config(plan, "ppo", n_envs)
    budget = TuningBudget(sessions=plan.tuning_sessions, cem_generations=plan.tuning_generations)
    weights = load_or_tune("tuned-weights", config.options, budget).weights
    action = np.tile(np.asarray(weights, np.float32), (n_envs, 1))
    env = make_vector_env(config.options, n_envs)
    env.reset(seed=0)
    env.step(action)  # untimed: the compiled step's first call compiles it
    steps, start = 0, time.perf_counter()
    while steps < plan.timesteps:
        env.step(action)
        steps += n_envs
    seconds = time.perf_counter() - start
    return {"learner": "env", "n_envs": n_envs, "steps": steps, "seconds": round(seconds, 3),
            "steps_per_s": round(steps / seconds, 1)}  # fmt: skip


def run(plan: SpeedPlan) -> dict[str, Any]:
    """Every row of ``plan``; each learner's rate also as a share of the env's at its width."""
    torch.set_num_threads(plan.torch_threads)
    from agents.training.train import prepare_caches

    prepare_caches(_config(plan, "ppo", plan.n_envs[0]))  # untimed: the world and the tuned re-rankers
    rows = []
    for n_envs in plan.n_envs:
        env = time_env(plan, n_envs)
        rows.append(env)
        for learner in plan.algorithms:
            row = time_learner(plan, learner, n_envs)
            row["share_of_env"] = round(row["steps_per_s"] / env["steps_per_s"], 5)
            rows.append(row)
            print(f"{learner:18s} n_envs {n_envs:5d}: {row['steps_per_s']:9.1f} steps/s", flush=True)
    return {"plan": asdict(plan), "torch_threads": plan.torch_threads, "rows": rows}


def plot(report: dict[str, Any], path: Path) -> None:
    """Steps per second of learning per learner and width (log scale), the env's beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    widths = sorted({r["n_envs"] for r in rows})
    names = list(dict.fromkeys(r["learner"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    step = 0.8 / len(names)
    for i, name in enumerate(names):
        rates = [
            next((r["steps_per_s"] for r in rows if r["learner"] == name and r["n_envs"] == w), 0.0)
            for w in widths
        ]
        ax.bar(np.arange(len(widths)) + i * step, rates, step, label=name)
    ax.set_xticks(np.arange(len(widths)) + 0.4 - step / 2, [f"{w} users" for w in widths])
    ax.set_yscale("log")
    ax.set_ylabel("env steps per second")
    ax.set_title("Training speed (learn only, one thread)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Time every row; write the JSON, its markdown and the PNG."""
    parser = ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json",
        type=Path,
        required=True,
        help="where to write the rows (JSON; FILE.md and FILE.png beside it)",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"a smaller default plan ({QUICK}); flags given still apply"
    )
    add_config_arguments(parser, SpeedPlan, choices={"algorithms": LEARNERS})
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    plan = SpeedPlan(**{**(QUICK if args.quick else {}), **config_kwargs(args, SpeedPlan)})
    report = run(plan)
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"), report_markdown("Training speed (benchmarks.train_speed)", report)
    )
    plot(report, args.json.with_suffix(".png"))
    print(f"wrote {args.json}, its .md and .png")


if __name__ == "__main__":
    main()
