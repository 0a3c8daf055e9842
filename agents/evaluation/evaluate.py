"""Online evaluation of a policy in a simulator: ``python -m agents.evaluate --policy NAME|RUN_DIR
--env ecommerce-v0 [--data NAME|FOLDER] --episodes N --seed S --json FILE`` writes one metrics object
(:func:`agents.sessions.metrics`; docs/DESIGN.md lists its keys).

A policy is a Plackett-Luce baseline (``random``, ``popularity``, ``ctr``), a static re-ranker
tuned in the fitted simulator (``best-fixed``, ``tuned-weights``, ``mmr``), a fair re-ranker
(``fair-topk``, ``exposure-lp``, ``fairco``: :mod:`agents.fair_baselines`) or a trained agent's
run folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import envs
from agents.evaluation.load import POLICY_CHOICES, load_policy, policy_env_options
from agents.evaluation.sessions import metrics, run_sessions
from envs.config import EnvConfig
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import check_output_file, write_text_atomic
from simulators.datasets import load_logs


@dataclass(frozen=True)
class EvaluateConfig:
    """One online evaluation (the flags of ``python -m agents.evaluate``)."""

    policy: str
    """random, popularity, ctr, best-fixed, tuned-weights, mmr, fair-topk, exposure-lp, fairco (at its
    default knob), or a trained agent's run folder."""
    json: str
    """Where to write the metrics object (JSON)."""
    env: str = "ecommerce-v0"
    """Registered env id (ecommerce-v0, movielens-v0)."""
    episodes: int = 200
    """Sessions to play."""
    seed: int = 0
    """Seed of the evaluation users (every policy meets the same ones)."""
    fairness_lambda: float | None = None
    """Weight of the fairness penalty in the evaluation reward; none = a trained agent's own
    (what it trained with), 0 for a named policy."""
    data: str = ""
    """Logs the simulator is fitted on: a dataset name or a folder of your own logs (load_logs);
    empty = a trained agent's own, else the env's (shop for ecommerce-v0)."""

    def __post_init__(self) -> None:
        check_seed("--seed", self.seed)
        envs.env_data(self.env)  # a clear error for an unknown id
        if self.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {self.episodes}")
        if self.fairness_lambda is not None and not self.fairness_lambda >= 0:
            raise ConfigError(f"--fairness-lambda must be >= 0, got {self.fairness_lambda}")


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse the contract's flags, evaluate, write the JSON."""
    parser = ArgumentParser(prog="python -m agents.evaluate", description=__doc__.splitlines()[0])
    add_config_arguments(parser, EvaluateConfig)
    config = EvaluateConfig(**config_kwargs(parser.parse_args(argv), EvaluateConfig))
    check_output_file(config.json, "--json")
    agent = None if config.policy in POLICY_CHOICES else load_policy(config.policy)
    own = None if agent is None else getattr(agent, "env_options", {}).get("data")
    data = config.data or own or envs.env_data(config.env)  # a trained agent: the logs it trained on
    load_logs(data)  # a bad name or folder is one clear error before any work
    own_lambda = (
        0.0 if agent is None else float(getattr(agent, "env_options", {}).get("fairness_lambda", 0.0))
    )
    fairness_lambda = own_lambda if config.fairness_lambda is None else config.fairness_lambda
    env = EnvConfig(data=data, fairness_lambda=fairness_lambda)
    policy = agent or load_policy(config.policy, env=env)
    options = {**policy_env_options(policy), "fairness_lambda": fairness_lambda, "data": data}
    result = run_sessions(policy, EnvConfig(**options), config.episodes, config.seed)
    report = metrics(result, config.env, config.policy, config.seed)
    write_text_atomic(config.json, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
