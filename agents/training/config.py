"""The configuration of a training run (``config.json`` of the run folder) and its CLI flags.

:class:`TrainConfig` nests the :class:`~envs.config.EnvConfig` of the env the agent trains and is
evaluated in; every flag of ``python -m agents.train`` is derived from the two dataclasses'
fields (:func:`parse_train_config`), their help from the fields' docstrings.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

import envs
from agents.evaluation.fairness_scale import FAIRNESS_PRICE, FairnessScale, priced_fairness
from agents.evaluation.tuning import TuningBudget
from agents.policies.distilled import is_distilled_run, planner_config, read_record
from agents.policies.planner import candidate_modes
from encoders.device import DEVICE_CHOICES
from envs.config import (
    ACTION_MODES,
    CANDIDATE_SOURCES,
    DISCRETE_MODES,
    OBS_MODES,
    SIMULATORS,
    EnvConfig,
    env_config,
)
from simulators.core.cli import ArgumentParser, add_config_arguments, config_kwargs
from simulators.core.errors import ConfigError, check_at_least_one, check_field_types, check_seed

ALGORITHM_NAMES = ("a2c", "dqn", "ppo")
"""The SB3 algorithms a run can train."""
WARM_STARTS = ("static", "ctr", "bc", "teacher", "none")
DEFAULT_ACTION_MODE = {"ppo": "weights", "a2c": "weights", "dqn": "discrete"}
"""Action mode per algorithm unless the env options say otherwise."""
ALGORITHM_KWARGS: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 256, "n_epochs": 4, "gae_lambda": 0.9, "ent_coef": 0.0},
    "a2c": {"learning_rate": 1e-4, "n_steps": 8, "gae_lambda": 0.9},
    "dqn": {"learning_rate": 5e-4, "buffer_size": 30_000, "learning_starts": 1_000, "batch_size": 64, "train_freq": 1,
            "gradient_steps": 2, "target_update_interval": 1_000, "exploration_fraction": 0.3,
            "exploration_final_eps": 0.05, "n_steps": 10},
}  # fmt: skip
"""Hyperparameters per algorithm (sessions are short: gamma 0.95 for all). DQN's targets sum
``n_steps`` rewards before they bootstrap (:mod:`agents.training.replay`: with one-step targets
it ranks the strategies by their immediate reward)."""

TRAIN_LIMITS = {"timesteps": 10**9, "n_envs": 65_536, "eval_episodes": 10**6, "eval_freq": 10**9, "curve_episodes": 10**6,
                "checkpoint_freq": 10**9, "tuning_sessions": 10**6, "tuning_generations": 1_000,
                "teacher_states": 10**7, "teacher_steps": 10**7}  # fmt: skip
"""The largest value of each count (a billion steps is days of training; beyond the others memory runs out)."""
ENV_FLAGS_SKIPPED = ("data_path", "render_mode")
"""EnvConfig fields with no training flag: ``--data`` takes a dataset's folder itself; training renders nothing."""
DATA_HELP = (
    "logs to fit the simulator on: a dataset name (shop, shop:homogeneous, movielens, ...) or a folder of your own "
    "logs (see load_logs; a schema.json there holds loader options). (default: the env's own: shop for "
    "ecommerce-v0, movielens for movielens-v0)"
)
"""Help of ``agents.train``'s ``--data`` flag (its default depends on ``--env``)."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run (``config.json`` of the run folder)."""

    algorithm: str
    """``ppo``, ``dqn`` or ``a2c``."""
    env: str = "ecommerce-v0"
    """Registered env id."""
    timesteps: int = 30_000
    """Environment steps (summed over the parallel envs)."""
    seed: int = 0
    """Seed of the networks, the envs and the evaluation users (``seed + 10_000``)."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    warm_start: str = "static"
    """``static`` (CTR towers + a head that starts at the best static re-ranker: tuned-weights
    for ``weights`` actions, best-fixed for ``discrete``, the first weight vector for ``menu``), ``ctr`` (CTR towers + greedy-pCTR
    head), ``bc`` (``ctr`` plus behaviour cloning of greedy CTR), ``teacher`` (``static`` plus
    behaviour cloning of the distilled planner ``--teacher``) or ``none``."""
    teacher: str = ""
    """A distilled planner's run folder (``python -m agents.distill``) for ``--warm-start teacher``:
    the head learns its choices on the states it visits, and the agent trains with its fairness
    weight unless ``--fairness-lambda`` names the same. Its candidate actions must be the agent's:
    ``--planner-base best-fixed --planner-candidates strategies`` for dqn (``discrete``),
    ``--planner-base tuned-weights`` with perturb, diversify or greedy for ``weights`` and ``menu``
    (a menu agent picks among the teacher's candidate weight vectors, in its order: a new run
    with ``--teacher`` names no ``action_menu``, so a teacher run's recorded config, which holds
    its menu, starts a new run only with ``action_menu`` emptied)."""
    teacher_states: int = 65_536
    """States the teacher is cloned on (``--warm-start teacher``). With 16,384 states and 2,000
    steps, five DQN clones of a teacher over the eight strategies agreed with it on 0.66-0.67 of
    held-out states and earned +0.91 to +1.53 over ``best-fixed`` (1,000 sessions of the fitted
    shop, seed 70000); with 65,536 and 6,000, 0.69-0.73 and +1.23 to +1.81 (the teacher's own:
    +1.53), for about 50 s more of a 30,000-step run (98 s)."""
    teacher_steps: int = 6_000
    """Gradient steps of cloning the teacher (its choices depend on the state; greedy CTR's do not)."""
    n_envs: int = 16
    """Parallel users in the training vector env."""
    hyperparameters: tuple[str, ...] = ()
    """The algorithm's SB3 arguments over RecGym's (``ALGORITHM_KWARGS``), each as NAME=VALUE,
    VALUE a number or true/false: ``n_steps=16 batch_size=1024 n_epochs=2``."""
    frozen_towers: bool = True
    """Keep the user and item towers as the warm start loaded them (the CTR model's) and train
    the rest: the towers' tables are computed once, not per minibatch (2.3x the steps per second
    of PPO; the same return over 3 seeds, ``benchmarks/results/train_speed.md``). Off by itself
    with ``--warm-start none`` (the towers would stay random) and the ``embedding``
    observation (no towers)."""
    eval_episodes: int = 500
    """Sessions per policy in the final comparison."""
    eval_freq: int = 5_000
    """Environment steps between evaluations (learning curve)."""
    curve_episodes: int = 500
    """Sessions per point of the learning curve (the same sessions at every point). The run
    keeps its last model unless that one earned less than the start on them (then the curve's
    best point): with 96 sessions a DQN run kept a last model 2.3 per session below its start."""
    checkpoint_freq: int = 10_000
    """Environment steps between checkpoints (for ``--resume``)."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (in the fitted
    simulator, once per world: the result is cached)."""
    tuning_generations: int = 5
    """Generations of the cross-entropy search of ``tuned-weights`` (24 settings each)."""
    out: str = ""
    """Run folder; empty = ``runs/{algorithm}-{env}-s{seed}``."""
    env_options: EnvConfig | dict[str, Any] | None = None
    """Options of the env the agent trains and is evaluated in: ``None`` = the main job's (the
    algorithm's action mode, ``weights`` for PPO/A2C and ``discrete`` for DQN, and a
    ``fairness_lambda`` set by ``fairness_price``), as the CLI's; a dict = those defaults with the
    options it names changed (``{"data_path": "ml-1m/"}``; naming ``fairness_lambda`` fixes it); an
    :class:`EnvConfig` = exactly those options (its own defaults, ``fairness_lambda`` 0 among them)."""
    fairness_price: float | None = FAIRNESS_PRICE
    """The fairness penalty's price in the logs' own engagement scale: ``fairness_lambda`` =
    price x greedy CTR's engagement per step in the fitted simulator, rounded to 0.1 (8.0 on the
    shop, 5.2 on MovieLens-100K; :mod:`agents.evaluation.fairness_scale`), set when training
    starts. ``None`` once the env options name a ``fairness_lambda``, which then stands."""

    def __post_init__(self) -> None:
        check_field_types(self)
        check_seed("seed", self.seed)
        if self.algorithm not in ALGORITHM_NAMES:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose from {list(ALGORITHM_NAMES)}")
        default_data = envs.env_data(self.env)  # raises for an unknown env id
        if self.env_options is not None and not isinstance(self.env_options, (EnvConfig, dict)):
            raise ConfigError(f"env_options must be an object of env options, got {self.env_options!r}")
        if self.teacher and is_distilled_run(self.teacher) and not isinstance(self.env_options, EnvConfig):
            given = dict(self.env_options or {})
            if "fairness_lambda" not in given:  # the teacher's reward is the agent's
                given["fairness_lambda"] = read_record(Path(self.teacher))["env_options"].get(
                    "fairness_lambda", 0.0
                )
                object.__setattr__(self, "env_options", given)
        named = isinstance(self.env_options, EnvConfig) or "fairness_lambda" in (self.env_options or {})
        if named:  # the weight the options name stands
            object.__setattr__(self, "fairness_price", None)
        elif self.fairness_price is not None and not (
            np.isfinite(self.fairness_price) and self.fairness_price >= 0
        ):
            raise ConfigError(f"--fairness-price must be a finite number >= 0, got {self.fairness_price}")
        # the id's own options (its horizon); its data is settled below
        registered = {k: v for k, v in envs.env_options(self.env).items() if k != "data"}
        options = (
            self.env_options
            if isinstance(self.env_options, EnvConfig)
            else env_config(
                **{**main_job_env_options(self.algorithm), **registered, **(self.env_options or {})}
            )
        )
        # an explicit ``data`` wins; the default one stands for the env's own logs
        data = options.data if options.data != EnvConfig().data else default_data
        object.__setattr__(self, "env_options", replace(options, data=data, data_path=options.data_path))
        names = ("timesteps", "n_envs", "eval_episodes", "eval_freq", "curve_episodes", "checkpoint_freq",
                 "tuning_sessions", "tuning_generations", "teacher_states", "teacher_steps")  # fmt: skip
        check_at_least_one(self, names, "--")
        for name, most in TRAIN_LIMITS.items():
            if getattr(self, name) > most:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be at most {most:,}, got {getattr(self, name):,}"
                )
        if self.teacher_states < 64:
            raise ConfigError(
                f"--teacher-states must be at least 64 (the teacher plays 64 users at once), got {self.teacher_states}"
            )
        if self.warm_start not in WARM_STARTS:
            raise ConfigError(f"warm start must be one of {WARM_STARTS}, got {self.warm_start!r}")
        if isinstance(self.hyperparameters, list):  # (as config.json holds it)
            object.__setattr__(self, "hyperparameters", tuple(self.hyperparameters))
        parse_hyperparameters(self.algorithm, self.hyperparameters)
        if self.warm_start == "none" or self.options.obs_mode != "ids":  # no trained towers to keep
            object.__setattr__(self, "frozen_towers", False)
        if self.device.split(":")[0] not in DEVICE_CHOICES:
            raise ConfigError(f"device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        on_policy = self.algorithm != "dqn"  # (DQN's n_steps is its targets' horizon, not a rollout)
        rollout = self.algorithm_kwargs.get("n_steps", 0) * self.n_envs * on_policy
        if self.timesteps < rollout:
            raise ConfigError(
                f"timesteps ({self.timesteps}) is less than one rollout of {self.algorithm} "
                f"(n_steps {rollout // self.n_envs} x n-envs {self.n_envs} = {rollout}): raise --timesteps or lower --n-envs"
            )
        mode, obs = self.options.action_mode, self.options.obs_mode
        if self.algorithm == "dqn" and mode not in DISCRETE_MODES:
            raise ConfigError("dqn needs action_mode 'discrete' or 'menu'")
        if (self.warm_start == "teacher") != bool(self.teacher):
            raise ConfigError("--warm-start teacher and --teacher FOLDER go together: pass both or neither")
        if self.warm_start in ("static", "teacher") and mode == "scores":
            raise ConfigError(
                f"warm start '{self.warm_start}' starts at a re-ranker's action: it needs action_mode 'weights', "
                "'discrete' or 'menu' (or use --warm-start ctr)"
            )
        if obs == "embedding" and self.warm_start != "none" and mode == "scores":
            raise ConfigError(
                "a warm start with obs_mode 'embedding' needs action_mode 'weights', 'discrete' or 'menu'"
            )
        if self.algorithm != "dqn" and mode == "discrete":
            raise ConfigError(
                f"{self.algorithm} trains on 'scores', 'weights' or 'menu' (weight vectors to pick among), not "
                "'discrete'"
            )
        if self.options.action_menu and mode != "menu":
            raise ConfigError(f"--action-menu is the menu action mode's; the agent acts in {mode!r}")
        if mode == "menu" and self.warm_start in ("ctr", "bc"):
            raise ConfigError(
                f"warm start '{self.warm_start}' starts at greedy pCTR, which a menu need not hold: use static, "
                "teacher or none"
            )

    def check_teacher(self) -> None:
        """``--teacher`` names a distilled run whose candidate actions are in the agent's action
        mode, on the same logs and reward. Checked when a run starts (:func:`agents.training.train.train`),
        not on every reading of a config: a resumed run's clone is done, and its teacher may have moved."""
        if not self.teacher:
            return
        if not is_distilled_run(self.teacher):
            raise ConfigError(
                f"--teacher {self.teacher}: not a distilled run (python -m agents.distill writes one)"
            )
        record = read_record(Path(self.teacher))
        teaches, mode = planner_config(record["planner"]), self.options.action_mode
        if mode == "menu" and self.options.action_menu:
            raise ConfigError(
                f"--teacher {self.teacher}: its choices index its own candidate weight vectors, which make the "
                "agent's menu: leave --action-menu out"
            )
        modes = candidate_modes(teaches)
        if modes != {"weights" if mode == "menu" else mode} or (
            mode == "discrete" and "strategies" not in teaches.candidates
        ):
            raise ConfigError(
                f"--teacher {self.teacher}: its candidate actions are {sorted(modes)}, the agent acts in {mode!r}: "
                "distil with --planner-base best-fixed --planner-candidates strategies for discrete actions, "
                "--planner-base tuned-weights --planner-candidates perturb diversify greedy for weights or menu"
            )
        options = record.get("env_options", {})
        if options.get("data") != self.options.data:
            raise ConfigError(
                f"--teacher {self.teacher}: distilled on --data {options.get('data')!r}, the agent trains on "
                f"{self.options.data!r}"
            )
        if options.get("fairness_lambda") != self.options.fairness_lambda:
            raise ConfigError(
                f"--teacher {self.teacher}: distilled with fairness_lambda {options.get('fairness_lambda')}, the "
                f"agent trains with {self.options.fairness_lambda}: the same reward for both, or no --fairness-lambda "
                "(the teacher's is then taken)"
            )

    @property
    def tuning_budget(self) -> TuningBudget:
        """The tuned re-rankers' budget (``--tuning-sessions``, ``--tuning-generations``)."""
        return TuningBudget(sessions=self.tuning_sessions, cem_generations=self.tuning_generations)

    @property
    def algorithm_kwargs(self) -> dict[str, Any]:
        """The algorithm's SB3 arguments: RecGym's, then ``hyperparameters`` over them."""
        return {
            **ALGORITHM_KWARGS[self.algorithm],
            **parse_hyperparameters(self.algorithm, self.hyperparameters),
        }

    @property
    def options(self) -> EnvConfig:
        """The env options (an :class:`EnvConfig` once the config is built)."""
        assert isinstance(self.env_options, EnvConfig)
        return self.env_options

    @property
    def folder(self) -> Path:
        """The run folder."""
        return Path(self.out or f"runs/{self.algorithm}-{self.env}-s{self.seed}")

    def env_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The env options as ``gym.make`` / ``RankingVectorEnv`` keyword arguments."""
        return {**asdict(self.options), **overrides}

    def to_json(self) -> dict[str, Any]:
        """The ``config.json`` object (the env options nested under ``env_options``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> TrainConfig:
        """Inverse of :meth:`to_json`; extra keys (what a run recorded beside it) are ignored."""
        if not isinstance(raw, dict):
            raise ConfigError(f"a run config is a JSON object, got {type(raw).__name__}")
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in names}
        options = values.get("env_options")
        try:
            if isinstance(options, dict):
                known = {f.name for f in fields(EnvConfig)}
                values["env_options"] = EnvConfig(**{k: v for k, v in options.items() if k in known})
            return cls(**values)
        except TypeError as err:
            raise ConfigError(f"run config: {err}") from None


RESERVED_HYPERPARAMETERS = ("policy", "env", "seed", "device", "verbose", "tensorboard_log", "policy_kwargs",
                            "replay_buffer_class", "replay_buffer_kwargs", "rollout_buffer_class",
                            "rollout_buffer_kwargs", "_init_setup_model", "gamma",
                            "optimize_memory_usage")  # fmt: skip
"""SB3 arguments ``--hyperparameters`` may not set: RecGym sets them from the run's other options
(classes and objects are no NAME=VALUE; ``gamma`` 0.95 is part of the task: sessions are short;
``optimize_memory_usage`` is refused by the n-step replay buffers DQN trains with)."""


def parse_hyperparameters(algorithm: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as SB3 keyword arguments of ``algorithm``: each NAME one of its
    constructor's, VALUE an int, a float or true/false; :class:`ConfigError` names the first
    that is not."""
    if not pairs:
        return {}
    import inspect

    from agents.policies.agent import ALGORITHMS

    accepted = set(inspect.signature(ALGORITHMS[algorithm].__init__).parameters) - {
        "self",
        *RESERVED_HYPERPARAMETERS,
    }
    parsed: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = str(pair).partition("=")
        if not sep or not name or not text:
            raise ConfigError(f"--hyperparameters takes NAME=VALUE pairs, got {pair!r}")
        if name not in accepted:
            raise ConfigError(
                f"--hyperparameters: {algorithm} has no argument {name!r} RecGym lets you set; choose from {sorted(accepted)}"
            )
        if text.lower() in ("true", "false"):
            parsed[name] = text.lower() == "true"
            continue
        parsed[name] = _number(name, text)
    return parsed


def _number(name: str, text: str) -> int | float:
    """``text`` as an int, else as a finite float (for ``--hyperparameters``)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--hyperparameters: {name} must be a number or true/false, got {text!r}") from None
    if not np.isfinite(value):
        raise ConfigError(f"--hyperparameters: {name} must be finite, got {text!r}")
    return value


def main_job_env_options(algorithm: str) -> dict[str, Any]:
    """The env options the main job trains with unless told otherwise: the algorithm's action
    mode (the CLI's defaults and the Python API's alike; ``fairness_lambda`` is priced per world,
    :func:`priced_config`)."""
    return {"action_mode": DEFAULT_ACTION_MODE[algorithm]}


def priced_config(config: TrainConfig) -> tuple[TrainConfig, FairnessScale | None]:
    """``config`` with its ``fairness_lambda`` set by its ``fairness_price`` in its world (built,
    or read from the cache, to measure the scale), and how it was set; ``config`` itself when its
    env options name the weight."""
    if config.fairness_price is None:
        return config, None
    scale = priced_fairness(config.options, config.fairness_price)
    return replace(
        config, env_options={**asdict(config.options), "fairness_lambda": scale.fairness_lambda}
    ), scale


def train_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m agents.train``: TrainConfig's and EnvConfig's fields as flags."""
    parser = ArgumentParser(
        prog="python -m agents.train",
        description="Train an SB3 agent to rank and compare it with the static baselines.",
    )
    parser.add_argument("algorithm", choices=ALGORITHM_NAMES, help="the SB3 algorithm")
    add_config_arguments(
        parser,
        TrainConfig,
        skip=("algorithm", "env_options"),
        choices={"env": envs.ENV_IDS, "warm_start": WARM_STARTS},
    )
    env = parser.add_argument_group("environment", "options of the env the agent trains in (EnvConfig)")
    add_config_arguments(
        env,
        EnvConfig,
        skip=ENV_FLAGS_SKIPPED,
        dest_prefix="env_",
        choices={
            "action_mode": ACTION_MODES,
            "obs_mode": OBS_MODES,
            "simulator": SIMULATORS,
            "candidates": CANDIDATE_SOURCES,
        },
    )
    for action in env._group_actions:
        if action.dest == "env_data":  # its default depends on the env id
            action.help = DATA_HELP
        if action.dest == "env_fairness_lambda":  # its default depends on the logs
            action.help = (
                "weight of the fairness penalty in the reward (default: set by --fairness-price in the logs' own "
                "engagement scale; 8.0 on the shop)"
            )
        if action.dest == "env_action_mode":  # its default depends on the algorithm
            action.help = (
                "scores (one per candidate), weights (over candidate features), discrete (a strategy) or menu (one "
                "of --action-menu's weight vectors). (default: weights for ppo and a2c, discrete for dqn)"
            )
        if action.dest == "env_action_menu":  # filled when training starts
            action.help = (
                "the weight vectors a menu action picks among, row-major, one number per feature and the "
                "diversify switch for each. (default: tuned-weights and the planner's candidates over it, or with "
                "--teacher the teacher's candidates)"
            )
    parser.add_argument(
        "--resume", default="", help="continue the run in this folder from its last checkpoint"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the run that --out already holds (default: refuse)"
    )
    return parser


def parse_train_config(argv: Sequence[str] | None) -> tuple[TrainConfig, bool, bool]:
    """The CLI's flags as a config, whether to resume (``--resume DIR`` reads the run's own
    config; ``--timesteps`` may raise its budget) and whether to overwrite the run ``--out`` holds."""
    args = train_parser().parse_args(argv)
    given = {k: v for k, v in config_kwargs(args, TrainConfig).items() if k != "algorithm"}
    env_given = config_kwargs(args, EnvConfig, dest_prefix="env_")
    if "fairness_price" in given and given.get("teacher"):
        raise ConfigError(
            "--fairness-price prices the reward on the logs; with --teacher the agent takes the teacher's "
            "fairness_lambda (or pass the same --fairness-lambda)"
        )
    if "fairness_price" in given and "fairness_lambda" in env_given:
        raise ConfigError(
            "--fairness-price sets fairness_lambda from the logs; --fairness-lambda fixes it: pass one"
        )
    if args.resume:
        file = Path(args.resume) / "config.json"
        try:
            saved = TrainConfig.from_json(json.loads(file.read_text()))
        except (OSError, ValueError) as err:
            raise ConfigError(f"--resume {args.resume}: no readable run config ({err})") from None
        if saved.algorithm != args.algorithm:
            raise ConfigError(
                f"--resume {args.resume}: that run trained {saved.algorithm}, not {args.algorithm}"
            )
        if args.overwrite:
            raise ConfigError(
                f"--resume {args.resume} continues a run; --overwrite would replace it: pass one"
            )
        if "out" in given and Path(given["out"]).resolve() != Path(args.resume).resolve():
            raise ConfigError(
                f"--resume {args.resume} continues the run in its own folder; --out {given['out']} names another"
            )
        differ = [
            f"--{k.replace('_', '-')}"
            for k, v in given.items()
            if k not in ("out", "timesteps") and getattr(saved, k) != v
        ]
        differ += [f"--{k.replace('_', '-')}" for k, v in env_given.items() if getattr(saved.options, k) != v]
        if differ:
            raise ConfigError(
                f"--resume {args.resume}: the run's config.json sets {', '.join(differ)} otherwise; a resumed run keeps "
                "its own options (only --timesteps may raise its budget)"
            )
        return replace(saved, out=args.resume, timesteps=given.get("timesteps", saved.timesteps)), True, False
    return TrainConfig(args.algorithm, **given, env_options=env_given), False, args.overwrite
