"""Online evaluation in a simulator: ``python -m agents.evaluate --policy NAME|RUN_DIR [NAME|RUN_DIR
...] --json FILE [--simulator fitted|true]`` plays each policy on the same sessions (the same users
with the same session keys), prints a table with each policy's paired difference to the reference
(the best static policy evaluated, unless ``--reference`` names one) and writes the JSON: one
policy's metrics object (:func:`agents.evaluation.sessions.metrics`), or for several the metrics of
each and their paired differences (docs/DESIGN.md lists the keys).

A policy is a Plackett-Luce baseline (``random``, ``popularity``, ``ctr``), a static re-ranker
tuned in the fitted simulator (``best-fixed``, ``tuned-weights``, ``mmr``), a fair re-ranker
(``fair-topk``, ``exposure-lp``, ``fairco``), a rollout planner (``planner:true``, the ceiling where
the shop's ground truth is known; ``planner:fitted``, planning in the fitted simulator) or a
run folder of a trained agent (``agents.train``) or a distilled planner (``agents.distill``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import envs
from agents.evaluation.load import POLICY_CHOICES, STATIC_NAMES, load_policy, policy_env_options
from agents.evaluation.paired import paired_cell, paired_difference, session_covariates
from agents.evaluation.report import protected_cell
from agents.evaluation.sessions import EvaluationResult, metrics, run_sessions
from agents.policies.agent import run_files
from agents.policies.distilled import DistilledPlanner, is_distilled_run
from agents.policies.planner import CANDIDATE_KINDS, PlannerConfig, RolloutPlanner
from agents.policies.protocol import Policy
from envs.config import SIMULATORS, EnvConfig, known_options
from envs.world import build_world, data_source
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import check_output_file, input_files, write_text_atomic

MAX_EPISODES = 1_000_000
"""Most sessions per policy (each keeps a row of results)."""


@dataclass(frozen=True)
class EvaluateConfig:
    """One online evaluation (the flags of ``python -m agents.evaluate``)."""

    policy: tuple[str, ...]
    """One or more of random, popularity, ctr, best-fixed, tuned-weights, mmr, fair-topk, exposure-lp,
    fairco (at its default knob), planner:true, planner:fitted, or a run folder of agents.train or agents.distill."""
    json: str
    """Where to write the results (JSON)."""
    env: str = "ecommerce-v0"
    """Registered env id (ecommerce-v0, movielens-v0, ecommerce-retention-v0, movielens-retention-v0)."""
    simulator: str = "fitted"
    """Where the sessions are played: the simulator fitted to the logs, or the shop's ground truth."""
    episodes: int = 500
    """Sessions per policy (the same sessions for every policy)."""
    seed: int = 0
    """Seed of the evaluation users and their sessions."""
    fairness_lambda: float | None = None
    """Weight of the fairness penalty in the evaluation reward (one for every policy); none = the
    first trained agent's own (what it trained with), else 0."""
    data: str = ""
    """Logs the simulator is fitted on: a dataset name or a folder of your own logs (load_logs);
    empty = the first trained agent's own, else the env's (shop for ecommerce-v0)."""
    reference: str = ""
    """The policy every other is compared with, paired on the same sessions; empty = the best static
    policy evaluated (by mean return), else the first."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """The rollout planners' options (``--planner-...``)."""

    def __post_init__(self) -> None:
        check_seed("--seed", self.seed)
        envs.env_data(self.env)  # a clear error for an unknown id
        if not self.policy:
            raise ConfigError("--policy needs at least one policy")
        if len(set(self.policy)) != len(self.policy):
            raise ConfigError(f"--policy names a policy twice: {list(self.policy)}")
        if not 1 <= self.episodes <= MAX_EPISODES:
            raise ConfigError(f"--episodes must lie in [1, {MAX_EPISODES:,}], got {self.episodes}")
        if self.fairness_lambda is not None and not self.fairness_lambda >= 0:
            raise ConfigError(f"--fairness-lambda must be >= 0, got {self.fairness_lambda}")
        if self.simulator not in SIMULATORS:
            raise ConfigError(f"--simulator must be one of {list(SIMULATORS)}, got {self.simulator!r}")
        if self.reference and self.reference not in self.policy:
            raise ConfigError(f"--reference {self.reference!r} is not one of the policies evaluated")
        if self.planner.true_parts and "planner:fitted" not in self.policy:
            raise ConfigError(
                "--planner-true-parts changes planner:fitted's model: evaluate planner:fitted with it"
            )
        for option, value in (
            ("--planner-ensemble", self.planner.ensemble),
            ("--planner-true-parts", self.planner.true_parts),
        ):
            if value and "planner:true" in self.policy:
                raise ConfigError(
                    f"{option} changes the fitted model, so it applies to planner:fitted only: "
                    "evaluate planner:true in a call without it"
                )


def session_cap(env: str, agents: Mapping[str, object]) -> dict[str, int]:
    """``{"max_steps": cap}``: the session cap every policy plays at, the trained ``agents``' own
    (each reads it, and a paired comparison needs the same sessions for all), else the ``env``'s
    (``{}``); :class:`ConfigError` when the agents were trained at different caps."""
    default = EnvConfig(**envs.env_options(env)).max_steps
    caps = {
        spec: int(getattr(agent, "env_options", {}).get("max_steps", default))
        for spec, agent in agents.items()
    }
    if len(set(caps.values())) > 1:
        listed = ", ".join(f"{spec} at {cap}" for spec, cap in caps.items())
        raise ConfigError(
            f"--policy: the agents were trained with sessions capped at different lengths ({listed}); "
            "every policy of one call plays the same sessions: evaluate them in separate calls"
        )
    return {"max_steps": next(iter(caps.values()))} if caps else {}


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Play every policy of ``config`` on the same sessions: the report (see the module docstring)."""
    agents = {spec: load_policy(spec, device="cpu") for spec in config.policy if spec not in POLICY_CHOICES}
    cap = session_cap(config.env, agents)
    first_agent = next(iter(agents.values()), None)
    own = dict(getattr(first_agent, "env_options", {}))
    data = config.data or own.get("data") or envs.env_data(config.env)
    fairness_lambda = (
        config.fairness_lambda
        if config.fairness_lambda is not None
        else float(own.get("fairness_lambda", 0.0))
    )
    env = EnvConfig(
        **{
            **envs.env_options(config.env),
            "data": data,
            "fairness_lambda": fairness_lambda,
            "simulator": config.simulator,
            **cap,
        }
    )
    logs = data_source(env).logs  # a bad name or folder is one clear error before any work
    for spec, agent in agents.items():
        trained_on = data_source(EnvConfig(**known_options(agent.env_options))).logs  # type: ignore[attr-defined]
        if not trained_on.same_catalog(logs):
            raise ConfigError(
                f"--policy {spec}: the agent trained on {agent.env_options.get('data')!r}, whose users and items "  # type: ignore[attr-defined]
                f"are not those of --data {data!r}: its actions would name other users and items"
            )
    results: dict[str, EvaluationResult] = {}
    reports: dict[str, dict[str, Any]] = {}
    # Every policy built before any is played: a policy that cannot be built fails the call at once.
    policies: dict[str, Policy] = {
        spec: (None if is_distilled_run(spec) else agents.get(spec))  # a distilled run's base: tuned for env
        or load_policy(spec, env=env, planner=config.planner)
        for spec in config.policy
    }
    for spec, policy in policies.items():
        options = {**envs.env_options(config.env), **known_options(policy_env_options(policy)), "data": data}
        played = EnvConfig(
            **{**options, "fairness_lambda": fairness_lambda, "simulator": config.simulator, **cap}
        )
        results[spec] = run_sessions(policy, played, config.episodes, config.seed)
        reports[spec] = metrics(results[spec], config.env, spec, config.seed) | {
            "simulator": config.simulator
        }
        if isinstance(policy, RolloutPlanner):
            reports[spec]["planner"] = policy.report()
        if isinstance(policy, DistilledPlanner):
            reports[spec]["distilled"] = policy.report()
    if len(config.policy) == 1:
        return reports[config.policy[0]]
    reference = config.reference or best_static(reports)
    world = build_world(env)
    first = results[reference]
    covariates = session_covariates(world, first.users) if first.users is not None else None
    paired = {
        spec: paired_difference(results[spec], first, covariates).as_json()
        for spec in config.policy
        if spec != reference
    }
    return {
        "env": config.env, "simulator": config.simulator, "seed": config.seed, "episodes": config.episodes,
        "fairness_lambda": fairness_lambda, "reference": reference, "policies": reports, "paired": paired,
    }  # fmt: skip


def run_files_of(specs: list[str]) -> list[Any]:
    """The files of the run folders (or ``model.zip`` files) named by ``specs``."""
    files = []
    for spec in specs:
        path = Path(spec)
        files += run_files(path.parent if path.is_file() else path)
    return files


def best_static(reports: dict[str, dict[str, Any]]) -> str:
    """The static policy with the highest mean return among ``reports`` (else the first policy)."""
    static = [name for name in reports if name in STATIC_NAMES]
    if not static:
        return next(iter(reports))
    return max(static, key=lambda name: reports[name]["return_mean"])


def summary(report: dict[str, Any]) -> str:
    """The printed table: each policy's return, its paired difference to the reference, clicks,
    session length and protected share against its target."""
    policies = report.get("policies") or {report["policy"]: report}
    paired, reference = report.get("paired", {}), report.get("reference")
    head = (
        f"| policy | return [95% CI] | vs {reference} (paired) | clicks | length | protected share / target |"
    )
    lines = [head, "|---|---|---|---|---|---|"]
    for name, m in policies.items():
        lo, hi = m["return_ci95"]
        vs = paired_cell(paired.get(name), reference=name == reference)
        lines.append(
            f"| {name} | {m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}] | {vs} | {m['clicks_per_session']:.2f} | "
            f"{m['session_length']:.2f} | {protected_cell(m)} |"
        )
    first = next(iter(policies.values()))
    lines.append(
        f"\n{first['episodes']} sessions per policy, the same users and session keys for each, in the "
        f"{first.get('simulator', 'fitted')} simulator (seed {first['seed']})."
    )
    for name, m in policies.items():
        if "planner" in m:
            p = m["planner"]
            rate = f"{p['decisions_per_second']:.0f}" if p["decisions_per_second"] else "-"
            lines.append(
                f"{name}: {p['decisions']} decisions, {100 * p['deviation_rate']:.1f}% off its base policy, "
                f"{rate} decisions/s ({p['rollouts']} futures per candidate, model: {p['model']})"
            )
        if "distilled" in m:
            d = m["distilled"]
            lines.append(
                f"{name}: a distilled planner, {d['decisions']} decisions, {100 * d['deviation_rate']:.1f}% off its "
                f"base policy (predicted gain above {d['threshold']:g})"
            )
    return "\n".join(lines)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse the flags, check the output path, evaluate, write the JSON and print the table."""
    parser = ArgumentParser(prog="python -m agents.evaluate", description=(__doc__ or "").splitlines()[0])
    add_config_arguments(parser, EvaluateConfig, choices={"simulator": SIMULATORS})
    planner = parser.add_argument_group(
        "planner", "options of planner:true and planner:fitted (PlannerConfig)"
    )
    add_config_arguments(
        planner, PlannerConfig, dest_prefix="planner_", flag_prefix="planner-",
        choices={"candidates": CANDIDATE_KINDS},
    )  # fmt: skip
    args = parser.parse_args(argv)
    config = EvaluateConfig(
        **config_kwargs(args, EvaluateConfig),
        planner=PlannerConfig(**config_kwargs(args, PlannerConfig, dest_prefix="planner_")),
    )
    runs = [spec for spec in config.policy if spec not in POLICY_CHOICES]
    check_output_file(config.json, "--json", inputs=[*run_files_of(runs), *input_files(config.data)])
    report = evaluate(config)
    write_text_atomic(config.json, json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {config.json}")


if __name__ == "__main__":
    main()
