"""Train an SB3 agent to rank: ``python -m agents.train {ppo,dqn,a2c} --env ecommerce-v0``.

The agent trains on the natively batched vector env (through its SB3 adapter) with
:class:`agents.networks.RankingExtractor`, warm-started from the CTR model by default. The run
folder gets ``config.json``, ``model.zip``, ``metrics.json`` (the trained policy and the static
baselines on the same evaluation users), ``learning_curve.png``, TensorBoard logs (``tb/``),
checkpoints (``checkpoints/``, for ``--resume``) and the best model by the periodic evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecMonitor

import envs
from agents.agent import ALGORITHMS, TrainedAgent
from agents.baselines import make_baseline
from agents.callbacks import (
    CURVE_FILE,
    AtomicCheckpointCallback,
    AtomicEvalCallback,
    last_checkpoint,
    save_model_atomic,
)
from agents.evaluate import metrics, run_sessions
from agents.networks import RankingExtractor, RankingPolicy, load_ctr_towers, start_at_greedy_ctr
from encoders.device import DEVICE_CHOICES, deterministic_torch, resolve_device
from envs.ranking import (
    ACTION_MODES,
    CANDIDATE_SOURCES,
    FEATURES,
    OBS_MODES,
    SIMULATORS,
    STRATEGIES,
    WEIGHTS,
    RankingWorld,
)
from envs.sb3 import SB3VecEnvAdapter
from envs.vector import RankingVectorEnv
from simulators.errors import ConfigError, cli_entry
from simulators.storage import atomic_path, write_text_atomic

WARM_STARTS = ("ctr", "bc", "none")
EVAL_CURVE_EPISODES = 96
"""Sessions per point of the learning curve (the same users at every point)."""
DEFAULT_ACTION_MODE = {"ppo": "weights", "a2c": "weights", "dqn": "discrete"}
"""Action mode per algorithm unless ``--action-mode`` says otherwise."""
METRIC_ROWS = (
    ("return", "return_mean"),
    ("clicks", "clicks_per_session"),
    ("purchases", "purchases_per_session"),
    ("length", "session_length"),
    ("gini", "exposure_gini"),
    ("protected", "protected_exposure_share"),
    ("user gap", "user_group_gap"),
)


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
    fairness_lambda: float = 0.0
    """Weight of the exposure-fairness penalty in the reward."""
    fairness_target: float | None = None
    """Fixed protected exposure share; ``None`` = merit-based (the env's default)."""
    warm_start: str = "ctr"
    """``ctr`` (CTR towers + greedy-pCTR head), ``bc`` (plus behaviour cloning) or ``none``."""
    action_mode: str = ""
    """Env action mode; empty = ``weights`` for PPO/A2C, ``discrete`` for DQN."""
    n_envs: int = 16
    """Parallel users in the training vector env."""
    eval_episodes: int = 500
    """Sessions per policy in the final comparison."""
    eval_freq: int = 5_000
    """Environment steps between evaluations (learning curve)."""
    checkpoint_freq: int = 10_000
    """Environment steps between checkpoints (for ``--resume``)."""
    simulator: str = "fitted"
    """``fitted`` or ``true`` (the shop's ground truth)."""
    candidates: str = "ctr"
    """Env candidate source: ``ctr`` or ``popularity``."""
    obs_mode: str = "ids"
    """``ids`` (RecGym's extractor over ids + the BERT table) or ``embedding`` (a plain SB3
    ``MlpPolicy`` over the CTR model's dense vectors)."""
    out: str = ""
    """Run folder; empty = ``runs/{algorithm}-{env}-s{seed}``."""

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose from {sorted(ALGORITHMS)}")
        if self.env not in envs.ENV_IDS:
            raise ConfigError(f"unknown env {self.env!r}; registered: {list(envs.ENV_IDS)}")
        for name in ("timesteps", "n_envs", "eval_episodes", "eval_freq", "checkpoint_freq"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.warm_start not in WARM_STARTS:
            raise ConfigError(f"warm start must be one of {WARM_STARTS}, got {self.warm_start!r}")
        if self.device.split(":")[0] not in DEVICE_CHOICES:
            raise ConfigError(f"device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        if not np.isfinite(self.fairness_lambda) or self.fairness_lambda < 0:
            raise ConfigError(f"fairness lambda must be a finite number >= 0, got {self.fairness_lambda}")
        if self.fairness_target is not None and not 0 < self.fairness_target < 1:
            raise ConfigError(f"fairness target must lie in (0, 1), got {self.fairness_target}")
        if self.action_mode and self.action_mode not in ACTION_MODES:
            raise ConfigError(f"action mode must be one of {ACTION_MODES}, got {self.action_mode!r}")
        if self.obs_mode not in OBS_MODES:
            raise ConfigError(f"obs mode must be one of {OBS_MODES}, got {self.obs_mode!r}")
        if (
            self.obs_mode == "embedding"
            and self.warm_start != "none"
            and self.resolved_action_mode == "scores"
        ):
            raise ConfigError(
                "a warm start with obs_mode 'embedding' needs action_mode 'weights' or 'discrete'"
            )
        if self.algorithm == "dqn" and self.resolved_action_mode != "discrete":
            raise ConfigError("dqn needs action_mode 'discrete'")
        if self.algorithm != "dqn" and self.resolved_action_mode == "discrete":
            raise ConfigError(f"{self.algorithm} trains on 'scores' or 'weights', not 'discrete'")

    @property
    def resolved_action_mode(self) -> str:
        """The action mode used."""
        return self.action_mode or DEFAULT_ACTION_MODE[self.algorithm]

    @property
    def folder(self) -> Path:
        """The run folder."""
        return Path(self.out or f"runs/{self.algorithm}-{self.env}-s{self.seed}")

    def env_options(self) -> dict[str, Any]:
        """Options of the env the agent trains and is evaluated in."""
        return {
            "action_mode": self.resolved_action_mode,
            "fairness_lambda": self.fairness_lambda,
            "simulator": self.simulator,
            "candidates": self.candidates,
            "obs_mode": self.obs_mode,
            "fairness_target": self.fairness_target,
        }


def make_vec_env(config: TrainConfig, num_envs: int, reset_seed: int | None = None) -> VecMonitor:
    """The batched env behind SB3's ``VecEnv`` interface (episode stats by ``VecMonitor``)."""
    data = envs.env_data(config.env)
    vector = RankingVectorEnv(num_envs=num_envs, data=data, **config.env_options())
    return VecMonitor(SB3VecEnvAdapter(vector, reset_seed=reset_seed))


ALGORITHM_KWARGS: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 3e-4, "n_steps": 128, "batch_size": 256, "n_epochs": 4, "gae_lambda": 0.9, "ent_coef": 0.0},
    "a2c": {"learning_rate": 1e-4, "n_steps": 8, "gae_lambda": 0.9},
    "dqn": {"learning_rate": 5e-4, "buffer_size": 30_000, "learning_starts": 1_000, "batch_size": 64, "train_freq": 1,
            "gradient_steps": 2, "target_update_interval": 1_000, "exploration_fraction": 0.3,
            "exploration_final_eps": 0.05},
}  # fmt: skip
"""Hyperparameters per algorithm (sessions are short: gamma 0.95 for all)."""


def build_model(config: TrainConfig, venv: VecMonitor, world: RankingWorld) -> BaseAlgorithm:
    """The SB3 algorithm: RecGym's extractor and scorer (``ids``) or a plain MLP (``embedding``)."""
    common = {"seed": config.seed, "device": resolve_device(config.device), "verbose": 0, "gamma": 0.95,
              "tensorboard_log": str(config.folder / "tb"), **ALGORITHM_KWARGS[config.algorithm]}  # fmt: skip
    dqn = config.algorithm == "dqn"
    policy: Any
    if config.obs_mode == "embedding":
        policy = "MlpPolicy"
        kwargs: dict[str, Any] = {"net_arch": [128, 128] if dqn else {"pi": [128], "vf": [128]}}
    else:
        dim = world.ctr.config.dim if world.ctr is not None else 32
        policy = "MultiInputPolicy" if dqn else RankingPolicy
        kwargs = {"features_extractor_class": RankingExtractor,
                  "features_extractor_kwargs": {"item_table": world.item_table, "dim": dim},
                  "net_arch": [64] if dqn else {"pi": [], "vf": [64]}}  # fmt: skip
    if not dqn:
        kwargs["log_std_init"] = -1.0
    return ALGORITHMS[config.algorithm](policy, venv, policy_kwargs=kwargs, **common)


def warm_start(model: BaseAlgorithm, config: TrainConfig, world: RankingWorld) -> dict[str, Any]:
    """Apply ``config.warm_start``; return what was done (for ``config.json``)."""
    if config.warm_start == "none":
        return {"warm_start": "none"}
    ctr = world.ctr
    if ctr is None:
        from encoders.ctr import load_or_train_ctr
        from simulators.datasets import load_logs

        ctr = load_or_train_ctr(load_logs(envs.env_data(config.env)), embeddings=world.item_table)
    policy: Any = model.policy
    loaded: list[str] = []
    if config.obs_mode == "ids":  # (in ``embedding`` mode the features already are the CTR model's vectors)
        extractors = (
            [policy.q_net.features_extractor, policy.q_net_target.features_extractor]
            if config.algorithm == "dqn"
            else [policy.features_extractor]
        )
        state = {key: value.detach().cpu() for key, value in ctr.model.state_dict().items()}
        loaded = [key for extractor in extractors for key in load_ctr_towers(extractor, state)]
    start_at_greedy_ctr(policy, config.resolved_action_mode)
    done: dict[str, Any] = {"warm_start": config.warm_start, "ctr_tensors_loaded": len(loaded)}
    if config.warm_start == "bc":
        done["bc_loss"] = behaviour_clone(model, config)
    return done


def behaviour_clone(
    model: BaseAlgorithm, config: TrainConfig, steps: int = 300, states: int = 4_096
) -> list[float]:
    """Pre-train the policy head toward the static CTR ranking on states the CTR baseline visits:
    the mean action (PPO/A2C: MSE to the CTR action) or the Q-values (DQN: cross-entropy toward
    ``greedy_ctr``). Returns the loss at the start and the end."""
    baseline = make_baseline("ctr")
    venv = RankingVectorEnv(
        num_envs=64, data=envs.env_data(config.env), **{**config.env_options(), "action_mode": "scores"}
    )
    obs, _ = venv.reset(seed=config.seed + 20_000)
    rng = np.random.default_rng(config.seed)
    observed, ctr_actions = [], []
    for _ in range(states // 64):
        action = baseline.act(venv.core.observe_ids(), rng)  # the baseline reads ids in any obs_mode
        observed.append(obs.copy() if isinstance(obs, np.ndarray) else {k: v.copy() for k, v in obs.items()})
        ctr_actions.append(action)
        obs, *_ = venv.step(action)
    data: Any = (
        np.concatenate(observed)  # type: ignore[arg-type]
        if isinstance(observed[0], np.ndarray)
        else {k: np.concatenate([b[k] for b in observed]) for k in observed[0]}
    )
    n = len(ctr_actions) * 64
    mode = config.resolved_action_mode
    policy: Any = model.policy
    tensors, _ = policy.obs_to_tensor(data)
    if mode == "scores":
        target = torch.as_tensor(np.concatenate(ctr_actions), device=policy.device)
    elif mode == "weights":
        target = torch.zeros((n, len(WEIGHTS)), device=policy.device)
        target[:, FEATURES.index("pctr")] = 1.0
        target[:, WEIGHTS.index("diversify")] = 0.0
    else:
        target = torch.full((n,), STRATEGIES.index("greedy_ctr"), device=policy.device)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(target), (256,), generator=generator).to(policy.device)
        batch = (
            tensors[index] if isinstance(tensors, torch.Tensor) else {k: v[index] for k, v in tensors.items()}
        )
        if mode == "discrete":
            loss = torch.nn.functional.cross_entropy(policy.q_net(batch), target[index])
        else:
            mean = policy.get_distribution(batch).distribution.mean
            loss = torch.nn.functional.mse_loss(mean, target[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    if mode == "discrete":
        policy.q_net_target.load_state_dict(policy.q_net.state_dict())
    return [round(losses[0], 5), round(losses[-1], 5)]


def evaluate_all(agent: TrainedAgent, config: TrainConfig) -> dict[str, Any]:
    """The trained policy and the baselines on the same evaluation users: the metrics.json object."""
    seed = config.seed + 10_000
    options = {k: v for k, v in config.env_options().items() if k not in ("action_mode", "obs_mode")}

    def one(policy: Any, name: str) -> dict[str, Any]:
        if policy is agent:  # the baselines read ids; the agent its own observation mode
            return metrics(
                run_sessions(policy, config.env, config.eval_episodes, seed, **options, obs_mode=config.obs_mode),
                config.env, name, seed,
            )  # fmt: skip
        return metrics(
            run_sessions(policy, config.env, config.eval_episodes, seed, **options), config.env, name, seed
        )

    return {
        "policy": one(agent, str(config.folder)),
        "baselines": {name: one(make_baseline(name), name) for name in ("ctr", "popularity", "random")},
    }


def comparison_table(report: dict[str, Any]) -> str:
    """Markdown table: the policy next to the baselines (mean [95% CI] of the return)."""
    rows = {
        "trained policy": report["policy"],
        **{f"{k} (static)" if k == "ctr" else k: v for k, v in report["baselines"].items()},
    }
    header = "| policy | return [95% CI] | " + " | ".join(name for name, _ in METRIC_ROWS[1:]) + " |"
    lines = [header, "|" + "---|" * (len(METRIC_ROWS) + 1)]
    for name, m in rows.items():
        lo, hi = m["return_ci95"]
        cells = [f"{m['return_mean']:.2f} [{lo:.2f}, {hi:.2f}]"] + [
            f"{m[key]:.3f}" for _, key in METRIC_ROWS[1:]
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    ctr = report["baselines"]["ctr"]["return_mean"]
    gain = 100.0 * (report["policy"]["return_mean"] / ctr - 1.0) if ctr else float("nan")
    lines.append(f"\ntrained policy vs static CTR: {gain:+.1f}% mean return")
    return "\n".join(lines)


def plot_curves(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], baselines: dict[str, dict[str, Any]], path: Path
) -> None:
    """Learning curves (mean evaluation return vs env steps) with the baselines' 95% CI bands."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in curves.items():
        axis.plot(steps, values, marker="o", markersize=3, label=name)
    for (name, m), color in zip(baselines.items(), ("tab:red", "tab:gray", "tab:brown"), strict=False):
        lo, hi = m["return_ci95"]
        axis.axhspan(lo, hi, color=color, alpha=0.15)
        axis.axhline(m["return_mean"], color=color, linestyle="--", label=f"{name} (static)")
    axis.set_xlabel("environment steps")
    axis.set_ylabel("return per session")
    axis.set_title(
        "curves: periodic evaluation users; dashed: static baselines on the final users", fontsize=8
    )
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def read_curve(folder: Path) -> tuple[list[int], list[float]]:
    """The learning curve recorded so far (``eval/evaluations.npz``)."""
    file = folder / "eval" / CURVE_FILE
    if not file.is_file():
        return [], []
    data = np.load(file)
    return data["timesteps"].tolist(), data["results"].mean(axis=1).tolist()


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train (or resume), evaluate against the baselines, write the run folder; return metrics."""
    folder = config.folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    venv = make_vec_env(config, config.n_envs)
    world = venv.venv.env.core.world  # type: ignore[attr-defined]
    eval_env = make_vec_env(config, min(16, config.n_envs), reset_seed=config.seed + 30_000)
    info: dict[str, Any] = {}
    checkpoint = last_checkpoint(folder) if resume else None
    with deterministic_torch(config.seed):
        if checkpoint is not None:
            path, steps = checkpoint
            model = ALGORITHMS[config.algorithm].load(path, env=venv, device=resolve_device(config.device))
            buffer = folder / "checkpoints" / f"rl_model_replay_buffer_{steps}_steps.pkl"
            if config.algorithm == "dqn" and buffer.is_file():
                model.load_replay_buffer(buffer)  # type: ignore[attr-defined]
            info = {"resumed_from": path.name}
        else:
            if resume:
                raise ConfigError(f"--resume {folder}: no checkpoint in {folder / 'checkpoints'}")
            venv.seed(config.seed)
            model = build_model(config, venv, world)
            info = warm_start(model, config, world)
        write_text_atomic(
            folder / "config.json",
            json.dumps({**asdict(config), "env_options": config.env_options(), **info}, indent=2) + "\n",
        )
        initial = None
        if checkpoint is None:
            agent = TrainedAgent(model, config.algorithm, config.env, config.env_options())
            initial = evaluate_all(agent, config)["policy"] if config.warm_start != "none" else None
        done_steps = model.num_timesteps
        evaluator = AtomicEvalCallback(
            eval_env, n_eval_episodes=EVAL_CURVE_EPISODES, eval_freq=max(config.eval_freq // config.n_envs, 1),
            log_path=str(folder / "eval"), best_model_save_path=str(folder / "best"), deterministic=True, verbose=0,
        )  # fmt: skip
        if checkpoint is None:  # the curve starts at the untrained (warm-started) policy
            returns, lengths = evaluate_policy(
                model, eval_env, EVAL_CURVE_EPISODES, return_episode_rewards=True
            )
            evaluator.start_curve(returns, lengths)  # type: ignore[arg-type]
        else:  # keep the curve recorded up to the checkpoint
            evaluator.restore(up_to=model.num_timesteps)
        checkpoints = AtomicCheckpointCallback(
            max(config.checkpoint_freq // config.n_envs, 1), str(folder / "checkpoints"),
            save_replay_buffer=config.algorithm == "dqn",
        )  # fmt: skip
        remaining = config.timesteps - done_steps
        if remaining > 0:
            model.learn(
                remaining, callback=CallbackList([checkpoints, evaluator]), progress_bar=True,
                reset_num_timesteps=checkpoint is None, tb_log_name=config.algorithm,
            )  # fmt: skip
        save_model_atomic(model, folder / "model.zip")
        agent = TrainedAgent(model, config.algorithm, config.env, config.env_options())
        report = evaluate_all(agent, config)
    if initial is not None:
        report["initial_policy"] = initial
    report["timesteps"] = int(model.num_timesteps)
    write_text_atomic(folder / "metrics.json", json.dumps(report, indent=2) + "\n")
    curve_steps, curve_values = read_curve(folder)
    plot_curves(
        {config.algorithm.upper(): (np.array(curve_steps), np.array(curve_values))},
        {"ctr": report["baselines"]["ctr"]},
        folder / "learning_curve.png",
    )
    write_text_atomic(
        folder / "timing.json", json.dumps({"seconds": round(time.perf_counter() - started, 1)}) + "\n"
    )
    return report


def parse_config(argv: list[str] | None) -> tuple[TrainConfig, bool]:
    """The CLI's flags as a config (``--resume DIR`` reads the run's own config)."""
    parser = argparse.ArgumentParser(prog="python -m agents.train", description=__doc__.splitlines()[0])
    parser.add_argument("algorithm", help=f"one of {sorted(ALGORITHMS)}")
    parser.add_argument("--env", default=TrainConfig.env)
    parser.add_argument("--timesteps", type=int, default=None, help=f"default {TrainConfig.timesteps}")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--device", default=TrainConfig.device, help="auto | cpu | cuda")
    parser.add_argument("--fairness-lambda", type=float, default=TrainConfig.fairness_lambda)
    parser.add_argument(
        "--fairness-target", type=float, default=None, help="fixed protected share (default: merit)"
    )
    parser.add_argument("--warm-start", default=TrainConfig.warm_start, help="ctr | bc | none")
    parser.add_argument(
        "--action-mode", default="", help="scores | weights | discrete (default per algorithm)"
    )
    parser.add_argument("--n-envs", type=int, default=TrainConfig.n_envs)
    parser.add_argument("--eval-episodes", type=int, default=TrainConfig.eval_episodes)
    parser.add_argument("--eval-freq", type=int, default=TrainConfig.eval_freq)
    parser.add_argument("--checkpoint-freq", type=int, default=TrainConfig.checkpoint_freq)
    parser.add_argument("--simulator", default=TrainConfig.simulator, choices=SIMULATORS)
    parser.add_argument("--candidates", default=TrainConfig.candidates, choices=CANDIDATE_SOURCES)
    parser.add_argument("--obs-mode", default=TrainConfig.obs_mode, choices=OBS_MODES)
    parser.add_argument("--out", default="", help="run folder (default runs/ALGO-ENV-sSEED)")
    parser.add_argument(
        "--resume", default="", help="continue the run in this folder from its last checkpoint"
    )
    args = parser.parse_args(argv)
    if args.resume:
        file = Path(args.resume) / "config.json"
        try:
            saved = json.loads(file.read_text())
            names = {f.name for f in fields(TrainConfig)}
            config = TrainConfig(**{k: v for k, v in saved.items() if k in names})
        except (OSError, ValueError, TypeError) as err:
            raise ConfigError(f"--resume {args.resume}: no readable run config ({err})") from None
        if config.algorithm != args.algorithm:
            raise ConfigError(
                f"--resume {args.resume}: that run trained {config.algorithm}, not {args.algorithm}"
            )
        target = config.timesteps if args.timesteps is None else args.timesteps
        return TrainConfig(**{**asdict(config), "out": args.resume, "timesteps": target}), True
    values = {k: v for k, v in vars(args).items() if k != "resume" and v is not None}
    return TrainConfig(**values), False


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Train, evaluate, print the comparison table."""
    config, resume = parse_config(argv)
    report = train(config, resume)
    print(comparison_table(report))
    print(f"run folder: {config.folder}")


if __name__ == "__main__":
    main()
