"""From a folder of four-column logs to a trained, evaluated policy: the README's own-logs how-to, timed.

``python -m benchmarks.own_logs --json FILE [--rows 100000] [--work DIR]``

Writes ``interactions.csv`` with only ``user_id,item_id,timestamp,click`` (the shop's first
``--rows`` rows: no positions, sessions, items or users table), then runs the how-to's commands
as a user would, each as its own process with a fresh cache (``$RECGYM_CACHE`` under the work
folder, so the fit and the CTR model are part of the time): ``agents.train ppo --data``,
``agents.evaluate`` and ``agents.ope --policy ctr``. Records each command's wall time and what
it printed (the comparison table, the OPE table).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, check_output_folder, write_text_atomic
from simulators.datasets import load_logs

COLUMNS = ["user_id", "item_id", "timestamp", "click"]
"""The columns of the exported folder: the fewest the tabular loader takes."""


def export(folder: Path, rows: int) -> None:
    """The shop's first ``rows`` interactions as a four-column CSV in ``folder``."""
    table = load_logs("shop").interactions
    if not 1_000 <= rows <= len(table):
        raise ConfigError(f"--rows must lie in [1000, {len(table)}], got {rows}")
    folder.mkdir(parents=True, exist_ok=True)
    table.iloc[:rows][COLUMNS].to_csv(folder / "interactions.csv", index=False)


def commands(data: Path, runs: Path) -> list[list[str]]:
    """The how-to's three commands on ``data`` (runs under ``runs``)."""
    return [
        ["agents.train", "ppo", "--data", str(data), "--out", str(runs / "mine")],
        ["agents.evaluate", "--policy", str(runs / "mine"), "--json", str(runs / "mine-eval.json")],
        ["agents.ope", "--policy", "ctr", "--data", str(data), "--json", str(runs / "mine-ope.json")],
    ]


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Export, run and time the three commands; write the JSON."""
    parser = ArgumentParser(prog="python -m benchmarks.own_logs", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the timings (JSON)")
    parser.add_argument("--rows", type=int, default=100_000, help="interactions to export (default: 100000)")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("runs/own_logs"),
        help="work folder, replaced (default: runs/own_logs)",
    )
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    check_output_folder(args.work, "--work")
    shutil.rmtree(args.work, ignore_errors=True)
    data, runs = args.work / "my_logs", args.work / "runs"
    export(data, args.rows)
    env = {**os.environ, "RECGYM_CACHE": str(args.work / "cache")}
    steps: list[dict[str, Any]] = []
    for command in commands(data, runs):
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", *command], capture_output=True, text=True, env=env, check=False
        )
        seconds = round(time.perf_counter() - started, 1)
        print(f"{' '.join(command[:2])}: {seconds} s (exit {result.returncode})", flush=True)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
        steps.append({"command": ["python", "-m", *command], "seconds": seconds, "exit": result.returncode,
                      "stdout": result.stdout[-6000:]})  # fmt: skip
    train_and_evaluate = sum(s["seconds"] for s in steps[:2])
    report = {"rows": args.rows, "columns": COLUMNS, "cpus": os.cpu_count(), "steps": steps,
              "train_and_evaluate_seconds": round(train_and_evaluate, 1),
              "all_seconds": round(sum(s["seconds"] for s in steps), 1)}  # fmt: skip
    write_text_atomic(args.json, json.dumps(report, indent=1) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"),
        report_markdown("The own-logs how-to, timed (benchmarks.own_logs)", report),
    )
    print(steps[0]["stdout"])
    print(steps[2]["stdout"])
    print(f"train + evaluate: {train_and_evaluate:.0f} s; with OPE: {report['all_seconds']:.0f} s")


if __name__ == "__main__":
    main()
