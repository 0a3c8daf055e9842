"""``python -m benchmarks.ray_scaling --json FILE``: the policies benchmark serial and on a local
Ray, in one process: both wall times, their ratio and whether every number is the same.

The plan is ``benchmarks.policies``'s (its flags; the default here: 5 seeds x PPO and DQN x 4,096
steps, 200 true-shop sessions per policy). A small run first builds the caches both read (not
timed), so neither backend pays for them. Each timed run is the benchmark's own work: the
training trials, then every true-shop play (``run_all`` and ``true_shop``); the Ray one includes
starting and stopping Ray. ``--cpus`` is the local Ray's size (default: this machine's).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from agents.studies.backend import Backend
from agents.training.curves import Curve
from benchmarks.plans import parse_plan
from benchmarks.policies import Plan, run_all, summarise, true_shop
from benchmarks.tables import report_markdown
from simulators.core.cli import cli_entry, config_kwargs
from simulators.core.storage import write_text_atomic

DEFAULTS = {"seeds": 5, "timesteps": 4_096, "eval_episodes": 100, "agents": ("ppo-static", "dqn-static"),
            "tuning_sessions": 16, "tuning_generations": 1, "true_episodes": 200}  # fmt: skip
"""The plan measured unless flags say otherwise (the issue's 5-seed policies benchmark, small steps)."""
QUICK = {**DEFAULTS, "seeds": 2, "timesteps": 512, "eval_episodes": 16, "true_episodes": 16, "n_envs": 4}
"""The plan of ``--quick`` (a smoke run)."""


def timed(plan: Plan, folder: Path, backend: Backend) -> tuple[float, dict[str, Any]]:
    """Wall seconds of the benchmark's work on ``backend``, and what it found."""
    started = time.perf_counter()
    with backend.running():
        results = run_all(plan, folder, backend)
        truth = true_shop(plan, folder, results["runs"], backend)
    seconds = time.perf_counter() - started
    trial_seconds = [report["seconds"] for reports in results["runs"].values() for report in reports]
    return seconds, {"summary": summarise(results["runs"]), "true_shop": truth, "curves": results["curves"],
                     "trial_seconds": trial_seconds}  # fmt: skip


def same_curves(a: dict[str, list[Curve]], b: dict[str, list[Curve]]) -> bool:
    """Whether two runs drew the same learning curves, row by row and seed by seed."""
    return a.keys() == b.keys() and all(
        len(a[name]) == len(b[name]) and all(x.same(y) for x, y in zip(a[name], b[name], strict=True))
        for name in a
    )


def measure(plan: Plan, cpus: int | None) -> dict[str, Any]:
    """Serial and Ray runs of ``plan`` after an untimed warm-up; the comparison."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        warm = replace(plan, seeds=1, true_episodes=8)  # one seed of each row: every cache, little else
        timed(warm, work / "warm", Backend())  # builds the shop, fit, CTR, candidates and tuned baselines
        serial_s, serial = timed(plan, work / "serial", Backend())
        ray_s, spread = timed(plan, work / "ray", Backend("ray", cpus=cpus))
    trials = plan.seeds * len(plan.agents)
    return {
        "plan": {**plan.__dict__, "agents": list(plan.agents)},
        "cpus": cpus or os.cpu_count(),
        "training_trials": trials,
        "serial_seconds": round(serial_s, 1),
        "ray_seconds": round(ray_s, 1),
        "ratio": round(ray_s / serial_s, 3),
        "identical_summary": serial["summary"] == spread["summary"],
        "identical_true_shop": serial["true_shop"] == spread["true_shop"],
        "identical_curves": same_curves(serial["curves"], spread["curves"]),
        "trial_seconds": {"serial": serial["trial_seconds"], "ray": spread["trial_seconds"]},
        "summary": serial["summary"],
    }


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Measure, write the JSON, print the ratio."""
    args, plan = parse_plan("python -m benchmarks.ray_scaling", __doc__.splitlines()[0], Plan, QUICK, argv)
    if not args.quick:  # this benchmark's own defaults, then the flags given
        plan = Plan(**{**DEFAULTS, **config_kwargs(args, Plan)})
    report = measure(plan, args.cpus)
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"), report_markdown("Serial against Ray (benchmarks.ray_scaling)", report)
    )
    print(
        f"serial {report['serial_seconds']} s, ray {report['ray_seconds']} s on {report['cpus']} CPUs: "
        f"ratio {report['ratio']}; identical: summary {report['identical_summary']}, "
        f"true shop {report['identical_true_shop']}, curves {report['identical_curves']}"
    )


if __name__ == "__main__":
    main()
