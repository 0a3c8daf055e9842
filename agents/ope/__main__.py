"""``python -m agents.ope --policy NAME|RUN_DIR --data shop|obd:POLICY/CAMPAIGN|FOLDER --json FILE``:
every estimator with a bootstrap CI on logged data, next to the ground truth where it is known
(the shop's and OBD's logs); on your own logs, with propensities estimated from the logs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.ope.estimators import BANDIT_ESTIMATORS, SESSION_ESTIMATORS, SLATE_ESTIMATORS
from agents.ope.obd import OBD_POLICIES, evaluate_obd
from agents.ope.own import evaluate_own
from agents.ope.shop import evaluate_shop
from agents.ope.targets import CATALOG_POLICIES, SHOP_POLICIES
from agents.ope.truth import TRUTH_SESSIONS
from agents.policies.agent import run_files
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import check_output_file, input_files, write_text_atomic
from simulators.datasets import resolve_data


def format_table(report: dict[str, Any]) -> str:
    """Markdown tables of the estimates (the slate or bandit form, then the first slot and the
    sessions where the report has them), each next to its ground truth where it is known; the
    estimators that cannot apply are listed as not available, with why."""
    lines = [f"OPE of {report['policy']} on {report['logs']} (n={report['n']}, {report['reward']})"]
    if "evaluated_on" in report:
        lines.append(f"estimated on {report['evaluated_on']}")
    sections = [("", report), ("first slot", report.get("first_slot")), ("sessions", report.get("sessions"))]
    warnings: list[str] = []
    for title, section in sections:
        if not section or not (section["estimates"] or section.get("unavailable")):
            continue  # --estimators asked for none of this section's
        lines += ["", f"{title}:" if title else "", "| estimator | value | 95% CI | ESS | propensities |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, entry in section["estimates"].items():
            lo, hi = entry["ci95"]
            how = entry.get("propensities", "none (model only)" if name == "dm" else "logged")
            low = " (low)" if "warning" in entry else ""
            lines.append(
                f"| {name} | {entry['value']:.5f} | [{lo:.5f}, {hi:.5f}] | {entry['ess']:.0f}{low} | {how} |"
            )
            if "warning" in entry:
                warnings.append(f"{title or 'slates'} {name}: {entry['warning']}")
        for name, why in section.get("unavailable", {}).items():
            lines.append(f"| {name} | not available | | | |")
            warnings.append(f"{title or 'slates'} {name} not available: {why}")
        if section.get("ground_truth") is not None:
            lines.append(f"| ground truth | {section['ground_truth']:.5f} | | | |")
    if report.get("ground_truth") is None:
        lines.append(f"\nno ground truth: {report.get('ground_truth_why', 'unknown for these logs')}")
    if "support" in report:
        support = report["support"]
        lines.append(
            f"target mass on {support['actions']} the logs never show: {support['unsupported_target_mass']:.4f}"
        )
    lines += [f"note: {note}" for note in report.get("data_notes", [])]
    lines += [f"warning: {warning}" for warning in warnings]
    return "\n".join(lines)


def logs_kind(data: str) -> str:
    """``obd`` (bandit rounds of two logging policies), ``shop`` (logs with a known ground truth)
    or ``own`` (any other logs), as the logs' own loader tells (loading them, once per process)."""
    source = resolve_data(data)
    if source.bandit_rounds:
        return "obd"
    return "shop" if source.truth is not None else "own"


MAX_BOOTSTRAP = 100_000
"""Most bootstrap resamples (each holds a resampled copy of the estimator's inputs' weights)."""
MAX_TRUTH_SESSIONS = 1_000_000
"""Most sessions of the ground truth's log and on-policy run."""
MAX_FOLDS = 50
"""More cross-fitting folds than this would only slow the fit (each fold refits the model)."""


@dataclass(frozen=True)
class OPEConfig:
    """One off-policy evaluation (the flags of ``python -m agents.ope``)."""

    policy: str
    """The target: a shop policy (logging, near-logging, random, popularity, anti-popularity, ctr),
    a trained agent's or a distilled planner's run folder, or on OBD logs obd-bts / obd-random."""
    data: str
    """The logs (load_logs): shop, a shop folder, obd:POLICY/CAMPAIGN (e.g. obd:random/all), or a folder
    of your own logs (propensities estimated from them when they carry none)."""
    json: str
    """Where to write the estimates (JSON)."""
    estimators: str = ""
    """Comma-separated estimator names; empty = every one that applies."""
    bootstrap: int = 100
    """Bootstrap resamples behind each 95% interval."""
    folds: int = 3
    """Cross-fitting folds of the reward model."""
    seed: int = 0
    """Seed of the folds, the bootstrap and the Monte Carlo marginals."""
    truth_sessions: int = TRUTH_SESSIONS
    """Shop: sessions of the ground truth's independent log and of its on-policy run."""

    def __post_init__(self) -> None:
        check_seed("--seed", self.seed)
        if not 0 <= self.bootstrap <= MAX_BOOTSTRAP:
            raise ConfigError(f"--bootstrap must lie in [0, {MAX_BOOTSTRAP:,}], got {self.bootstrap}")
        if not 2 <= self.folds <= MAX_FOLDS:
            raise ConfigError(f"--folds must lie in [2, {MAX_FOLDS}], got {self.folds}")
        if not 100 <= self.truth_sessions <= MAX_TRUTH_SESSIONS:
            raise ConfigError(
                f"--truth-sessions must lie in [100, {MAX_TRUTH_SESSIONS:,}], got {self.truth_sessions}"
            )
        kind = logs_kind(self.data)  # the logs load here: a bad name or folder is one clear error
        if kind == "obd" and self.policy not in OBD_POLICIES:
            raise ConfigError(f"OBD logs take --policy {' or '.join(OBD_POLICIES)}, got {self.policy!r}")
        named = SHOP_POLICIES if kind == "shop" else CATALOG_POLICIES
        if kind != "obd" and self.policy not in named and not Path(self.policy).exists():
            raise ConfigError(
                f"--policy {self.policy!r}: on {'shop' if kind == 'shop' else 'your own'} logs the target is one of "
                f"{list(named)} or a run folder of agents.train or agents.distill (obd-bts and obd-random are for OBD logs)"
            )
        known = {*BANDIT_ESTIMATORS, *SLATE_ESTIMATORS, *SESSION_ESTIMATORS}
        if unknown := sorted(set(self.wanted or ()) - known):
            raise ConfigError(f"unknown estimator(s) {unknown}; known: {sorted(known)}")

    @property
    def wanted(self) -> list[str] | None:
        """The estimators asked for (``None``: all)."""
        return [name.strip().lower() for name in self.estimators.split(",") if name.strip()] or None


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Estimate a policy's value on logged data; write the JSON."""
    parser = ArgumentParser(prog="python -m agents.ope", description="Off-policy evaluation on logged data.")
    add_config_arguments(parser, OPEConfig, flags={"data": ("--data", "--logs")})
    given = config_kwargs(parser.parse_args(argv), OPEConfig)
    policy = Path(given["policy"])  # the output is checked before the logs load
    runs = run_files(policy.parent if policy.is_file() else policy) if policy.exists() else []
    check_output_file(given["json"], "--json", inputs=[*runs, *input_files(given["data"])])
    config = OPEConfig(**given)
    kind = logs_kind(config.data)
    if kind == "obd":
        report = evaluate_obd(
            config.data, config.policy, config.wanted, config.bootstrap, config.folds, config.seed
        )
    elif kind == "shop":
        report = evaluate_shop(
            config.data, config.policy, config.wanted, config.bootstrap, config.folds, config.seed,
            config.truth_sessions,
        )  # fmt: skip
    else:
        report = evaluate_own(
            config.data, config.policy, config.wanted, config.bootstrap, config.folds, config.seed
        )
    write_text_atomic(config.json, json.dumps(report, indent=2) + "\n")
    print(format_table(report))


if __name__ == "__main__":
    main()
