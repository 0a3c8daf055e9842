"""Train an SB3 agent to rank: ``python -m agents.train {ppo,dqn,a2c} --env ecommerce-v0``.

The agent trains on the natively batched vector env (through its SB3 adapter) with
:class:`agents.networks.RankingExtractor`, warm-started from the CTR model by default. The run
folder gets ``config.json``, ``model.zip``, ``metrics.json`` (the trained policy and the static
baselines on the same evaluation users), ``learning_curve.png``, TensorBoard logs (``tb/``),
checkpoints (``checkpoints/``, for ``--resume``) and the best model by the periodic evaluation.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList

from agents.evaluation.paired import paired_difference, session_covariates
from agents.evaluation.report import best_static, comparison_table
from agents.evaluation.sessions import EvaluationResult, metrics, run_sessions
from agents.evaluation.tuning import load_or_tune
from agents.policies.agent import ALGORITHMS, EXPORT_FILES, RUN_FILES, TrainedAgent
from agents.policies.baselines import POLICY_NAMES, RERANKER_NAMES, make_baseline
from agents.training.callbacks import (
    AtomicCheckpointCallback,
    PairedEvalCallback,
    last_checkpoint,
    save_model_atomic,
)
from agents.training.config import TrainConfig, parse_train_config, priced_config
from agents.training.curves import plot_curve, read_curve
from agents.training.menu import with_menu
from agents.training.networks import RankingExtractor, RankingPolicy
from agents.training.replay import DictNStepReplayBuffer
from agents.training.run_folder import checkpoint_prefix, own_run_folder
from agents.training.warm_start import warm_start
from encoders.device import deterministic_torch, resolve_device
from encoders.text import catalog_encoder
from envs.sb3 import make_sb3_env
from envs.world import RankingWorld, build_world, data_source
from simulators.core.cli import cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_folder, input_files, write_text_atomic

CURVE_SEED = 30_000
"""The learning curve's sessions are those of seed ``seed + CURVE_SEED`` (no other evaluation's)."""


def build_model(config: TrainConfig, venv: Any, world: RankingWorld) -> BaseAlgorithm:
    """The SB3 algorithm: RecGym's extractor and scorer (``ids``) or a plain MLP (``embedding``)."""
    common = {"seed": config.seed, "device": resolve_device(config.device), "verbose": 0, "gamma": 0.95,
              "tensorboard_log": str(config.folder / "tb"), **config.algorithm_kwargs}  # fmt: skip
    dqn = config.algorithm == "dqn"
    policy: Any
    if config.options.obs_mode == "embedding":
        policy = "MlpPolicy"
        kwargs: dict[str, Any] = {"net_arch": [128, 128] if dqn else {"pi": [128], "vf": [128]}}
    else:
        dim = world.ctr.config.dim if world.ctr is not None else 32
        policy = "MultiInputPolicy" if dqn else RankingPolicy
        kwargs = {"features_extractor_class": RankingExtractor,
                  "features_extractor_kwargs": {"item_table": world.item_table, "dim": dim,
                                                "frozen_towers": config.frozen_towers},
                  "net_arch": [64] if dqn else {"pi": [], "vf": [64]}}  # fmt: skip
    if not dqn:
        kwargs["log_std_init"] = -1.0
    elif isinstance(venv.observation_space, spaces.Dict):  # SB3's n-step replay takes flat observations only
        n_steps = common.pop("n_steps", 1)
        common["replay_buffer_class"] = DictNStepReplayBuffer
        common["replay_buffer_kwargs"] = {"n_steps": n_steps, "gamma": common["gamma"]}
    return ALGORITHMS[config.algorithm](policy, venv, policy_kwargs=kwargs, **common)


def _play(
    policy: Any, config: TrainConfig, seed: int, episodes: int, obs_mode: str = "ids"
) -> EvaluationResult:
    """``policy``'s sessions in the run's env: the same users and session keys for every policy."""
    return run_sessions(policy, replace(config.options, obs_mode=obs_mode), episodes, seed, progress=False)


def tuned_rerankers(config: TrainConfig) -> dict[str, Any]:
    """Every re-ranker a run of ``config`` is compared with, tuned in the fitted simulator on
    users no evaluation meets (or read from the cache)."""
    budget = config.tuning_budget
    return {name: load_or_tune(name, config.options, budget) for name in RERANKER_NAMES}


def evaluate_all(
    agent: TrainedAgent, config: TrainConfig, initial: EvaluationResult | None = None
) -> tuple[dict[str, Any], dict[str, EvaluationResult]]:
    """The trained policy and every static baseline on the same evaluation sessions (seed
    ``seed + 10_000``; the re-rankers tuned first, or read from the cache), each compared paired
    with the best static baseline: the metrics.json object, and the sessions' results."""
    seed = config.seed + 10_000
    results = {name: _play(make_baseline(name), config, seed, config.eval_episodes) for name in POLICY_NAMES}
    knobs = {}
    for name, reranker in tuned_rerankers(config).items():
        results[name] = _play(reranker, config, seed, config.eval_episodes)
        knobs[name] = reranker.knobs
    baselines = {name: metrics(result, config.env, name, seed) for name, result in results.items()}
    results[TRAINED] = _play(agent, config, seed, config.eval_episodes, config.options.obs_mode)
    report: dict[str, Any] = {
        "policy": metrics(results[TRAINED], config.env, str(config.folder), seed),
        "baselines": baselines,
        "tuned_baselines": knobs,
    }
    if initial is not None:
        results[INITIAL] = initial
        report["initial_policy"] = metrics(initial, config.env, str(config.folder), seed)
    reference = best_static(report)
    world = build_world(config.options)
    covariates = session_covariates(world, results[reference].users)  # type: ignore[arg-type]
    report["paired"] = {"reference": reference, "sessions": config.eval_episodes} | {
        name: paired_difference(result, results[reference], covariates).as_json()
        for name, result in results.items()
        if name != reference
    }
    report["paired"]["policy_vs_ctr"] = paired_difference(
        results[TRAINED], results["ctr"], covariates
    ).as_json()
    return report, results


TRAINED, INITIAL = "policy", "initial_policy"
"""The keys of the trained and the warm-started policy in ``metrics.json``'s ``paired``."""


def prepare_caches(config: TrainConfig) -> None:
    """Build (or check) what a training run of ``config`` reads from the cache, without training:
    the world (the fit, the CTR model, the candidates) and the tuned re-rankers it is compared
    with. A study calls it once before spreading its trials, so none of them races to build them."""
    config, _ = priced_config(config)
    _ = build_world(config.options).ctr
    tuned_rerankers(config)


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train (or resume), evaluate against the baselines, write the run folder; return metrics.

    The folder is locked for the run and must not hold another run unless ``overwrite``
    (:func:`agents.run_folder.own_run_folder`)."""
    if not resume:
        config.check_teacher()
    with own_run_folder(config.folder, resume, overwrite) as run_id:
        return _train(config, resume, run_id)


def _train(config: TrainConfig, resume: bool, run_id: str | None) -> dict[str, Any]:
    folder = config.folder
    prefix = checkpoint_prefix(run_id)
    started = time.perf_counter()
    config, scale = priced_config(config)
    config = with_menu(config, folder / "config.json" if resume else None)
    priced = {} if scale is None else {"fairness_scale": asdict(scale)}
    if resume and scale is None:  # a resumed run keeps its weight, and the record of how it was set
        recorded = json.loads((folder / "config.json").read_text()).get("fairness_scale")
        priced = {"fairness_scale": recorded} if recorded else {}
    venv = make_sb3_env(config.options, config.n_envs)
    world: RankingWorld = venv.world
    info: dict[str, Any] = {}
    checkpoint = last_checkpoint(folder, prefix) if resume else None
    with deterministic_torch(config.seed):
        if checkpoint is not None:
            path, steps = checkpoint
            model = ALGORITHMS[config.algorithm].load(  # its logs here, wherever the run was saved from
                path, env=venv, device=resolve_device(config.device), tensorboard_log=str(folder / "tb")
            )
            buffer = folder / "checkpoints" / f"{prefix}_replay_buffer_{steps}_steps.pkl"
            if config.algorithm == "dqn" and buffer.is_file():
                model.load_replay_buffer(buffer)  # type: ignore[attr-defined]
            recorded = json.loads((folder / "config.json").read_text())
            own = set(config.to_json()) | {
                "run_id",
                "resumed_from",
                "fairness_scale",
            }  # (the scale: ``priced``)
            info = {k: v for k, v in recorded.items() if k not in own}  # what the warm start did
            info["resumed_from"] = path.name
        else:
            if resume:
                raise ConfigError(f"--resume {folder}: no checkpoint of this run in {folder / 'checkpoints'}")
            venv.seed(config.seed)
            model = build_model(config, venv, world)
            info = warm_start(model, config, world)
        write_text_atomic(
            folder / "config.json",
            json.dumps({**config.to_json(), "run_id": run_id, **priced, **info}, indent=2) + "\n",
        )
        initial = None
        if checkpoint is None and config.warm_start != "none":
            start = TrainedAgent(model, config.algorithm, config.env, asdict(config.options))
            initial = _play(
                start, config, config.seed + 10_000, config.eval_episodes, config.options.obs_mode
            )
        done_steps = model.num_timesteps

        def curve_point(current: Any) -> tuple[np.ndarray, np.ndarray]:
            agent = TrainedAgent(current, config.algorithm, config.env, asdict(config.options))
            played = _play(
                agent, config, CURVE_SEED + config.seed, config.curve_episodes, config.options.obs_mode
            )
            return played.returns, played.lengths

        evaluator = PairedEvalCallback(
            curve_point, max(config.eval_freq // config.n_envs, 1), log_path=str(folder / "eval"),
            best_model_save_path=str(folder / "best"),
        )  # fmt: skip
        if checkpoint is None:  # the curve starts at the untrained (warm-started) policy
            evaluator.start_curve(model)
        else:  # keep the curve recorded up to the checkpoint
            evaluator.restore(up_to=model.num_timesteps)
        checkpoints = AtomicCheckpointCallback(
            max(config.checkpoint_freq // config.n_envs, 1), str(folder / "checkpoints"),
            name_prefix=prefix, save_replay_buffer=config.algorithm == "dqn",
        )  # fmt: skip
        remaining = config.timesteps - done_steps
        if remaining > 0:
            model.learn(
                remaining, callback=CallbackList([checkpoints, evaluator]), progress_bar=True,
                reset_num_timesteps=checkpoint is None, tb_log_name=config.algorithm,
            )  # fmt: skip
        trained_steps = int(model.num_timesteps)
        kept = evaluator.finish(model)  # a run never ends below its best point, its start included
        if kept is not None:
            model = ALGORITHMS[config.algorithm].load(
                folder / "best" / "best_model.zip", env=venv, device=resolve_device(config.device)
            )
        save_model_atomic(model, folder / "model.zip")
        agent = TrainedAgent(model, config.algorithm, config.env, asdict(config.options))
        report, _ = evaluate_all(agent, config, initial)
    report["timesteps"] = trained_steps
    report["kept"] = {
        "last": kept is None,
        "timesteps": trained_steps if kept is None else kept,
        "curve_sessions": config.curve_episodes,
    }
    report.update(priced)
    logs = world.logs
    report["data"] = {"source": logs.source, "item_text": logs.item_text,
                      "text_encoder": catalog_encoder(logs, "minilm"), "notes": list(logs.notes)}  # fmt: skip
    write_text_atomic(folder / "metrics.json", json.dumps(report, indent=2) + "\n")
    reference = report["paired"]["reference"]
    reranker = tuned_rerankers(config).get(reference) or make_baseline(reference)
    static = _play(reranker, config, CURVE_SEED + config.seed, config.curve_episodes)
    plot_curve(
        config.algorithm.upper(),
        read_curve(folder),
        {reference: static.returns},
        folder / "learning_curve.png",
    )
    write_text_atomic(
        folder / "timing.json", json.dumps({"seconds": round(time.perf_counter() - started, 1)}) + "\n"
    )
    return report


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Train, evaluate, print the comparison table."""
    config, resume, overwrite = parse_train_config(argv)
    data = [config.options.data, config.options.data_path]
    inputs = input_files(*data, config.teacher or None)  # a run never lands on its own teacher
    check_output_folder(config.folder, "--out", inputs=inputs, writes=(*RUN_FILES, *EXPORT_FILES))
    data_source(config.options)  # the logs load (once for the run) before any work: a bad name fails here
    report = train(config, resume, overwrite)
    print(comparison_table(report))
    print(f"run folder: {config.folder}")


if __name__ == "__main__":
    main()
