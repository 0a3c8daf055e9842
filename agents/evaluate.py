"""Online evaluation of a policy in a simulator: ``python -m agents.evaluate --policy NAME|RUN_DIR
--env ecommerce-v0 --episodes N --seed S --json FILE`` writes one metrics object
(:func:`agents.sessions.metrics`; docs/DESIGN.md lists its keys).

A policy is a Plackett-Luce baseline (``random``, ``popularity``, ``ctr``), a static re-ranker
tuned in the fitted simulator (``best-fixed``, ``tuned-weights``, ``mmr``) or a trained agent's
run folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import envs
from agents.agent import TrainedAgent
from agents.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.sessions import Policy, metrics, run_sessions
from agents.tuning import load_or_tune
from envs.config import EnvConfig
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, write_text_atomic

POLICY_CHOICES = (*POLICY_NAMES, *RERANKER_NAMES)
"""Policies ``--policy`` takes by name (anything else is a run folder)."""


def load_policy(spec: str, device: str = "auto", env: EnvConfig | None = None) -> Policy:
    """A baseline by name (a re-ranker tuned for the world of ``env``, default options), or a
    trained agent's run folder (or its ``model.zip``)."""
    if spec in POLICY_NAMES:
        return make_baseline(spec)
    if spec in RERANKER_NAMES:
        return load_or_tune(spec, env or EnvConfig())
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"--policy {spec!r}: not one of {list(POLICY_CHOICES)} and no such file")
    return TrainedAgent.load(path, device)


def policy_env_options(policy: Policy) -> dict[str, Any]:
    """Env options a trained agent needs (its observation shapes depend on them)."""
    options = dict(getattr(policy, "env_options", {}))
    options.pop("data", None)
    return options


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse the contract's flags, evaluate, write the JSON."""
    parser = ArgumentParser(prog="python -m agents.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help=f"{' | '.join(POLICY_CHOICES)} | RUN_DIR")
    parser.add_argument("--env", required=True, help="registered env id, e.g. ecommerce-v0")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--fairness-lambda", type=float, default=0.0)
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json")
    env = EnvConfig(data=envs.env_data(args.env), fairness_lambda=args.fairness_lambda)
    policy = load_policy(args.policy, env=env)
    options = {**policy_env_options(policy), "fairness_lambda": args.fairness_lambda}
    result = run_sessions(policy, args.env, args.episodes, args.seed, **options)
    report = metrics(result, args.env, args.policy, args.seed)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
