"""``python -m agents.ope --policy NAME|RUN_DIR --logs shop|obd:POLICY/CAMPAIGN --json FILE``:
every estimator with a bootstrap CI on logged data, next to the ground truth where it is known."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from agents.ope.estimators import BANDIT_ESTIMATORS, SESSION_ESTIMATORS, SLATE_ESTIMATORS
from agents.ope.obd import evaluate_obd
from agents.ope.shop import evaluate_shop
from agents.ope.targets import SHOP_POLICIES
from agents.ope.truth import TRUTH_SESSIONS
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
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


MAX_FOLDS = 50
"""More cross-fitting folds than this would only slow the fit (each fold refits the model)."""


@dataclass(frozen=True)
class OPEConfig:
    """One off-policy evaluation (the flags of ``python -m agents.ope``)."""

    policy: str
    """The target: a shop policy (logging, near-logging, random, popularity, anti-popularity, ctr),
    a trained agent's run folder, or on OBD logs obd-bts / obd-random."""
    logs: str
    """The logs: shop, a shop folder, or obd:POLICY/CAMPAIGN (e.g. obd:random/all)."""
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
        if self.bootstrap < 0:
            raise ConfigError(f"--bootstrap must be >= 0, got {self.bootstrap}")
        if not 2 <= self.folds <= MAX_FOLDS:
            raise ConfigError(f"--folds must lie in [2, {MAX_FOLDS}], got {self.folds}")
        if self.truth_sessions < 100:
            raise ConfigError(f"--truth-sessions must be >= 100, got {self.truth_sessions}")
        on_obd = self.logs.startswith("obd") or (Path(self.logs) / "random" / "all").is_dir()
        on_shop = not on_obd and (self.logs.startswith("shop") or Path(self.logs).is_dir())
        if on_shop and self.policy not in SHOP_POLICIES and not Path(self.policy).exists():
            raise ConfigError(
                f"--policy {self.policy!r}: on shop logs the target is one of {list(SHOP_POLICIES)} or a "
                "trained agent's run folder (obd-bts and obd-random are for OBD logs)"
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
    add_config_arguments(parser, OPEConfig)
    config = OPEConfig(**config_kwargs(parser.parse_args(argv), OPEConfig))
    check_output_file(config.json, "--json")
    is_obd = config.logs.startswith("obd") or (Path(config.logs) / "random" / "all").is_dir()
    if is_obd:
        report = evaluate_obd(
            config.logs, config.policy, config.wanted, config.bootstrap, config.folds, config.seed
        )
    else:
        report = evaluate_shop(
            config.logs, config.policy, config.wanted, config.bootstrap, config.folds, config.seed,
            config.truth_sessions,
        )  # fmt: skip
    write_text_atomic(config.json, json.dumps(report, indent=2) + "\n")
    print(format_table(report))


if __name__ == "__main__":
    main()
