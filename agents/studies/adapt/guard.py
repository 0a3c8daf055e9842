"""The deployment guard of continuous optimisation: a fine-tuned candidate replaces the deployed
policy only when a canary shows it better at a stated confidence.

**The canary.** Before week ``w + 1`` is served, the deployed policy and each candidate play the
same ``canary_sessions`` sessions of the true shop (paired: the same users and session keys;
users no training, tuning or A/B sees), in an order shuffled once. The guard looks at the
per-session differences ``d_i = R^cand_i - R^deployed_i`` after each ``n / looks`` of them:

    lower_k = mean(d_1..n_k) - z(1 - a) sd(d_1..n_k) / sqrt(n_k),   a = alpha / (looks x candidates)

(``upper_k`` likewise). A candidate whose ``lower_k > 0`` ships at look ``k`` (if several do, the one
with the highest bound) and the canary stops; one whose ``upper_k < 0`` leaves the canary (it
can no longer ship, which spends none of the error budget); the canary also stops when none is
left. Each test runs at ``a``, so by the union bound over looks and candidates the chance of
shipping any candidate that is not better than the deployed policy is at most ``alpha`` (a
Bonferroni group-sequential design: conservative against Pocock's or O'Brien and Fleming's
boundaries, and valid for any number of looks; Jennison & Turnbull, *Group Sequential Methods
with Applications to Clinical Trials*, 2000, ch. 2). A candidate identical to the deployed policy
has ``d = 0`` everywhere, a bound of exactly 0, and never ships.

Why a canary and not an off-policy bound on the served logs: the guard must value a whole
session under the candidate's own trajectory (what it shows moves boredom, interest and
leaving), and a session is ~12 slates of a stateful policy. Whole-session importance weights of
a deterministic candidate are products of ~12 indicator-over-propensity terms: on the shop's
logs every weight of a trained agent was 0 on every log of 10,000 sessions (PDIS, WPDIS and WDR
"not available" in the session track of ``benchmarks/results/ope_accuracy.json``), and served at
temperature 1 the policy's first slot alone has a logged probability of about 0.05
(``benchmarks.temperature``). The per-slate estimators that do work there (IIPS within 1% of the
truth) value the next slate in the logged states: a myopic proxy, blind to exactly the session
effects a fine-tuned policy is meant to change. A bound built on either would not hold at a
stated confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from agents.studies.adapt.ab import play_distinct
from agents.studies.adapt.config import CANARY_SEED, AdaptConfig
from agents.studies.backend import Backend


def canary_seed(seed: int, week: int) -> int:
    """The session seed of week ``week``'s canary in the loop of ``seed``."""
    state = np.random.SeedSequence([CANARY_SEED, seed, week]).generate_state(1, np.uint32)[0]
    return int(state) % 2**30


def look_sizes(n: int, looks: int) -> list[int]:
    """The sessions seen at each look: ``ceil(k n / looks)``, ``k = 1..looks`` (distinct, the last ``n``)."""
    return sorted({max(1, -(-k * n // looks)) for k in range(1, looks + 1)})


def sequential_test(
    differences: Mapping[str, np.ndarray], alpha: float, looks: int
) -> dict[str, Any]:  # fmt: skip
    """The guard's decision on the paired per-session differences ``candidate - deployed``
    (``(n,)`` each, in the canary's order) of the module docstring: which candidate ships, if
    any, at which look, and every look's bounds."""
    names = list(differences)
    n = len(next(iter(differences.values()))) if names else 0
    level = alpha / (looks * max(1, len(names)))
    z = NormalDist().inv_cdf(1.0 - level)
    live = set(names)
    record: dict[str, Any] = {
        "decision": "keep",
        "shipped": None,
        "alpha": alpha,
        "level_per_test": level,
        "z": z,
        "sessions": 0,
        "looks": [],
        "bound": None,
    }
    for size in look_sizes(n, looks) if n else []:
        look: dict[str, Any] = {"sessions": size, "candidates": {}}
        passing: dict[str, float] = {}
        for name in sorted(live):
            d = differences[name][:size]
            mean = float(d.mean())
            half = z * float(d.std(ddof=1)) / np.sqrt(size) if size > 1 else float("inf")
            look["candidates"][name] = {"mean": mean, "lower": mean - half, "upper": mean + half}
            if mean - half > 0:
                passing[name] = mean - half
            elif mean + half < 0:
                live.discard(name)  # can no longer ship
        record["looks"].append(look)
        record["sessions"] = size
        if passing:
            best = max(sorted(passing), key=passing.__getitem__)
            record.update(decision="ship", shipped=best, bound=passing[best])
            break
        if not live:
            break
    if record["decision"] == "keep" and record["looks"]:
        last = record["looks"][-1]["candidates"]
        record["bound"] = max((c["lower"] for c in last.values()), default=None)
    return record


def canary(
    deployed: Path, candidates: Mapping[str, Path], config: AdaptConfig, week: int, day: float,
    backend: Backend | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Play the deployed policy and each candidate on week ``week``'s canary sessions of the true
    shop on ``day`` (each arm a trial of ``backend``) and decide with :func:`sequential_test`. A
    candidate that is the deployed run itself is not played again: its differences are zero."""
    seed = canary_seed(config.seed, week)
    played = play_distinct(
        {"deployed": deployed, **candidates}, config, week, day, backend, seed, config.canary_sessions
    )
    base = played["deployed"][0]
    order = np.random.default_rng(seed).permutation(len(base))  # one order, every arm
    differences = {name: (played[name][0] - base)[order] for name in candidates}
    record = sequential_test(differences, config.guard_alpha, config.guard_looks)
    record["canary_sessions"] = len(base)
    record["canary_seed"] = seed
    record["candidates"] = {name: str(path) for name, path in candidates.items()}
    return record
