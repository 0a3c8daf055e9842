"""OPE on your own logs: no ground truth, and propensities estimated from the logs when they
carry none (or when the estimators need a form the logged ones cannot give).

The logging policy is estimated per slot as the cross-fitted, smoothed frequency of each item:
``mu_f(i | slot k) = (n_{-f}(i, k) + a) / (n_{-f}(k) + a * n_items)``, counted on the users
outside fold ``f`` (folds of users, so no user's own impressions inflate their propensities),
``a`` = :data:`SMOOTHING`. This is the context-free logging model of Strehl et al. (NeurIPS
2010, "Learning from logged implicit exploration data"), cross-fitted as in Chernozhukov et
al. (2018). Full slates (every slot filled; single-item impressions included) are evaluated as
slates, with a Plackett-Luce logger whose weights are the first slot's frequencies; logs
whose rows hold one item at some slot (OBD's form) as bandit rounds whose action is the
``(item, slot)`` pair. Every estimate that weights by these propensities says so
(``"propensities": "estimated"``), and the report gives the support diagnostics: the share of
the target's probability mass on actions the logs never show (which no importance weight can
reach), and the effective sample size of each estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluation.load import load_policy
from agents.ope.estimators import BANDIT_ESTIMATORS, SESSION_ESTIMATORS, SLATE_ESTIMATORS, estimate_all
from agents.ope.inputs import BanditInputs
from agents.ope.reward_models import fit_click_rate_model, user_segments
from agents.ope.slates import slate_inputs
from agents.ope.targets import CATALOG_POLICIES, PLPolicy, agent_policy, catalog_policy
from envs.config import EnvConfig, known_options
from envs.world import data_source
from simulators.core.errors import ConfigError
from simulators.data.logs import LoggedData
from simulators.data.steps import MAX_SLOTS, build_steps
from simulators.datasets import resolve_data

SMOOTHING = 0.5
"""``a``: pseudo-count of every (item, slot) in the estimated logging policy (Jeffreys' prior)."""
NEEDS_MARGINALS = ("iips", "iips_dr", "pbm_ips", "pbm_dr")
"""Slate estimators that weight by the logger's slot marginals or exposures (not in logged prefixes)."""
LEARNED_FROM_LOGS = ("popularity", "anti-popularity", "ctr")
"""Named targets built from the logs' own clicks (counts, the CTR model)."""
NO_TRUTH = (
    "your own logs: a policy's true value needs its own online run in a known world, which logged "
    "data do not have (the shop's logs have one: --logs shop)"
)
"""Why ``ground_truth`` is null on own logs."""


def user_folds(n_users: int, folds: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_users,)`` int64 cross-fitting fold of each user (balanced, random)."""
    return (rng.permutation(n_users) % folds).astype(np.int64)


def slot_propensities(
    item: np.ndarray, slot: np.ndarray, fold: np.ndarray, n_items: int, n_slots: int, folds: int
) -> np.ndarray:  # fmt: skip
    """``(folds, n_slots, n_items)`` cross-fitted ``mu_f(i | slot k)`` (module docstring) from
    logged rows: ``item``, ``slot`` (0-based) and the ``fold`` of each row's user."""
    counts = np.zeros((folds, n_slots, n_items))
    np.add.at(counts, (fold, slot, item), 1.0)
    others = counts.sum(axis=0, keepdims=True) - counts + SMOOTHING
    return others / others.sum(axis=2, keepdims=True)


def estimated_logger(table: np.ndarray, fold_of_user: np.ndarray) -> PLPolicy:
    """The estimated logging policy of slates: Plackett-Luce on the first slot's frequencies
    (``table`` from :func:`slot_propensities`), one context per fold."""
    folds, _, n_items = table.shape
    support = np.tile(np.arange(n_items, dtype=np.int64), (folds, 1))
    return PLPolicy("estimated logging", support, np.log(table[:, 0, :]), n_items, user_context=fold_of_user)


def target_policy(
    policy: str, named: tuple[str, ...], make_named: Callable[[str], PLPolicy], logs: LoggedData, data: str, where: str
) -> PLPolicy:  # fmt: skip
    """A named target (``make_named(policy)`` for one of ``named``) or a run folder of a trained agent
    or a distilled planner, which must have learnt on these very logs (its users and items are rows
    of them)."""
    if policy in named:
        return make_named(policy)
    if not Path(policy).exists():
        raise ConfigError(
            f"--policy {policy!r}: on {where} logs the target is one of {list(named)} or a run folder of agents.train "
            "or agents.distill"
        )
    agent = load_policy(policy)
    if not hasattr(agent, "env_options"):
        raise ConfigError(
            f"--policy {policy}: OPE on {where} logs takes {list(named)} or a run folder of agents.train or agents.distill"
        )
    trained_on = data_source(EnvConfig(**known_options(agent.env_options))).logs
    if not trained_on.same_catalog(logs):
        raise ConfigError(
            f"--policy {policy}: the agent trained on {agent.env_options.get('data')!r}, whose users and items are "
            f"not these logs' ({data}): its rows would name other users and items"
        )
    return agent_policy(agent, logs.n_items)


def learned_from(policy: str, logs: LoggedData) -> bool:
    """Whether the target ``policy`` (a name or a run folder) was built from these very logs."""
    if policy in LEARNED_FROM_LOGS:
        return True
    if not Path(policy).exists():
        return False
    agent = load_policy(policy)
    options = getattr(agent, "env_options", None)
    return (
        options is not None
        and data_source(EnvConfig(**known_options(options))).logs.fingerprint == logs.fingerprint
    )


def own_target(policy: str, logs: LoggedData, data: str) -> PLPolicy:
    """A named catalog policy (:data:`CATALOG_POLICIES`) or a run folder (trained agent, distilled planner)."""
    return target_policy(
        policy, CATALOG_POLICIES, lambda name: catalog_policy(name, logs.n_items, logs.popularity(), data, logs.on_sale()), logs,
        data, "your own",
    )  # fmt: skip


def unsupported_mass(
    target: PLPolicy, users: np.ndarray, slot: np.ndarray, shown: np.ndarray, k: int, rng: np.random.Generator
) -> float:  # fmt: skip
    """Mean over logged rounds of the target's probability, at the round's slot (< ``k``), of items
    the logs never show at that slot (``shown (n_slots, n_items)`` bool)."""
    total = 0.0
    for rows, local, margins in target.marginal_chunks(users, k, 256, rng):
        outside = (margins * ~shown[None, :k]).sum(axis=2)  # (contexts, k)
        total += float(outside[local, slot[rows]].sum())
    return total / max(len(users), 1)


def evaluate_own(
    data: str, policy: str, wanted: list[str] | None, n_bootstrap: int, folds: int, seed: int
) -> dict[str, object]:  # fmt: skip
    """OPE of ``policy`` on the logs ``data`` (not a shop, not OBD), with estimated propensities."""
    logs = resolve_data(data).logs
    if folds > logs.n_users:  # before the target, which may build a world
        raise ConfigError(
            f"--folds {folds}: more folds than the logs' {logs.n_users} users (folds are of users)"
        )
    target = own_target(policy, logs, data)
    rng = np.random.default_rng(seed)
    table = logs.interactions
    notes = list(logs.notes)
    if learned_from(policy, logs):
        notes.append(
            f"the target {policy} learned from these same logs: estimates on the logs a policy learned from lean "
            "upward (it has seen which of their items were clicked; +15% for ctr's first slot on the shop), so "
            "evaluate it on logs it did not see (e.g. a later period)"
        )
    cap = min(MAX_SLOTS, int(target.support.shape[1]))
    if (table["position"] > cap).any():  # the slots a slate of the target's can fill (and build_steps keeps)
        notes.append(
            f"position: rows below slot {cap} left out ({int((table['position'] > cap).sum())} rows)"
        )
        table = table[table["position"] <= cap].reset_index(drop=True)
    user_row = pd.Index(logs.users["user_id"]).get_indexer(table["user_id"]).astype(np.int64)
    item = logs.item_rows(table["item_id"].to_numpy())
    slot = table["position"].to_numpy(np.int64) - 1
    n_slots = int(slot.max()) + 1
    fold_of_user = user_folds(logs.n_users, folds, rng)
    mu = slot_propensities(item, slot, fold_of_user[user_row], logs.n_items, n_slots, folds)
    shown = np.zeros((n_slots, logs.n_items), dtype=bool)
    shown[slot, item] = True
    steps = build_steps(logs)
    logged = steps.prefix_propensity
    exact = (
        logged is not None and bool(np.isfinite(logged[steps.slot_mask]).all()) and (steps.items >= 0).all()
    )
    report: dict[str, object] = {
        "policy": policy, "logs": data, "propensities": "logged" if exact else "estimated",
        "propensity_model": (
            "logged: the prefix_propensity column, the logger's exact probability of each slate's items down to each slot"
            if exact else
            f"cross-fitted item frequency per slot ({folds} folds of users, pseudo-count {SMOOTHING})"
        ),
        "ground_truth": None, "ground_truth_why": NO_TRUTH, "data_notes": notes,
    }  # fmt: skip
    if "propensity" in table.columns and not exact:
        estimated = mu[fold_of_user[user_row], slot, item]
        given = table["propensity"].to_numpy(np.float64)
        report["logged_propensities"] = {
            "note": "the logs carry propensities; the estimators use the estimated ones (same form for every log)",
            "mean_abs_relative_error": float(np.mean(np.abs(estimated / given - 1.0))),
        }
    if (steps.items >= 0).all():  # full slates (single items included)
        slates, sessions = slate_inputs(
            steps, estimated_logger(mu, fold_of_user), target, folds=folds, rng=rng,
            segment=user_segments(logs.users),
            logged_prefix=logged[:, : steps.items.shape[1]] if exact and logged is not None else None,
        )  # fmt: skip
        label = "logged" if exact else "estimated"
        names = [n for n in (wanted or SLATE_ESTIMATORS) if not (exact and n in NEEDS_MARGINALS)]
        if exact and (deterministic := float((logged[:, -1] == 1.0).mean())) > 0:  # type: ignore[index]
            notes.append(
                f"{deterministic:.0%} of the slates were shown greedily (propensity 1): no other slate of theirs "
                "has support, so estimates of policies that differ there lean on the rest"
            )
        no_marginals = {
            n: "weights by the logger's slot marginals or exposures, which logged prefix propensities do not give"
            for n in NEEDS_MARGINALS
            if exact and (wanted is None or n in wanted)
        }
        k = steps.items.shape[1]
        if k == 1:
            notes.append(
                "one item per slate: every slate estimator reduces to its single-item form (iips, rips, sips "
                "and pbm_ips are ips; iips_dr, cascade_dr and pbm_dr are dr), so they print the same numbers"
            )
        section = _marked(
            estimate_all({n: SLATE_ESTIMATORS[n] for n in names if n in SLATE_ESTIMATORS}, slates, None,
                         n_bootstrap, seed),
            label,
        )  # fmt: skip
        if no_marginals:
            section["unavailable"] = {**no_marginals, **section.get("unavailable", {})}
        report |= {
            "form": f"slates of {k}",
            "n": len(steps.step),
            "reward": "clicks per step (slate)",
            **section,
            "naive": float(slates.reward.sum(axis=1).mean()),
            "first_slot": _marked(
                estimate_all(BANDIT_ESTIMATORS, slates.first_slot(), wanted, n_bootstrap, seed), label
            ),
            "sessions": {
                "n": int(steps.n_sessions),
                **_marked(estimate_all(SESSION_ESTIMATORS, sessions, wanted, n_bootstrap, seed), label),
            },
            "support": {
                "unsupported_target_mass": unsupported_mass(
                    target, steps.user, np.zeros(len(steps.user), dtype=np.int64), shown, 1, rng
                ),
                "actions": "items at the first slot",
            },
        }
        return report
    rounds = row_bandit_inputs(item, slot, table["click"].to_numpy(np.float64), user_row, fold_of_user, mu, target,
                               n_slots, rng, cluster=pd.factorize(table["session_id"])[0])  # fmt: skip
    report |= {
        "form": "bandit rounds: one (item, slot) per row",
        "n": len(table),
        "reward": "click",
        **_marked(estimate_all(BANDIT_ESTIMATORS, rounds, wanted, n_bootstrap, seed)),
        "naive": float(rounds.reward.mean()),
        "support": {
            "unsupported_target_mass": unsupported_mass(target, user_row, slot, shown, n_slots, rng),
            "actions": "(item, slot) pairs",
        },
    }
    return report


def _marked(section: dict[str, Any], label: str = "estimated") -> dict[str, Any]:
    """Mark each estimate of a section (:func:`~agents.ope.estimators.estimate_all`) that weights by
    propensities (all but the direct method) with their kind."""
    estimates = {
        name: {**entry, "propensities": "none (model only)" if name == "dm" else label}
        for name, entry in section["estimates"].items()
    }
    return {**section, "estimates": estimates}


def row_bandit_inputs(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, user_row: np.ndarray, fold_of_user: np.ndarray,
    mu: np.ndarray, target: PLPolicy, n_slots: int, rng: np.random.Generator, cluster: np.ndarray | None = None,
) -> BanditInputs:  # fmt: skip
    """Rows as bandit rounds whose action is (item, slot): the estimated logger's and the
    target's probability of it, and a cross-fitted (item, slot) click-rate model's predictions;
    ``cluster`` (the session of each row) makes the bootstrap draw whole sessions."""
    n, n_items = len(item), mu.shape[2]
    folds = mu.shape[0]
    row_fold = fold_of_user[user_row]
    pscore = mu[row_fold, slot, item]
    q_logged, q_target, p_target = np.zeros(n), np.zeros(n), np.zeros(n)
    models = [
        fit_click_rate_model(item[row_fold != f], slot[row_fold != f], reward[row_fold != f], n_items, n_slots, rng)
        for f in range(folds)
    ]  # fmt: skip
    for rows, local, margins in target.marginal_chunks(user_row, n_slots, 256, rng):  # (c, K, n_items)
        p_target[rows] = margins[local, slot[rows], item[rows]]
        for f in range(folds):
            expected = np.einsum("ckn,nk->ck", margins, models[f])  # E_pi q per context and slot
            mine = row_fold[rows] == f
            q_logged[rows[mine]] = models[f][item[rows[mine]], slot[rows[mine]]]
            q_target[rows[mine]] = expected[local[mine], slot[rows[mine]]]
    return BanditInputs(reward, pscore, p_target, q_logged, q_target, cluster)
