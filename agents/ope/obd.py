"""OPE on the Open Bandit Dataset: the Bernoulli-TS and uniform-random policies, each estimated
on the other's logs, with OBP's Monte Carlo of the Bernoulli-TS action distribution."""

from __future__ import annotations

import numpy as np

from agents.ope.estimators import BANDIT_ESTIMATORS, estimate_all
from agents.ope.inputs import BanditInputs
from agents.ope.reward_models import fit_click_rate_model
from simulators.core.errors import ConfigError, DataError
from simulators.datasets import load_logs, resolve_data
from simulators.datasets.obd import prior_bts

OBD_POLICIES = ("obd-bts", "obd-random")


def evaluate_obd(
    logs_spec: str, policy: str, wanted: list[str] | None, n_bootstrap: int, folds: int, seed: int
) -> dict[str, object]:
    """OPE of the OBD Bernoulli-TS or random policy on the other's logs (ground truth: the
    target policy's own logs' mean click)."""
    if policy not in OBD_POLICIES:
        raise ConfigError(f"OBD logs take --policy {' or '.join(OBD_POLICIES)}, got {policy!r}")
    logs = resolve_data(logs_spec).logs
    logged_policy, campaign = logs.source.removeprefix("obd(").removesuffix(")").split("/")
    table = logs.interactions
    slots = int(table["position"].max())
    rng = np.random.default_rng(seed)
    if policy == "obd-bts":
        target = bts_marginals(*prior_bts(campaign), slots, 100_000, rng)
    else:
        target = np.full((logs.n_items, slots), 1.0 / logs.n_items)
    if target.shape[0] != logs.n_items:
        raise DataError(
            f"prior_bts has {target.shape[0]} items for campaign {campaign}, the logs {logs.n_items}"
        )
    data = obd_bandit_inputs(
        logs.item_rows(table["item_id"].to_numpy()), table["position"].to_numpy() - 1,
        table["click"].to_numpy(np.float64), table["propensity"].to_numpy(np.float64), target, folds, rng,
    )  # fmt: skip
    own = policy.removeprefix("obd-")
    spec = logs_spec.replace(f"{logged_policy}/", f"{own}/") if logs_spec.startswith("obd:") else None
    truth = float(load_logs(spec).interactions["click"].mean()) if spec else None
    return {"policy": policy, "logs": logs_spec, "n": len(table), "reward": "click",
            **estimate_all(BANDIT_ESTIMATORS, data, wanted, n_bootstrap, seed),
            "ground_truth": truth, "naive": float(data.reward.mean())}  # fmt: skip


def bts_marginals(
    alpha: np.ndarray, beta: np.ndarray, slots: int, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """``(n_items, slots)`` ``P(item at slot k)`` of Bernoulli Thompson sampling with Beta
    priors (rank items by one draw of each item's Beta; Monte Carlo as OBP does)."""
    counts = np.zeros((len(alpha), slots))
    for start in range(0, n_samples, 10_000):
        size = min(10_000, n_samples - start)
        theta = rng.beta(alpha, beta, size=(size, len(alpha)))
        top = np.argpartition(-theta, slots, axis=1)[:, :slots]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(theta, top, 1), axis=1), 1)
        for k in range(slots):
            counts[:, k] += np.bincount(top[:, k], minlength=len(alpha))
    return counts / n_samples


def obd_bandit_inputs(
    item: np.ndarray, slot: np.ndarray, reward: np.ndarray, pscore: np.ndarray, target: np.ndarray,
    folds: int, rng: np.random.Generator,
) -> BanditInputs:  # fmt: skip
    """Rows of OBD as bandit rounds whose action is (item, slot): the target's marginal
    ``target (n_items, slots)`` and a cross-fitted :func:`fit_click_rate_model`."""
    n_items, slots = target.shape
    fold = rng.permutation(len(item)) % folds
    q_logged, q_target = np.zeros(len(item)), np.zeros(len(item))
    for f in range(folds):
        train, test = fold != f, fold == f
        q = fit_click_rate_model(item[train], slot[train], reward[train], n_items, slots, rng)
        q_logged[test] = q[item[test], slot[test]]
        q_target[test] = (target[:, slot[test]] * q[:, slot[test]]).sum(axis=0)
    return BanditInputs(reward, pscore, target[item, slot], q_logged, q_target)
