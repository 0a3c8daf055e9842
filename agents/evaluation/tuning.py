"""Tuning the static re-rankers (:class:`agents.baselines.StaticReranker`) in the fitted simulator.

``best-fixed`` tries every discrete strategy; ``tuned-weights`` searches the constant
``weights`` action by the cross-entropy method (CEM); ``mmr`` tries a grid of trade-offs and
both similarities. Every candidate meets the same tuning users (common random numbers), drawn
from seeds that no evaluation uses (:data:`TUNING_SEED`), always in the *fitted* simulator,
whatever the simulator the policy is later evaluated in. The tuned knobs are cached per world
(``$RECGYM_CACHE/baselines``), like the other fitted artefacts: each ``NAME.json`` entry has a
``NAME.manifest.json`` of its sha256 beside it, and an entry that changed, was cut short or holds
knobs that are not the re-ranker's is reported in one line and tuned again, never used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agents.evaluation.sessions import run_sessions
from agents.policies.baselines import MMR_SIMILARITIES, RERANKER_NAMES, StaticReranker
from envs.candidates import unit_rows
from envs.config import STRATEGIES, WEIGHTS, EnvConfig
from envs.world import build_world, world_key
from simulators.core.errors import ConfigError
from simulators.core.storage import cache_dir, content_key, load_or_build, manifest_beside, write_text_atomic

TUNING_VERSION = 3
"""Bump when tuning changes, so cached knobs are tuned again."""
TUNING_SEED = 2**31
"""First seed of the tuning users. Every config's seed is at most ``MAX_SEED`` (below it by
100,000), so evaluation seeds (a run's ``seed + 10_000`` and ``seed + 30_000`` plus a slot,
``agents.evaluate --seed``) never reach it."""
MMR_LAMBDAS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""The trade-offs ``mmr`` tries (1 = greedy pCTR)."""


@dataclass(frozen=True)
class TuningBudget:
    """How hard the tuning searches (the main job's default; tests pass smaller ones)."""

    sessions: int = 256
    """Sessions per candidate (the same users for every candidate)."""
    cem_population: int = 24
    """Candidates per CEM generation."""
    cem_elite: int = 6
    """The best candidates that set the next generation's mean and spread."""
    cem_generations: int = 5
    """CEM generations."""

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.cem_generations < 1 or not 1 <= self.cem_elite <= self.cem_population:
            raise ConfigError(f"tuning budget out of range: {self}")


def tuning_env(config: EnvConfig) -> EnvConfig:
    """The env the re-rankers are tuned in: ``config`` in the fitted simulator, ``ids``
    observations (each policy plays in its own action mode), without the ensemble's pessimism
    (an agent's training device: the static baselines are the best for engagement in the fit)."""
    return replace(config, simulator="fitted", true_day=None, obs_mode="ids", render_mode=None, pessimism=0.0)


def _mean_return(policy: StaticReranker, config: EnvConfig, sessions: int, seed: int) -> float:
    result = run_sessions(policy, tuning_env(config), sessions, seed, progress=False)
    return float(result.returns.mean())


def tune_best_fixed(
    base: StaticReranker, config: EnvConfig, budget: TuningBudget
) -> tuple[StaticReranker, dict[str, float]]:
    """Every discrete strategy on the tuning users; the best one, and each strategy's return."""
    returns = {}
    for index, name in enumerate(tqdm(STRATEGIES, desc="tune best-fixed", unit="strategy")):
        returns[name] = _mean_return(replace(base, strategy=index), config, budget.sessions, TUNING_SEED)
    best = max(returns, key=lambda name: returns[name])
    return replace(base, strategy=STRATEGIES.index(best)), returns


def tune_weights(
    base: StaticReranker, config: EnvConfig, budget: TuningBudget, rng: np.random.Generator
) -> tuple[StaticReranker, dict[str, Any]]:
    """CEM over the constant ``weights`` action, starting at greedy pCTR; the final pick is the
    best of the last elite on fresh tuning users (so CEM's selection noise does not decide)."""
    mean = np.zeros(len(WEIGHTS))
    mean[WEIGHTS.index("pctr")] = 1.0
    spread = np.full(len(WEIGHTS), 0.5)
    history = []
    elite = mean[None, :]
    for generation in tqdm(range(budget.cem_generations), desc="tune tuned-weights", unit="generation"):
        population = np.clip(
            mean + spread * rng.standard_normal((budget.cem_population, len(WEIGHTS))), -1, 1
        )
        population[0] = mean  # the current mean stays in the race
        scores = np.array(
            [
                _mean_return(
                    replace(base, weights=tuple(map(float, w))), config, budget.sessions, TUNING_SEED
                )
                for w in population
            ]
        )
        order = np.argsort(-scores, kind="stable")
        elite = population[order[: budget.cem_elite]]
        mean, spread = elite.mean(axis=0), np.maximum(elite.std(axis=0), 0.05)
        history.append(
            {"generation": generation, "best": float(scores[order[0]]), "mean": float(scores.mean())}
        )
    finalists = [replace(base, weights=tuple(map(float, w))) for w in elite]
    confirm = [_mean_return(p, config, budget.sessions, TUNING_SEED + 1_000) for p in finalists]
    best = finalists[int(np.argmax(confirm))]
    return best, {"cem": history, "confirmed_return": float(max(confirm))}


def tune_mmr(
    base: StaticReranker, config: EnvConfig, budget: TuningBudget
) -> tuple[StaticReranker, dict[str, float]]:
    """The grid of trade-offs and similarities; the best pair and each pair's return."""
    returns = {}
    grid = [(lam, sim) for sim in MMR_SIMILARITIES for lam in MMR_LAMBDAS]
    for lam, sim in tqdm(grid, desc="tune mmr", unit="setting"):
        policy = replace(base, mmr_lambda=lam, similarity=sim)
        returns[f"{sim}@{lam:g}"] = _mean_return(policy, config, budget.sessions, TUNING_SEED)
    best_lambda, best_similarity = max(grid, key=lambda pair: returns[f"{pair[1]}@{pair[0]:g}"])
    return replace(base, mmr_lambda=best_lambda, similarity=best_similarity), returns


def _cache_file(name: str, config: EnvConfig, budget: TuningBudget) -> Path:
    """The cache entry of ``name`` tuned for ``config``'s world (its key, :func:`envs.world.world_key`),
    the options that change a session's reward (slate, cap, weights; in the retention env its
    horizon and return bonus: the re-rankers are then tuned for a user's horizon) and the budget."""
    env = tuning_env(config)
    session = {k: v for k, v in asdict(env).items() if k in SESSION_OPTIONS}
    if env.horizon_days > 0:  # tuned for a user's horizon, not a session (keys without it stay as they were)
        session |= {"horizon_days": env.horizon_days, "return_bonus": env.return_bonus}
        if not env.return_effects:
            session["return_effects"] = False
    key = content_key("tuned", TUNING_VERSION, world_key(env), name, session, asdict(budget))
    return cache_dir("baselines") / f"{key}.json"


SESSION_OPTIONS = ("slate_size", "max_steps", "purchase_weight", "fairness_lambda", "fairness_target",
                   "user_fairness_lambda")  # fmt: skip
"""The env options beyond the world's own that change what a re-ranker earns."""


KNOB_NAMES = {"best-fixed": {"strategy"}, "tuned-weights": {"weights"}, "mmr": {"mmr_lambda", "similarity"}}
"""The knobs each re-ranker's cache entry holds, and only those."""


def _cached(base: StaticReranker, file: Path) -> StaticReranker:
    """The re-ranker a cache entry holds; ``ValueError`` saying what is wrong with it, in a few words."""
    record = json.loads(file.read_text(encoding="utf-8"))
    knobs = record["knobs"]
    if record.get("name") != base.name:
        raise ValueError(f"it holds the knobs of {record.get('name')!r}, not {base.name!r}")
    if not isinstance(knobs, dict) or set(knobs) != KNOB_NAMES[base.name]:
        raise ValueError(f"its knobs are not {sorted(KNOB_NAMES[base.name])}")
    strategy = knobs.get("strategy", 0)
    if isinstance(strategy, bool) or not isinstance(strategy, int):
        raise ValueError(f"its strategy {strategy!r} is not an integer")
    return _with_knobs(base, knobs)  # StaticReranker checks each knob's range (ConfigError, a ValueError)


def load_or_tune(name: str, config: EnvConfig, budget: TuningBudget | None = None) -> StaticReranker:
    """The re-ranker ``name`` (:data:`~agents.baselines.RERANKER_NAMES`) tuned for the world of
    ``config``, from the cache or tuned (and cached) now. It acts greedily (temperature 0).

    A cache entry is used only when its manifest vouches for its bytes and its knobs are the
    re-ranker's; any other entry is reported (``warning: rebuilding the cached tuned baseline``)
    and tuned again."""
    if name not in RERANKER_NAMES:
        raise ConfigError(f"re-ranker must be one of {RERANKER_NAMES}, got {name!r}")
    budget = budget or TuningBudget()
    world = build_world(tuning_env(config))
    vectors = unit_rows(np.asarray(world.item_table, dtype=np.float64))
    base = StaticReranker(
        name, item_topic=np.asarray(world.simulator.item_topic), item_vectors=vectors,
        weights=(1.0, 0, 0, 0, 0, 0, 0), purchase_weight=config.purchase_weight, slate_size=config.slate_size,
    )  # fmt: skip
    file = _cache_file(name, config, budget)

    def tune() -> StaticReranker:
        knobs: dict[str, Any]
        if name == "best-fixed":
            policy, report = tune_best_fixed(base, config, budget)
            knobs = {"strategy": policy.strategy}
        elif name == "tuned-weights":
            policy, report = tune_weights(base, config, budget, np.random.default_rng(TUNING_SEED))
            knobs = {"weights": list(policy.weights)}
        else:
            policy, report = tune_mmr(base, config, budget)
            knobs = {"mmr_lambda": policy.mmr_lambda, "similarity": policy.similarity}
        record = {"name": name, "knobs": knobs, "report": report}
        write_text_atomic(file, json.dumps(record, indent=2) + "\n")
        return _with_knobs(base, knobs)

    return load_or_build(
        f"tuned baseline {name!r}", manifest_beside(file), [file], lambda: _cached(base, file), tune
    )


def _with_knobs(base: StaticReranker, knobs: dict[str, Any]) -> StaticReranker:
    """``base`` with tuned knobs (JSON values: the weights come back as a list)."""
    values: dict[str, Any] = {k: tuple(v) if k == "weights" else v for k, v in knobs.items()}
    return replace(base, **values)
