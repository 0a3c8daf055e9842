"""What exploring costs: a trained policy served at several temperatures to the same true-shop users.

``python -m benchmarks.temperature --run RUN_DIR --json FILE [--sessions 2000] [--temperatures 0 0.5 1 2]``

The serving path (:class:`~agents.serve.service.Service` in process, the ranking and logging
``agents.adapt`` deploys with) serves ``--sessions`` sessions of true-shop users
(:func:`~agents.serve.traffic.simulate_users`, the same users and session ids at every
temperature) at each temperature; each session's clicks and purchases are read back from the
served log. Reported per temperature: engagement per session (clicks + purchases, the A/B's
measure at purchase weight 1) with its 95% CI, the difference to temperature 0 paired by session
(the same user; the shop's responses differ once the slates do), and the effective share of
exploration: the mean logged probability of the served slate's first item (1 at temperature 0).

Why it matters: ``agents.adapt`` serves at ``--temperature`` 1 so the week's log covers more than
the policy's own top slates for the refit and for off-policy estimates; the guard's canary does
not need it (its arms play their deterministic policies). The serving path applies a policy's
one-per-topic rule only at temperature 0 (``Ranker._choose``): above 0 every slate is sampled
from the scores alone, so the cost measured here is mostly the rule's, at any temperature.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from agents.policies.agent import run_files
from agents.serve.logbook import Logbook
from agents.serve.ranker import Ranker
from agents.serve.service import Service
from agents.serve.traffic import LocalClient, simulate_users
from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.metrics import mean_ci95
from simulators.core.storage import check_output_file, input_files, write_text_atomic


def served(run: Path, sessions: int, seed: int, temperature: float, data: str | None) -> pd.DataFrame:
    """Per session (by its index): clicks, purchases and the first slot's logged probability."""
    with tempfile.TemporaryDirectory() as folder:
        ranker = Ranker(run, "torch", seed=seed)
        logbook = Logbook(Path(folder), ranker.logs, flush_rows=50_000, feedback_timeout_s=1e9)
        try:
            simulate_users(LocalClient(Service(ranker, logbook)), run, sessions, seed, temperature, shop=data)
        finally:
            logbook.close()
        log = pd.read_parquet(Path(folder) / "interactions")
    log["session"] = log["session_id"].str.rsplit("-", n=1).str[-1].astype(int)
    first = log[log["position"] == log.groupby("slate_id")["position"].transform("min")]
    per = log.groupby("session")[["click", "purchase"]].sum()
    per["first_slot_probability"] = first.groupby("session")["slot_propensity"].mean()
    return per.reindex(range(sessions), fill_value=0)


def measure(
    run: Path, sessions: int, temperatures: list[float], seed: int, data: str | None
) -> dict[str, Any]:  # fmt: skip
    """The figures of the module docstring."""
    rows: dict[float, pd.DataFrame] = {t: served(run, sessions, seed, t, data) for t in temperatures}
    base = rows[min(temperatures)]
    report: dict[str, Any] = {"run": str(run), "sessions": sessions, "seed": seed, "data": data, "rows": []}
    for t, per in rows.items():
        engagement = (per["click"] + per["purchase"]).to_numpy(float)
        mean, low, high = mean_ci95(engagement)
        diff = engagement - (base["click"] + base["purchase"]).to_numpy(float)
        d_mean, d_low, d_high = mean_ci95(diff)
        report["rows"].append({
            "temperature": t, "engagement": mean, "ci95": [low, high],
            "clicks": float(per["click"].mean()), "purchases": float(per["purchase"].mean()),
            f"minus_temperature_{min(temperatures):g}": {"mean": d_mean, "ci95": [d_low, d_high]},
            "first_slot_probability": float(per["first_slot_probability"].mean()),
        })  # fmt: skip
    return report


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Serve at each temperature and write the JSON (and its table beside it)."""
    parser = ArgumentParser(prog="python -m benchmarks.temperature", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run", type=Path, required=True, help="a trained run folder (python -m agents.train)"
    )
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures (JSON)")
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per temperature (default: 2000)")
    parser.add_argument(
        "--temperatures", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0], help="(default: 0 0.5 1 2)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the simulated users' seed (default: 0)")
    parser.add_argument("--data", default=None, help="the shop the users come from (default: the run's)")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        raise ConfigError(f"--sessions must be >= 1, got {args.sessions}")
    if any(not (t == 0 or 0.05 <= t <= 100) for t in args.temperatures):
        raise ConfigError(f"--temperatures must each be 0 or lie in [0.05, 100], got {args.temperatures}")
    if not (args.run / "config.json").is_file():
        raise ConfigError(f"--run {args.run}: not a trained run folder (no config.json)")
    check_output_file(
        args.json, "--json", inputs=[*run_files(args.run), *input_files(args.data)], beside=(".md",)
    )
    report = measure(args.run, args.sessions, sorted(args.temperatures), args.seed, args.data)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"), report_markdown("What exploring costs (benchmarks.temperature)", report)
    )
    print(json.dumps(report["rows"], indent=2))


if __name__ == "__main__":
    main()
