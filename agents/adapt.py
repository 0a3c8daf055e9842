"""``python -m agents.adapt --weeks W --out DIR``: keep optimising a policy as tastes drift.

Week 0 trains a policy in the simulator fitted to the logs (``--data``, default ``shop:drift``,
whose true tastes move: :class:`~simulators.shop.world.ShopDrift`). Then, every simulated week
``w``:

1. **Deploy** the current policy to the true shop as it is that week (``true_day`` at the
   week's middle, counted from the end of the logs) through the serving path's own ranking and
   logging (:class:`~agents.serve.service.Service`, without HTTP): ``--sessions-per-week``
   sessions at ``--temperature``, so the week's log carries exact propensities. The candidates
   are the catalog on sale that day: on ``shop:drift`` they include the items launched since
   the logs, which no log has shown yet (cold start).
2. **Refit** on the last ``--window-weeks`` weeks of served logs: the simulator afresh, the CTR
   model warm-started from last week's (``ctr_warm_start``; week 1 starts from the one fitted to
   the logs). Each week keeps its CTR model in ``week-WW/ctr/`` for the next.
3. **Fine-tune** the current policy in the refitted simulator for ``--finetune-timesteps`` (its
   candidates from the refitted CTR model); it is then served, as before, on the shop's own
   candidate generator, where the A/B also plays it.
4. **A/B** the fine-tuned policy against the frozen week-0 policy and the best static re-ranker
   (``tuned-weights``, tuned once in the week-0 simulator) on the next week's users in the true
   shop: the same sessions for each, engagement per session (clicks + purchase weight x
   purchases, no fairness term) with 95% CIs, and the paired difference adapted - frozen.

Each week's results land in ``DIR/week-WW/`` and its ``done.json`` last, so a killed run resumes
where it stopped (``--resume``); one process uses a folder at a time. Writes ``adapt.json``, the
per-week table ``adapt.md`` and ``adaptation.png`` (the curves of both policies and the static one).

``--seeds N`` runs N independent loops (``DIR/seed-S/``, each as above) and pools them: a single
loop's paired CI covers the A/B users only, not the randomness of training, which dominates.
Where they run: ``--backend ray [--address ADDR] [--cpus C]`` makes each seed's loop (or, with
one seed, each A/B arm) a Ray task; the numbers are those of the serial run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.backend import Backend, add_backend_arguments, backend_of
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError, check_seed
from simulators.core.storage import (
    check_output_folder,
    claim_folder,
    release_folder,
    write_text_atomic,
)

AB_SEED = 50_000
"""Seed of the A/B users of week ``w`` is ``AB_SEED + w`` (no training or tuning uses them)."""


@dataclass(frozen=True)
class AdaptConfig:
    """One continuous-optimisation run (the flags of ``python -m agents.adapt``)."""

    out: str
    """Folder of the run (its weeks, table, JSON and plot)."""
    env: str = "ecommerce-v0"
    """Registered env id."""
    data: str = "shop:drift"
    """The shop whose logs start it (``shop:drift``: tastes move; ``shop``: they do not)."""
    weeks: int = 4
    """Simulated weeks after the logs."""
    algorithm: str = "ppo"
    """SB3 algorithm (ppo, a2c; dqn acts by discrete strategies)."""
    initial_timesteps: int = 30_000
    """Training steps of the week-0 policy."""
    finetune_timesteps: int = 10_000
    """Fine-tuning steps per week in the refitted simulator."""
    sessions_per_week: int = 2_000
    """Sessions the deployed policy serves each week (its log)."""
    eval_sessions: int = 1_000
    """Sessions per policy in each week's A/B."""
    temperature: float = 1.0
    """Sampling temperature of the deployed policy (its exploration, so the log has support)."""
    window_weeks: int = 2
    """Weeks of served logs each refit reads (the most recent)."""
    n_envs: int = 16
    """Parallel users while training and fine-tuning."""
    tuning_sessions: int = 256
    """Sessions per candidate setting when the static re-rankers are tuned (week 0)."""
    tuning_generations: int = 5
    """CEM generations of tuned-weights."""
    train_eval_episodes: int = 500
    """Sessions per policy in week 0's training comparison."""
    seed: int = 0
    """Seed of training and deployments (the A/B users of a week are the same for every seed)."""
    seeds: int = 1
    """Independent replicates of the loop (seeds ``seed``, ``seed + 1``, ...), each a trial of
    ``--backend`` in ``DIR/seed-S/``; the report pools them (Student-t CIs across seeds)."""

    def __post_init__(self) -> None:
        check_seed("--seed", self.seed)
        for name in ("weeks", "seeds", "initial_timesteps", "finetune_timesteps", "sessions_per_week", "eval_sessions",
                     "window_weeks", "n_envs", "tuning_sessions", "tuning_generations", "train_eval_episodes"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.algorithm not in ("ppo", "a2c", "dqn"):
            raise ConfigError(f"--algorithm must be ppo, a2c or dqn, got {self.algorithm!r}")
        if not (self.temperature == 0 or 0.05 <= self.temperature <= 100):
            raise ConfigError(f"--temperature must be 0 or lie in [0.05, 100], got {self.temperature}")
        if self.seeds > 1:
            check_seed("--seed + --seeds - 1 (the last loop's seed)", self.seed + self.seeds - 1)
        if self.data.partition(":")[0] != "shop" or Path(self.data).exists():
            raise ConfigError(
                f"--data {self.data!r}: adapting needs the true shop to deploy to (shop or shop:drift)"
            )


def initial_policy(config: AdaptConfig, folder: Path) -> Path:
    """Week 0: the policy trained in the simulator fitted to the logs (the main job's recipe)."""
    from agents.config import DEFAULT_ACTION_MODE, DEFAULT_FAIRNESS_LAMBDA, TrainConfig
    from agents.train import train
    from envs.config import EnvConfig

    out = folder / "week-00" / "policy"
    env = EnvConfig(
        data=config.data,
        action_mode=DEFAULT_ACTION_MODE[config.algorithm],
        fairness_lambda=DEFAULT_FAIRNESS_LAMBDA,
    )
    train(
        TrainConfig(
            config.algorithm, timesteps=config.initial_timesteps, seed=config.seed, env_options=env, out=str(out),
            n_envs=config.n_envs, eval_episodes=config.train_eval_episodes,
            eval_freq=max(config.initial_timesteps // 4, 512), tuning_sessions=config.tuning_sessions,
            tuning_generations=config.tuning_generations,
        ),
        overwrite=True,
    )  # fmt: skip
    return out


def deploy(run: Path, log_dir: Path, config: AdaptConfig, week: int, day: float) -> dict[str, Any]:
    """Serve ``run`` to the true shop on ``day`` for the week's sessions; the log in ``log_dir``."""
    from agents.serve.logbook import Logbook
    from agents.serve.ranker import Ranker
    from agents.serve.service import Service
    from agents.serve.traffic import LocalClient, simulate_users

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


def refit_data(folder: Path, week: int, window: int) -> Path:
    """The folder of the last ``window`` weeks' served logs (the catalog and users of the first)."""
    data = folder / f"week-{week:02d}" / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "interactions").mkdir(parents=True)
    for name in ("items.parquet", "users.parquet"):
        shutil.copy2(folder / f"week-{week:02d}" / "logs" / name, data / name)
    for w in range(max(1, week - window + 1), week + 1):
        for part in sorted((folder / f"week-{w:02d}" / "logs" / "interactions").glob("part-*.parquet")):
            shutil.copy2(part, data / "interactions" / f"w{w:02d}-{part.name}")
    return data


def keep_ctr(options: dict[str, Any], out: Path) -> Path:
    """The CTR model of the world ``options`` describe, saved in ``out`` (next week's warm start)."""
    from envs.config import env_config
    from envs.world import build_world

    ctr = build_world(env_config(**options)).ctr
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
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.agent import TrainedAgent
    from agents.callbacks import save_model_atomic
    from encoders.device import deterministic_torch
    from envs.config import known_options
    from envs.sb3 import SB3VecEnvAdapter
    from envs.vector import RankingVectorEnv

    agent = TrainedAgent.load(run, device="cpu")
    options = known_options(agent.env_options) | {
        "data": str(data),
        "ctr_warm_start": str(ctr),
        "catalog_day": day,
    }
    seed = config.seed * 1_000 + week
    venv = VecMonitor(SB3VecEnvAdapter(RankingVectorEnv(num_envs=config.n_envs, **options), reset_seed=seed))
    model = agent.model
    model.set_env(venv)
    with deterministic_torch(seed):
        model.set_random_seed(seed)
        model.learn(total_timesteps=config.finetune_timesteps, reset_num_timesteps=False, progress_bar=True)
    out.mkdir(parents=True, exist_ok=True)
    save_model_atomic(model, out / "model.zip")
    keep_ctr(options, out.parent / "ctr")
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


def play_arm(policy: Any, config: AdaptConfig, week: int, day: float) -> tuple[np.ndarray, float | None]:
    """One A/B arm: ``policy`` (a run folder, or a re-ranker) on week ``week``'s true-shop sessions
    of ``day``: each session's engagement, and the protected exposure share."""
    from agents.agent import TrainedAgent
    from agents.evaluate import policy_env_options
    from agents.sessions import run_sessions

    if isinstance(policy, Path):
        policy = TrainedAgent.load(policy, device="cpu")
    options = {**policy_env_options(policy), "fairness_lambda": 0.0, "user_fairness_lambda": 0.0,
               "data": config.data, "simulator": "true", "true_day": day}  # fmt: skip
    result = run_sessions(policy, config.env, config.eval_sessions, AB_SEED + week, progress=False, **options)
    return result.returns, result.fairness.get("protected_exposure_share")


def ab_test(
    policies: dict[str, Any], config: AdaptConfig, week: int, day: float, backend: Backend | None = None
) -> dict[str, Any]:
    """Each policy (a run folder or a re-ranker) on the same true-shop sessions of ``day``, each arm
    a trial of ``backend``: engagement with CIs, and the paired adapted - frozen."""
    from simulators.core.metrics import mean_ci95

    names = list(policies)
    played = (backend or Backend()).map(
        play_arm, [(policies[name], config, week, day) for name in names], first_here=False
    )
    results: dict[str, Any] = {}
    engagement = {name: returns for name, (returns, _) in zip(names, played, strict=True)}
    for name, (returns, protected) in zip(names, played, strict=True):
        mean, low, high = mean_ci95(returns)
        results[name] = {"engagement": mean, "ci95": [low, high], "protected_exposure_share": protected}
    if "adapted" in engagement:
        mean, low, high = mean_ci95(engagement["adapted"] - engagement["frozen"])
        results["adapted_minus_frozen"] = {"mean": mean, "ci95": [low, high]}
    return results


def adapt(config: AdaptConfig, resume: bool = False, backend: Backend | None = None) -> dict[str, Any]:
    """Run (or continue) the weekly loop of the module docstring, each week's A/B arms trials of
    ``backend`` (the numbers are the same on every backend); return the report."""
    folder = Path(config.out)
    backend = backend or Backend()
    handle = claim_folder(folder, f"--out {folder}: another agents.adapt run is using this folder")
    try:
        _check_folder(config, folder, resume)  # before Ray starts
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


def pool(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Per week, each arm's engagement averaged over the seeds, and the paired adapted - frozen,
    both with Student-t 95% CIs across seeds; the recovery of the mean curves."""
    from simulators.core.metrics import seed_ci95

    weeks = []
    for rows in zip(*(r["weeks"] for r in reports), strict=True):
        ab: dict[str, Any] = {}
        for name in ("frozen", "adapted", "static"):
            if name in rows[0]["ab"]:
                values = np.array([row["ab"][name]["engagement"] for row in rows])
                mean, low, high = seed_ci95(values)
                if np.all(values == values[0]):  # one policy for every seed (the static one): its users' CI
                    low, high = rows[0]["ab"][name]["ci95"]
                ab[name] = {"engagement": mean, "ci95": [low, high], "by_seed": values.tolist()}
        if "adapted" in ab:
            diffs = np.array([row["ab"]["adapted_minus_frozen"]["mean"] for row in rows])
            mean, low, high = seed_ci95(diffs)
            ab["adapted_minus_frozen"] = {"mean": mean, "ci95": [low, high], "by_seed": diffs.tolist()}
        weeks.append({"week": rows[0]["week"], "day": rows[0]["day"], "ab": ab})
    return {"weeks": weeks, "recovery": recovery(weeks), "seeds": len(reports)}


def pooled_markdown(pooled: dict[str, Any]) -> str:
    """The per-week table of the pooled seeds."""
    head = markdown(pooled["weeks"], pooled["recovery"])
    return head.replace("(95% CIs)", f"(mean of {pooled['seeds']} seeds, Student-t 95% CIs across seeds)")


def _check_folder(config: AdaptConfig, folder: Path, resume: bool) -> None:
    saved = folder / "config.json"
    if saved.is_file() and json.loads(saved.read_text()) != asdict(config):
        if not resume:
            raise ConfigError(f"--out {folder}: holds another adapt run; choose another --out or --resume it")
        raise ConfigError(f"--resume {folder}: its run had other options ({saved}); pass the same ones")
    if any([*folder.glob("week-*/done.json"), *folder.glob("seed-*/week-*/done.json")]) and not resume:
        raise ConfigError(f"--out {folder}: holds an adapt run; pass --resume to continue it")


def _adapt(config: AdaptConfig, folder: Path, backend: Backend) -> dict[str, Any]:
    from agents.tuning import TuningBudget, load_or_tune
    from envs.config import EnvConfig
    from envs.world import forget_worlds
    from simulators.datasets import load_logs
    from simulators.datasets.shop import shop_config_of

    saved = folder / "config.json"
    write_text_atomic(saved, json.dumps(asdict(config), indent=2) + "\n")
    logs_end = float(shop_config_of(load_logs(config.data)).days)
    static = load_or_tune(
        "tuned-weights", EnvConfig(data=config.data),
        TuningBudget(sessions=config.tuning_sessions, cem_generations=config.tuning_generations),
    )  # fmt: skip
    weeks: list[dict[str, Any]] = []
    start = folder / "week-00" / "done.json"
    if not start.is_file():
        run = initial_policy(config, folder)
        record = {
            "week": 0,
            "day": logs_end,
            "ab": ab_test({"frozen": run, "static": static}, config, 0, logs_end, backend),
        }
        write_text_atomic(start, json.dumps(record, indent=2) + "\n")
    weeks.append(json.loads(start.read_text()))
    frozen = current = folder / "week-00" / "policy"
    if not (folder / "week-00" / "ctr" / "model.pt").is_file():  # the first refit's warm start
        keep_ctr({"data": config.data}, folder / "week-00" / "ctr")
    for week in range(1, config.weeks + 1):
        here = folder / f"week-{week:02d}"
        done = here / "done.json"
        if not done.is_file():
            deploy_day, ab_day = logs_end + 7 * (week - 1) + 3.5, logs_end + 7 * week + 3.5
            served = deploy(current, here / "logs", config, week, deploy_day)
            data = refit_data(folder, week, config.window_weeks)
            last_ctr = folder / f"week-{week - 1:02d}" / "ctr"  # the week ends on logs_end + 7 * week
            tuned = fine_tune(current, data, here / "policy", config, week, last_ctr, logs_end + 7 * week)
            policies = {"frozen": frozen, "adapted": tuned, "static": static}
            record = {"week": week, "deploy_day": deploy_day, "day": ab_day, "served": served,
                      "ab": ab_test(policies, config, week, ab_day, backend)}  # fmt: skip
            write_text_atomic(done, json.dumps(record, indent=2) + "\n")
            print(_row(record), flush=True)
            forget_worlds()  # this week's worlds (the true shop, the served and refitted ones) are not read again
        weeks.append(json.loads(done.read_text()))
        current = here / "policy"
    recovered = recovery(weeks)
    report = {"config": asdict(config), "weeks": weeks, "recovery": recovered}
    write_text_atomic(folder / "adapt.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(folder / "adapt.md", markdown(weeks, recovered))
    plot(weeks, folder / "adaptation.png")
    return report


def recovery(weeks: list[dict[str, Any]]) -> dict[str, Any]:
    """The week-0 lift over the static re-ranker, and each week's lift of both policies as its share."""

    def lift(week: dict[str, Any], name: str) -> float | None:
        ab = week["ab"]
        return ab[name]["engagement"] - ab["static"]["engagement"] if name in ab else None

    before = lift(weeks[0], "frozen")
    shares = []
    for week in weeks[1:]:
        frozen, adapted = lift(week, "frozen"), lift(week, "adapted")
        shares.append({
            "week": week["week"], "frozen_lift": frozen, "adapted_lift": adapted,
            "frozen_share": frozen / before if before and frozen is not None else None,
            "adapted_share": adapted / before if before and adapted is not None else None,
        })  # fmt: skip
    return {"pre_drift_lift": before, "by_week": shares}


def _row(week: dict[str, Any]) -> str:
    ab = week["ab"]

    def cell(name: str) -> str:
        if name not in ab:
            return ""
        e = ab[name]
        return f"{e['engagement']:.2f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"

    diff = ab.get("adapted_minus_frozen")
    paired = f"{diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]" if diff else ""
    return f"| {week['week']} | {week['day']:.1f} | {cell('frozen')} | {cell('adapted')} | {cell('static')} | {paired} |"


def markdown(weeks: list[dict[str, Any]], recovered: dict[str, Any]) -> str:
    """The per-week table."""
    lines = [
        "| week | day | frozen | adapted | best static (tuned-weights) | adapted - frozen (paired) |",
        "| --- | --- | --- | --- | --- | --- |",
        *[_row(week) for week in weeks],
        "",
        f"Engagement per session in the true shop (95% CIs). Week 0's lift of the policy over the best static "
        f"re-ranker: {recovered['pre_drift_lift']:+.2f}.",
    ]
    return "\n".join(lines) + "\n"


def plot(weeks: list[dict[str, Any]], path: Path) -> None:
    """Left: engagement per week of the frozen, adapted and static policies with their CIs;
    right: the paired difference adapted - frozen with its CI (what the A/B decides on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.report import save_png

    figure, (levels, paired) = plt.subplots(1, 2, figsize=(10.0, 3.8))
    for name, colour in (("frozen", "tab:blue"), ("adapted", "tab:orange"), ("static", "tab:grey")):
        rows = [(w["week"], w["ab"][name]) for w in weeks if name in w["ab"]]
        if not rows:
            continue
        x = np.array([r[0] for r in rows])
        levels.plot(x, [r[1]["engagement"] for r in rows], marker="o", color=colour, label=name)
        levels.fill_between(
            x, [r[1]["ci95"][0] for r in rows], [r[1]["ci95"][1] for r in rows], color=colour, alpha=0.15
        )
    levels.set_xlabel("simulated week after the logs")
    levels.set_ylabel("engagement per session (true shop)")
    levels.legend(frameon=False)
    diffs = [(w["week"], w["ab"]["adapted_minus_frozen"]) for w in weeks if "adapted_minus_frozen" in w["ab"]]
    if diffs:
        x = np.array([d[0] for d in diffs])
        mean = np.array([d[1]["mean"] for d in diffs])
        low, high = np.array([d[1]["ci95"][0] for d in diffs]), np.array([d[1]["ci95"][1] for d in diffs])
        paired.errorbar(x, mean, yerr=[mean - low, high - mean], marker="o", color="tab:orange", capsize=4)
    paired.axhline(0.0, color="black", linewidth=0.8)
    for axis in (levels, paired):
        axis.set_xticks([w["week"] for w in weeks])
    paired.set_xlabel("simulated week after the logs")
    paired.set_ylabel("adapted - frozen (paired, 95% CI)")
    figure.tight_layout()
    save_png(figure, path, dpi=120)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Check the options, then run (or resume) the weekly loop."""
    parser = ArgumentParser(prog="python -m agents.adapt", description=__doc__.splitlines()[0])
    add_config_arguments(parser, AdaptConfig)
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last finished week"
    )
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    config = AdaptConfig(**config_kwargs(args, AdaptConfig))
    backend = backend_of(args)
    check_output_folder(config.out, "--out")
    report = adapt(config, resume=args.resume, backend=backend)
    pooled = report.get("pooled")
    print(pooled_markdown(pooled) if pooled else markdown(report["weeks"], report["recovery"]))


if __name__ == "__main__":
    main()
