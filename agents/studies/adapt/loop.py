"""The weekly loop of continuous optimisation (see :mod:`agents.studies.adapt`): week 0's
policy, then deploy, refit, fine-tune and A/B every week; resumable, one process per folder,
several seeds pooled."""

from __future__ import annotations

import json
import shutil
from dataclasses import MISSING, asdict, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.agent import TrainedAgent, copy_model
from agents.serve.logbook import Logbook
from agents.serve.ranker import Ranker
from agents.serve.service import Service
from agents.serve.traffic import LocalClient, simulate_users
from agents.studies.adapt.ab import ab_test, pool
from agents.studies.adapt.config import AdaptConfig
from agents.studies.adapt.guard import canary
from agents.studies.adapt.report import markdown, plot, pooled_markdown, recovery, row
from agents.studies.backend import Backend
from agents.training.callbacks import save_model_atomic
from agents.training.config import DEFAULT_ACTION_MODE, TrainConfig
from agents.training.train import train
from encoders.device import deterministic_torch
from envs.config import EnvConfig
from envs.sb3 import make_sb3_env
from envs.world import build_world, forget_worlds
from simulators.core.errors import ConfigError
from simulators.core.storage import claim_folder, release_folder, write_text_atomic
from simulators.datasets import LoggedData, resolve_data


def initial_policy(config: AdaptConfig, folder: Path) -> Path:
    """Week 0: the run ``--policy`` names (copied in, so the loop's folder holds all it serves), or
    the policy trained in the simulator fitted to the logs (the main job's recipe)."""
    out = folder / "week-00" / "policy"
    if config.policy is not None:
        return copy_model(config.policy, out)
    env = {
        "data": config.data,
        "action_mode": DEFAULT_ACTION_MODE[config.algorithm],
    }  # fairness priced per world
    train(
        TrainConfig(
            config.algorithm, timesteps=config.initial_timesteps, seed=config.seed, env_options=env, out=str(out),
            n_envs=config.n_envs, eval_episodes=config.train_eval_episodes,
            curve_episodes=min(config.train_eval_episodes, 500),
            eval_freq=max(config.initial_timesteps // 4, 512), tuning_sessions=config.tuning_sessions,
            tuning_generations=config.tuning_generations,
        ),
        overwrite=True,
    )  # fmt: skip
    return out


def deploy(run: Path, log_dir: Path, config: AdaptConfig, week: int, day: float) -> dict[str, Any]:
    """Serve ``run`` to the true shop on ``day`` for the week's sessions; the log in ``log_dir``."""
    shutil.rmtree(log_dir, ignore_errors=True)  # a week killed half-way is served again
    ranker = Ranker(
        run, "torch", seed=config.seed * 1_000 + week, catalog_day=day
    )  # the week's launches on sale
    logbook = Logbook(log_dir, ranker.logs, flush_rows=50_000, feedback_timeout_s=1e9)
    try:
        traffic = simulate_users(
            LocalClient(Service(ranker, logbook)), run, config.sessions_per_week, config.seed * 1_000 + week,
            config.temperature, shop=config.data, true_day=day,
        )  # fmt: skip
    finally:
        logbook.close()
    return {
        "sessions": traffic.sessions,
        "slates": traffic.steps,
        "clicks_per_slate": traffic.clicks_per_step,
    }


def refit_data(folder: Path, week: int, window: int, logs: LoggedData | None = None) -> Path:
    """The folder of the last ``window`` weeks' served logs (the catalog and users of the first)
    and, given ``logs`` (``--refit-logs pooled``), the logs the loop started from beside them, all
    in the columns they share (session and slate ids as text, so the two never collide)."""
    data = folder / f"week-{week:02d}" / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "interactions").mkdir(parents=True)
    for name in ("items.parquet", "users.parquet"):
        shutil.copy2(folder / f"week-{week:02d}" / "logs" / name, data / name)
    parts = {
        f"w{w:02d}-{part.name}": part
        for w in range(max(1, week - window + 1), week + 1)
        for part in sorted((folder / f"week-{w:02d}" / "logs" / "interactions").glob("part-*.parquet"))
    }
    if logs is None:
        for name, part in parts.items():
            shutil.copy2(part, data / "interactions" / name)
        return data
    table = logs.interactions
    old = table.assign(
        session_id="logs-" + table["session_id"].astype(str), slate_id="logs-" + table["slate_id"].astype(str),
        timestamp=table["timestamp"].astype(float),
    )  # fmt: skip
    old.to_parquet(data / "interactions" / "logs.parquet", index=False)
    for name, part in parts.items():
        pd.read_parquet(part)[list(old.columns)].to_parquet(data / "interactions" / name, index=False)
    return data


def keep_ctr(env: EnvConfig, out: Path) -> Path:
    """The CTR model of the world ``env`` describes, saved in ``out`` (next week's warm start)."""
    ctr = build_world(env).ctr
    if ctr is None:
        raise ConfigError("agents.adapt warm-starts the CTR model: the policy's env needs candidates='ctr'")
    ctr.save(out)
    return out


def fine_tune(
    run: Path, data: Path, out: Path, config: AdaptConfig, week: int, ctr: Path, day: float
) -> Path:  # fmt: skip
    """``run``'s policy trained on for ``finetune_timesteps`` in the simulator fitted to ``data``,
    its candidates from the catalog on sale on ``day`` ranked by a CTR model refitted on ``data``
    starting from ``ctr`` (kept in ``out/../ctr``)."""
    agent = TrainedAgent.load(run, device="cpu")
    env = replace(agent.env_config, data=str(data), data_path=None, ctr_warm_start=str(ctr), catalog_day=day)
    seed = config.seed * 1_000 + week
    venv = make_sb3_env(env, config.n_envs, reset_seed=seed)
    model = agent.model
    model.set_env(venv)
    model.tensorboard_log = str(out / "tb")  # (it was the input run's own folder, saved with the model)
    with deterministic_torch(seed):
        model.set_random_seed(seed)
        model.learn(total_timesteps=config.finetune_timesteps, reset_num_timesteps=False, progress_bar=True)
    out.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, out / "model.zip")
    keep_ctr(env, out.parent / "ctr")
    saved = json.loads((run / "config.json").read_text())
    # It acts where it is deployed and A/B-tested: on the shop's candidates and features (the
    # generator of the logs), whatever simulator it was tuned in; that one is recorded beside.
    saved["env_options"] = {
        **saved["env_options"],
        "data": config.data,
        "ctr_warm_start": None,
        "catalog_day": None,
    }
    saved["fine_tuned_on"] = str(data)
    saved["ctr_warm_start"] = str(ctr)
    saved["run_id"] = f"{saved.get('run_id') or 'run'}-w{week:02d}"
    write_text_atomic(out / "config.json", json.dumps(saved, indent=2) + "\n")
    return out


def choose(
    current: Path, candidates: dict[str, Path], config: AdaptConfig, week: int, day: float, backend: Backend
) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """The guard's decision on this week's candidates against the deployed ``current`` (a canary
    on ``day``, the start of the next week), and the policy to serve next: the shipped one or
    ``current``. ``--guard none`` ships the fine-tuned candidate unseen."""
    if config.guard == "none":
        unguarded = {"guard": "none", "decision": "ship", "shipped": "adapted", "sessions": 0}
        return unguarded, candidates["adapted"]
    record = canary(current, candidates, config, week, day, backend)
    record["guard"] = "canary"
    return record, candidates[record["shipped"]] if record["shipped"] else current


def deployed_next(folder: Path, week: dict[str, Any]) -> Path:
    """The policy a finished week deploys next (its guard's choice; the fine-tuned one in records
    from before the guard)."""
    deployed = Path(week.get("deployed", f"week-{week['week']:02d}/policy"))
    return deployed if deployed.is_absolute() else folder / deployed


def adapt(config: AdaptConfig, resume: bool = False, backend: Backend | None = None) -> dict[str, Any]:
    """Run (or continue) the weekly loop of the module docstring, each week's A/B arms trials of
    ``backend`` (the numbers are the same on every backend); return the report."""
    folder = Path(config.out)
    backend = backend or Backend()
    handle = claim_folder(folder, f"--out {folder}: another agents.adapt run is using this folder")
    try:
        check_folder(config, folder, resume)  # before Ray starts
        if config.seeds == 1:
            with backend.running():
                return _adapt(config, folder, backend)
        return _replicated(config, folder, backend)
    finally:
        release_folder(handle)


def replicate(config: AdaptConfig) -> dict[str, Any]:
    """One seed's loop in its own folder (a trial of :func:`_replicated`; its A/B arms serial)."""
    folder = Path(config.out)
    folder.mkdir(parents=True, exist_ok=True)
    return _adapt(config, folder, Backend())


def _replicated(config: AdaptConfig, folder: Path, backend: Backend) -> dict[str, Any]:
    """``config.seeds`` loops as trials of ``backend``, then the pooled table, JSON and plot."""
    write_text_atomic(folder / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    seeds = [config.seed + i for i in range(config.seeds)]
    trials = [(replace(config, seed=s, seeds=1, out=str(folder / f"seed-{s}")),) for s in seeds]
    with backend.running():  # up front: a bad --address fails before any training
        # The first seed's loop runs here first: it builds what every loop reads (the fit, the CTR
        # models, the tuned re-rankers, each week's candidates), so no two trials race for them.
        reports = backend.map(replicate, trials, first_here=True)
    pooled = pool(reports)
    report = {
        "config": asdict(config),
        "seeds": seeds,
        "pooled": pooled,
        "runs": [r["weeks"] for r in reports],
    }
    write_text_atomic(folder / "adapt.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(folder / "adapt.md", pooled_markdown(pooled))
    plot(pooled["weeks"], folder / "adaptation.png")
    return report


def check_folder(config: AdaptConfig, folder: Path, resume: bool) -> None:
    """Refuse, before any work, a folder that holds another run, or a run without ``--resume``."""
    saved = folder / "config.json"
    # A run's options as JSON holds them, with the defaults of options added since it was written.
    defaults = {f.name: f.default for f in fields(AdaptConfig) if f.default is not MISSING}
    wanted = json.loads(json.dumps(asdict(config)))
    if saved.is_file() and {**defaults, **json.loads(saved.read_text())} != wanted:
        if not resume:
            raise ConfigError(f"--out {folder}: holds another adapt run; choose another --out or --resume it")
        raise ConfigError(f"--resume {folder}: its run had other options ({saved}); pass the same ones")
    if any([*folder.glob("week-*/done.json"), *folder.glob("seed-*/week-*/done.json")]) and not resume:
        raise ConfigError(f"--out {folder}: holds an adapt run; pass --resume to continue it")


def _adapt(config: AdaptConfig, folder: Path, backend: Backend) -> dict[str, Any]:
    saved = folder / "config.json"
    write_text_atomic(saved, json.dumps(asdict(config), indent=2) + "\n")
    truth = resolve_data(config.data).truth
    assert truth is not None  # AdaptConfig checks that the data have a true shop to deploy to
    logs_end = float(truth.config.days)
    static = load_or_tune(
        "tuned-weights", EnvConfig(data=config.data),
        TuningBudget(sessions=config.tuning_sessions, cem_generations=config.tuning_generations),
    )  # fmt: skip
    weeks: list[dict[str, Any]] = []
    planted = {
        f"planted-{i}": folder / "planted" / f"planted-{i}" for i in range(1, len(config.candidates) + 1)
    }
    for given, out in zip(config.candidates, planted.values(), strict=True):
        if not (out / "model.zip").is_file():
            copy_model(Path(given), out)
    start = folder / "week-00" / "done.json"
    if not start.is_file():
        run = initial_policy(config, folder)
        record = {
            "week": 0,
            "day": logs_end,
            "ab": ab_test({"frozen": run, **planted, "static": static}, config, 0, logs_end, backend),
        }
        write_text_atomic(start, json.dumps(record, indent=2) + "\n")
    weeks.append(json.loads(start.read_text()))
    frozen = current = folder / "week-00" / "policy"
    if not (folder / "week-00" / "ctr" / "model.pt").is_file():  # the first refit's warm start
        keep_ctr(EnvConfig(data=config.data), folder / "week-00" / "ctr")
    for week in range(1, config.weeks + 1):
        here = folder / f"week-{week:02d}"
        done = here / "done.json"
        if not done.is_file():
            deploy_day, ab_day = logs_end + 7 * (week - 1) + 3.5, logs_end + 7 * week + 3.5
            served = deploy(current, here / "logs", config, week, deploy_day)
            pooled = resolve_data(config.data).logs if config.refit_logs == "pooled" else None
            data = refit_data(folder, week, config.window_weeks, pooled)
            last_ctr = folder / f"week-{week - 1:02d}" / "ctr"  # the week ends on logs_end + 7 * week
            tuned = fine_tune(current, data, here / "policy", config, week, last_ctr, logs_end + 7 * week)
            guard, deployed = choose(
                current, {"adapted": tuned, **planted}, config, week, logs_end + 7 * week, backend
            )
            policies = {"frozen": frozen, "incumbent": current, "adapted": tuned, "deployed": deployed,
                        **planted, "static": static}  # fmt: skip
            record = {"week": week, "deploy_day": deploy_day, "day": ab_day, "served": served, "guard": guard,
                      "deployed": str(deployed.relative_to(folder)),
                      "ab": ab_test(policies, config, week, ab_day, backend)}  # fmt: skip
            write_text_atomic(done, json.dumps(record, indent=2) + "\n")
            print(row(record), flush=True)
            forget_worlds()  # this week's worlds (the true shop, the served and refitted ones) are not read again
        weeks.append(json.loads(done.read_text()))
        current = deployed_next(folder, weeks[-1])
    recovered = recovery(weeks)
    report = {"config": asdict(config), "weeks": weeks, "recovery": recovered}
    write_text_atomic(folder / "adapt.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(folder / "adapt.md", markdown(weeks, recovered))
    plot(weeks, folder / "adaptation.png")
    return report
