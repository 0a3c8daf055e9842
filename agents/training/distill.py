"""``python -m agents.distill``: distil a rollout planner into a fast policy
(:class:`agents.policies.distilled.DistilledPlanner`).

Round 0 plays the planner (``planner:fitted``, or ``planner:true`` where the shop's ground truth
is known) for ``sessions`` sessions in the world it models and records, at every decision, each
candidate slate's estimated gain over the base's (the mean over its futures) with the rows of
:func:`~agents.policies.distilled.candidate_design`. A gradient-boosted regressor
(scikit-learn's ``HistGradientBoostingRegressor``) learns gain from the rows. Each later round is
DAgger (Ross et al., AISTATS 2011): the distilled policy of the round before plays, the planner
labels the states *it* reaches, and the regressor is refitted on every label so far. Last, the
distilled policy and its base play the same ``eval_episodes`` sessions (seeds disjoint from the
labels'), and ``metrics.json`` holds the paired difference.

The run folder: ``scorer.pkl`` (the regressor), ``labels.npz`` (every row and label, to refit
without the planner), ``metrics.json`` and last ``distilled.json`` (the record
:func:`~agents.policies.distilled.load_distilled` reads). ``--policy FOLDER`` plays it wherever
a policy is taken (``agents.evaluate``, the benchmarks).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

import envs
from agents.evaluation.load import make_planner
from agents.evaluation.paired import paired_difference
from agents.evaluation.sessions import PARALLEL_SESSIONS, run_sessions
from agents.policies.distilled import (
    DISTILLED_RUN_FILES,
    LABELS_FILE,
    METRICS_FILE,
    DistilledPlanner,
    candidate_design,
    save_scorer,
    write_record,
)
from agents.policies.planner import CANDIDATE_KINDS, MODELS, PlannerConfig, RolloutPlanner
from agents.training.run_folder import own_run_folder
from envs.config import MAX_STEPS, EnvConfig
from envs.core import SessionCore
from envs.world import data_source
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import atomic_path, check_output_folder, input_files, write_text_atomic

MAX_SESSIONS = 100_000
"""Most labelled sessions per round (each decision keeps a row per candidate)."""


@dataclass(frozen=True)
class DistillConfig:
    """One distillation (the flags of ``python -m agents.distill``)."""

    out: str = "runs/distill"
    """The run folder (one run per folder: another run's files are refused without --overwrite)."""
    env: str = "ecommerce-v0"
    """Registered env id whose sessions are labelled and played."""
    data: str = ""
    """Logs the simulator is fitted on: a dataset name or a folder of your own logs; empty = the env's."""
    model: str = "fitted"
    """The planner's model, and the world its labels are made in: fitted (the simulator fitted to the
    logs: what any logs allow) or true (the shop's ground truth, where one is known)."""
    sessions: int = 512
    """Sessions labelled per round."""
    rounds: int = 2
    """Rounds of labelling: 1 labels the planner's own states; each further round the states the
    distilled policy of the round before reaches (DAgger)."""
    threshold: float = 0.0
    """The predicted gain (reward per session) a deviation from the base's slate must clear."""
    seed: int = 5000
    """Seed of the labelled sessions (round r plays the slot seeds from seed + 32 r: each of the 32
    parallel sessions draws from its own stream, so rounds meet other users) and of the regressor."""
    eval_episodes: int = 500
    """Sessions of the paired evaluation against the base policy (0: none)."""
    eval_seed: int = 70000
    """Seed of the evaluation sessions (its 32 slot streams must not be the labelling's)."""
    fairness_lambda: float = 0.0
    """Weight of the fairness penalty in the reward the planner maximises and the evaluation counts."""
    max_steps: int | None = None
    """Session cap of the labelled and evaluated sessions (default: the env's, the logs' cap). The
    distilled policy reads how far its session has gone, so it is played at this cap
    (``agents.evaluate`` takes it from the run)."""
    max_iter: int = 300
    """Most boosting iterations of the regressor (scikit-learn's early stopping ends it sooner
    when the score on a tenth of the labels, held out, stops improving)."""
    learning_rate: float = 0.05
    """The regressor's learning rate."""
    max_leaf_nodes: int = 31
    """Leaves per tree of the regressor."""
    l2_regularization: float = 1.0
    """L2 penalty on the regressor's leaf values."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    """The planner that labels (``--planner-...``): its base and candidates are the distilled policy's."""

    def __post_init__(self) -> None:
        envs.env_data(self.env)  # a clear error for an unknown id
        check_seed("--seed", self.seed)
        check_seed("--eval-seed", self.eval_seed)
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {list(MODELS)}, got {self.model!r}")
        if not 1 <= self.sessions <= MAX_SESSIONS:
            raise ConfigError(f"--sessions must lie in [1, {MAX_SESSIONS:,}], got {self.sessions}")
        if not 1 <= self.rounds <= 20:
            raise ConfigError(f"--rounds must lie in [1, 20], got {self.rounds}")
        if not 0 <= self.eval_episodes <= MAX_SESSIONS:
            raise ConfigError(f"--eval-episodes must lie in [0, {MAX_SESSIONS:,}], got {self.eval_episodes}")
        last = self.seed + self.rounds * PARALLEL_SESSIONS
        if self.eval_episodes and self.seed - PARALLEL_SESSIONS < self.eval_seed < last:
            raise ConfigError(
                f"--eval-seed {self.eval_seed}: its sessions' streams ({self.eval_seed} to "
                f"{self.eval_seed + PARALLEL_SESSIONS - 1}) overlap the labelling's ({self.seed} to {last - 1}): "
                "evaluate on other sessions"
            )
        if not (np.isfinite(self.threshold) and self.threshold >= 0):
            raise ConfigError(f"--threshold must be a number >= 0, got {self.threshold}")
        if not (np.isfinite(self.fairness_lambda) and self.fairness_lambda >= 0):
            raise ConfigError(f"--fairness-lambda must be >= 0, got {self.fairness_lambda}")
        if self.max_steps is not None and not 1 <= self.max_steps <= MAX_STEPS:
            raise ConfigError(f"--max-steps must lie in [1, {MAX_STEPS:,}], got {self.max_steps}")
        if self.max_iter < 1 or self.max_leaf_nodes < 2:
            raise ConfigError("--max-iter must be >= 1 and --max-leaf-nodes >= 2")
        if not (0 < self.learning_rate <= 1 and self.l2_regularization >= 0):
            raise ConfigError("--learning-rate must lie in (0, 1] and --l2-regularization be >= 0")
        if self.planner.ensemble and self.model != "fitted":
            raise ConfigError("--planner-ensemble plans in fits of the logs: it needs --model fitted")
        if self.planner.true_parts:
            raise ConfigError(
                "--planner-true-parts is agents.evaluate's instrument (which of the fit's errors cost the "
                "planner); a distilled policy never learns from parts of the truth"
            )

    @property
    def options(self) -> EnvConfig:
        """The env whose sessions are labelled: the world the planner models."""
        return EnvConfig(
            **{
                **envs.env_options(self.env),
                "data": self.data or envs.env_data(self.env),
                "simulator": self.model,
                "fairness_lambda": self.fairness_lambda,
                **({} if self.max_steps is None else {"max_steps": self.max_steps}),
            }
        )


class Labeller:
    """Plays ``planner`` (or ``learner``, when given: DAgger) and records the planner's estimated
    gain of every candidate at every decision, with the rows the distilled policy reads."""

    def __init__(self, planner: RolloutPlanner, learner: DistilledPlanner | None) -> None:
        self.planner, self.learner = planner, learner
        self.rows: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.core: SessionCore | None = None

    @property
    def action_mode(self) -> str:
        """Slates, as the planner's and the distilled policy's."""
        return "scores"

    def bind(self, core: SessionCore) -> None:
        """Bind the planner (and the learner) to the env's sessions."""
        self.core = core
        self.planner.bind(core)
        if self.learner is not None:
            self.learner.bind(core)

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """The planner's decision, its estimates recorded; the learner's slate when there is one."""
        assert self.core is not None
        action = self.planner.act(observation, rng)
        slates, gains = self.planner.last_slates, self.planner.last_gains
        assert slates is not None and gains is not None
        x = candidate_design(observation, slates, self.core.candidate_topics)
        self.rows.append(x.reshape(-1, x.shape[2]).astype(np.float32))
        self.labels.append(gains.reshape(-1).astype(np.float32))
        if self.learner is None:
            return action
        return self.learner.play(
            observation, slates, self.core.candidate_topics, self.core.config.n_candidates
        )


def fit_scorer(x: np.ndarray, y: np.ndarray, config: DistillConfig) -> HistGradientBoostingRegressor:
    """The regressor of gain on the rows (non-finite labels left out), seeded by ``config.seed``."""
    keep = np.isfinite(y)
    if not keep.any():
        raise ConfigError("the planner labelled no decision (every session ended before its first step?)")
    scorer = HistGradientBoostingRegressor(
        max_iter=config.max_iter, learning_rate=config.learning_rate, max_leaf_nodes=config.max_leaf_nodes,
        l2_regularization=config.l2_regularization, random_state=config.seed,
    )  # fmt: skip
    scorer.fit(x[keep], y[keep])
    return scorer


@dataclass
class Distillation:
    """What :func:`learn` returns: the distilled policy and everything it was fitted on."""

    policy: DistilledPlanner
    """The distilled policy of the last round."""
    rows: np.ndarray
    """``(R, D)`` float32: every labelled candidate's row (:func:`candidate_design`)."""
    labels: np.ndarray
    """``(R,)`` float32: the planner's estimated gain of each."""
    rounds: np.ndarray
    """``(R,)`` int16: the round each label comes from."""
    history: list[dict[str, Any]]
    """Per round: who played, decisions and labels, deviation rates, seconds so far."""


def learn(config: DistillConfig, progress: bool = True) -> Distillation:
    """Label and fit, round by round (the module docstring); writes nothing."""
    env = config.options
    started = time.perf_counter()
    planner = make_planner(f"planner:{config.model}", env, config.planner)
    learner: DistilledPlanner | None = None
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    rounds: list[np.ndarray] = []
    history: list[dict[str, Any]] = []
    for r in range(config.rounds):
        labeller = Labeller(planner, learner)
        planner.decisions = planner.deviations = 0
        run_sessions(labeller, env, config.sessions, config.seed + r * PARALLEL_SESSIONS, progress=progress)
        x, y = np.concatenate(labeller.rows), np.concatenate(labeller.labels)
        rows.append(x)
        labels.append(y)
        rounds.append(np.full(len(y), r, dtype=np.int16))
        scorer = fit_scorer(np.concatenate(rows), np.concatenate(labels), config)
        played_by = "planner" if learner is None else "distilled"
        learner_rate = None if learner is None else learner.report()["deviation_rate"]
        learner = DistilledPlanner(planner.base, config.planner, scorer, config.threshold,
                                   name=f"distilled:{config.model}",
                                   env_config=env)  # fmt: skip
        history.append({
            "round": r, "played_by": played_by, "decisions": planner.decisions,
            "labels": len(y), "planner_deviation_rate": planner.report()["deviation_rate"],
            "played_deviation_rate": learner_rate, "seconds": time.perf_counter() - started,
        })  # fmt: skip
        if progress:
            print(
                f"round {r}: {planner.decisions} decisions by the {played_by} policy labelled "
                f"({len(y)} candidate gains); {history[-1]['seconds']:.0f} s"
            )
    assert learner is not None
    return Distillation(
        learner, np.concatenate(rows), np.concatenate(labels), np.concatenate(rounds), history
    )


def distill(config: DistillConfig, overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Distil, evaluate and write the run folder (module docstring); return the metrics."""
    env = config.options
    source = data_source(env)  # a bad name or folder is one clear error before any work
    if config.model == "true" and source.truth is None:
        raise ConfigError(
            f"--model true plans in the shop's ground truth, and --data {env.data!r} has none: distil "
            "planner:fitted (--model fitted)"
        )
    folder = Path(config.out)
    with own_run_folder(folder, resume=False, overwrite=overwrite, resumable=False) as run_id:
        started = time.perf_counter()
        result = learn(config, progress)
        digest = save_scorer(folder, result.policy.scorer)
        with atomic_path(folder / LABELS_FILE) as tmp:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, x=result.rows, y=result.labels, round=result.rounds)
            tmp.write_bytes(buffer.getvalue())
        evaluation = evaluate_against_base(result.policy, env, config) if config.eval_episodes else None
        metrics = {
            "run_id": run_id, "rounds": result.history, "evaluation": evaluation,
            "seconds": time.perf_counter() - started,
        }  # fmt: skip
        write_text_atomic(folder / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
        write_record(folder, {
            "run_id": run_id, "env": config.env, "env_options": asdict(env), "planner_model": config.model,
            "planner": asdict(config.planner), "threshold": config.threshold, "scorer_sha256": digest,
            "config": {k: v for k, v in asdict(config).items() if k != "planner"},
        })  # fmt: skip
        return metrics


def evaluate_against_base(policy: DistilledPlanner, env: EnvConfig, config: DistillConfig) -> dict[str, Any]:
    """The distilled policy and its base on the same ``eval_episodes`` sessions (paired)."""
    policy.decisions = policy.deviations = 0
    played = run_sessions(policy, env, config.eval_episodes, config.eval_seed, progress=False)
    base = run_sessions(policy.base, env, config.eval_episodes, config.eval_seed, progress=False)
    diff = paired_difference(played, base)
    return {
        "world": env.simulator, "episodes": config.eval_episodes, "seed": config.eval_seed,
        "distilled": float(played.returns.mean()), "base": float(base.returns.mean()),
        "base_policy": config.planner.base, "paired": diff.as_json(), **policy.report(),
    }  # fmt: skip


def distill_parser() -> ArgumentParser:
    """The flags of ``python -m agents.distill``: DistillConfig's, the planner's (``--planner-...``)."""
    parser = ArgumentParser(prog="python -m agents.distill", description=(__doc__ or "").splitlines()[0])
    add_config_arguments(parser, DistillConfig, choices={"env": envs.ENV_IDS, "model": MODELS})
    planner = parser.add_argument_group("planner", "options of the planner that labels (PlannerConfig)")
    add_config_arguments(
        planner, PlannerConfig, dest_prefix="planner_", flag_prefix="planner-",
        choices={"candidates": CANDIDATE_KINDS},
    )  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the run --out holds (default: refuse)"
    )
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Parse the flags, check the folder, distil and print the paired evaluation."""
    args = distill_parser().parse_args(argv)
    config = DistillConfig(
        **config_kwargs(args, DistillConfig),
        planner=PlannerConfig(**config_kwargs(args, PlannerConfig, dest_prefix="planner_")),
    )
    check_output_folder(
        config.out, "--out", inputs=input_files(config.data),
        writes=DISTILLED_RUN_FILES,
    )  # fmt: skip
    metrics = distill(config, overwrite=args.overwrite)
    evaluation = metrics["evaluation"]
    if evaluation:
        p = evaluation["paired"]
        print(
            f"distilled:{config.model} {evaluation['distilled']:.2f} vs {evaluation['base_policy']} "
            f"{evaluation['base']:.2f} per session, paired {p['mean']:+.2f} [{p['ci95'][0]:+.2f}, "
            f"{p['ci95'][1]:+.2f}] over {evaluation['episodes']} sessions in the {evaluation['world']} world "
            f"(seed {evaluation['seed']}); {evaluation['deviation_rate']:.1%} of decisions left the base"
        )
    print(f"wrote {config.out}")
