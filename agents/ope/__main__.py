"""``python -m agents.ope --policy NAME|RUN_DIR --logs shop|obd:POLICY/CAMPAIGN --json FILE``:
every estimator with a bootstrap CI on logged data, next to the ground truth where it is known."""

from __future__ import annotations

import json
from pathlib import Path

from agents.ope.estimators import BANDIT_ESTIMATORS, SESSION_ESTIMATORS, SLATE_ESTIMATORS
from agents.ope.obd import evaluate_obd
from agents.ope.shop import evaluate_shop
from agents.ope.truth import TRUTH_SESSIONS
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, write_text_atomic


def format_table(report: dict[str, object]) -> str:
    """Markdown table of the estimates (and the ground truth)."""
    lines = [f"OPE of {report['policy']} on {report['logs']} (n={report['n']}, {report['reward']})", "",
             "| estimator | value | 95% CI | ESS |", "|---|---|---|---|"]  # fmt: skip
    for name, entry in report["estimates"].items():  # type: ignore[attr-defined]
        lo, hi = entry["ci95"]
        lines.append(f"| {name} | {entry['value']:.5f} | [{lo:.5f}, {hi:.5f}] | {entry['ess']:.0f} |")
    if report.get("ground_truth") is not None:
        lines.append(f"| ground truth | {report['ground_truth']:.5f} | | |")
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Estimate a policy's value on logged data; write the JSON."""
    parser = ArgumentParser(prog="python -m agents.ope", description="Off-policy evaluation on logged data.")
    parser.add_argument(
        "--policy",
        required=True,
        help="random | popularity | ctr | logging | near-logging | anti-popularity | RUN_DIR | obd-bts | obd-random",
    )
    parser.add_argument(
        "--logs", required=True, help="shop | obd:POLICY/CAMPAIGN (e.g. obd:random/all) | PATH"
    )
    parser.add_argument("--estimators", default="", help="comma-separated names (default: all that apply)")
    parser.add_argument("--bootstrap", type=int, default=100, help="bootstrap resamples for the CIs")
    parser.add_argument("--folds", type=int, default=3, help="cross-fitting folds of the reward model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--truth-sessions", type=int, default=TRUTH_SESSIONS, help="shop: sessions behind the truth"
    )
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json")
    wanted = [name.strip().lower() for name in args.estimators.split(",") if name.strip()] or None
    known = {*BANDIT_ESTIMATORS, *SLATE_ESTIMATORS, *SESSION_ESTIMATORS}
    if wanted and (unknown := sorted(set(wanted) - known)):
        raise ConfigError(f"unknown estimator(s) {unknown}; known: {sorted(known)}")
    if args.bootstrap < 0 or args.folds < 2:
        raise ConfigError("--bootstrap must be >= 0 and --folds >= 2")
    is_obd = args.logs.startswith("obd") or (Path(args.logs) / "random" / "all").is_dir()
    if is_obd:
        report = evaluate_obd(args.logs, args.policy, wanted, args.bootstrap, args.folds, args.seed)
    else:
        if args.truth_sessions < 100:
            raise ConfigError("--truth-sessions must be >= 100")
        report = evaluate_shop(
            args.logs, args.policy, wanted, args.bootstrap, args.folds, args.seed, args.truth_sessions
        )
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(format_table(report))


if __name__ == "__main__":
    main()
