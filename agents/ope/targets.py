"""Target policies of OPE over a catalog: Plackett-Luce rankings (:class:`PLPolicy`), the
shop's named policies, and a trained agent's ranking in Plackett-Luce form.

The probability of a slate's first k items is closed-form
(:mod:`simulators.data.plackett_luce`); a slot's marginal ``P(item i at slot k)`` is not, and is
estimated by Monte Carlo with Rao-Blackwellisation: sample the k-1 items above, then
``P(i at k | prefix) = w_i / (1 - sum_prefix w)`` is exact, so only the prefix is random.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agents.policies.distilled import DistilledPlanner
from envs.config import FEATURES, EnvConfig
from envs.core import SessionCore, standardise
from envs.world import build_world
from simulators.core.errors import ConfigError
from simulators.data.plackett_luce import (
    gumbel_order,
    prefix_probabilities,
    sample_without_replacement,
    softmax,
)
from simulators.shop.world import ShopWorld

GUMBEL_SUPPORT = 512
"""Supports up to this size are sampled by Gumbel-top-k; larger ones sequentially."""


@dataclass(frozen=True)
class PLPolicy:
    """Plackett-Luce slates over a per-context support of catalog items.

    ``P(s_1..s_k | c) = prod_{j<=k} p_c(s_j) / (1 - sum_{l<j} p_c(s_l))`` with
    ``p_c = softmax(logits[c])`` over ``support[c]`` (0 elsewhere). One context row (``C = 1``)
    is a context-free policy; otherwise context ``c`` is user row ``c``, or ``user_context[u]``.
    """

    name: str
    support: np.ndarray
    """``(C, S)`` int64 catalog rows."""
    logits: np.ndarray
    """``(C, S)`` float64."""
    n_items: int
    """Catalog size."""
    user_context: np.ndarray | None = None
    """``(n_users,)`` int64 context row of each user (a segment, a cross-fitting fold); ``None``:
    the user's own row (or row 0 of a context-free policy)."""

    def __post_init__(self) -> None:
        if self.support.shape != self.logits.shape or self.support.ndim != 2:
            raise ConfigError(
                f"support {self.support.shape} and logits {self.logits.shape} must be equal (C, S)"
            )
        if not np.isfinite(self.logits).all():
            raise ConfigError(f"policy {self.name}: logits must be finite")

    def contexts(self, users: np.ndarray) -> np.ndarray:
        """Context rows of ``users``."""
        if self.user_context is not None:
            return self.user_context[np.asarray(users, dtype=np.int64)]
        return (
            np.zeros(len(users), dtype=np.int64)
            if len(self.support) == 1
            else np.asarray(users, dtype=np.int64)
        )

    def dense(self, contexts: np.ndarray) -> np.ndarray:
        """``(len(contexts), n_items)`` item probabilities of the first slot."""
        p = softmax(self.logits[contexts])
        out = np.zeros((len(contexts), self.n_items))
        np.put_along_axis(out, self.support[contexts], p, axis=1)
        return out

    def prefix_probabilities(self, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """``(n, K)`` probability of each slate's first k items."""
        return prefix_probabilities(self.item_probabilities(users, slates))

    def item_probabilities(self, users: np.ndarray, items: np.ndarray, chunk: int = 256) -> np.ndarray:
        """``(n, K)`` first-slot probability ``p_c(item)`` of each of ``items (n, K)``."""
        contexts = self.contexts(users)
        out = np.empty(items.shape)
        distinct, inverse = np.unique(contexts, return_inverse=True)
        for start in range(0, len(distinct), chunk):
            dense = self.dense(distinct[start : start + chunk])
            rows = np.flatnonzero((inverse >= start) & (inverse < start + chunk))
            out[rows] = dense[inverse[rows, None] - start, items[rows]]
        return out

    def sample(self, contexts: np.ndarray, n_samples: int, k: int, rng: np.random.Generator) -> np.ndarray:
        """``(B, n_samples, k)`` catalog rows: ``n_samples`` slates per context."""
        logits = self.logits[contexts]
        if logits.shape[1] <= GUMBEL_SUPPORT:
            shape = (len(contexts), n_samples, logits.shape[1])
            top = gumbel_order(np.broadcast_to(logits[:, None, :], shape), rng)[:, :, :k]
            return np.take_along_axis(self.support[contexts][:, None, :], top, axis=2)
        rows = np.repeat(np.arange(len(contexts)), n_samples)
        return sample_without_replacement(self.dense(contexts), k, rng, rows).reshape(
            len(contexts), n_samples, k
        )

    def marginals(
        self, contexts: np.ndarray, k: int, n_samples: int, rng: np.random.Generator
    ) -> np.ndarray:  # fmt: skip
        """``(B, k, n_items)`` ``P(item at slot j | context)``: exact for the first slot,
        Rao-Blackwellised Monte Carlo over ``n_samples`` prefixes for the others."""
        if k > self.support.shape[1]:
            raise ConfigError(
                f"policy {self.name}: {k} slots, but only {self.support.shape[1]} items to fill them"
            )
        p = self.dense(contexts)
        out = np.zeros((len(contexts), k, self.n_items))
        out[:, 0] = p
        if k == 1:
            return out
        prefixes = self.sample(contexts, n_samples, k - 1, rng)  # (B, M, k-1)
        b = len(contexts)
        taken = np.cumsum(np.take_along_axis(p[:, None, :], prefixes, axis=2), axis=2)  # (B, M, k-1)
        for j in range(1, k):
            inverse = 1.0 / np.maximum(1.0 - taken[:, :, j - 1], 1e-12)  # (B, M)
            above = prefixes[:, :, :j]
            excluded = np.zeros((b, self.n_items))
            np.add.at(excluded, (np.broadcast_to(np.arange(b)[:, None, None], above.shape), above),
                      np.broadcast_to(inverse[:, :, None], above.shape))  # fmt: skip
            out[:, j] = p * (inverse.sum(axis=1, keepdims=True) - excluded) / n_samples
        return out

    def marginal_chunks(
        self, users: np.ndarray, k: int, n_samples: int, rng: np.random.Generator, chunk: int = 64
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
        """``(rows, local, marginals)`` chunk by chunk over the distinct contexts of ``users``:
        ``marginals (c, k, n_items)`` of ``c`` contexts, the ``rows`` of ``users`` whose context is
        among them and each row's index ``local`` into ``marginals``. A context-free policy is
        estimated once, with ``64 * n_samples`` prefixes; a few contexts shared by many users,
        once each with ``8 * n_samples``. The one lookup of marginals by row (OPE inputs, support
        diagnostics, the ground truth)."""
        contexts = self.contexts(users)
        order = np.argsort(contexts, kind="stable")
        sorted_contexts = contexts[order]
        distinct = np.unique(contexts)
        if len(self.support) == 1:
            blocks = [(distinct, 64 * n_samples)]
        else:
            samples = 8 * n_samples if self.user_context is not None else n_samples
            blocks = [(distinct[start : start + chunk], samples) for start in range(0, len(distinct), chunk)]
        for block, samples in blocks:
            lo = np.searchsorted(sorted_contexts, block[0])
            hi = np.searchsorted(sorted_contexts, block[-1], side="right")
            rows = order[lo:hi]
            yield rows, np.searchsorted(block, contexts[rows]), self.marginals(block, k, samples, rng)


# ------------------------------------------------------------------ the shipped policies

OPE_TEMPERATURE = 1.0
"""Temperature of the Plackett-Luce form of score-based policies (``ctr``, agents): logits
are the scores standardised per user, divided by this."""
SHOP_POLICIES = ("logging", "near-logging", "random", "popularity", "anti-popularity", "ctr")
"""Target policies over the shop's catalog by name (an agent is given by its run folder)."""


def shop_logging_policy(world: ShopWorld) -> PLPolicy:
    """The shop's logging policy as a :class:`PLPolicy` (context-free): over the logged catalog,
    in a catalog that may list items launching later (probability 0)."""
    logged = world.config.n_items
    return PLPolicy(
        "logging", np.arange(logged)[None], np.log(world.logging_policy.weights)[None], world.n_catalog
    )


CATALOG_POLICIES = ("random", "popularity", "anti-popularity", "ctr")
"""Target policies any logs have by name: they need only the catalog, its popularity and the CTR model."""


def catalog_policy(
    name: str, n_items: int, popularity: np.ndarray, data: str, on_sale: np.ndarray | None = None
) -> PLPolicy:  # fmt: skip
    """A target policy over any catalog; ``popularity (n_items,)`` logged clicks; ``data`` names
    the logs for the env whose CTR candidates ``ctr`` ranks; ``on_sale (n_items,)`` bool: the
    items it may show (the logs' catalog day; ``None`` = all).

    ``random``: uniform; ``popularity``: Plackett-Luce on standardised log-popularity;
    ``anti-popularity``: on minus 1.5 times it (deliberately far from a popularity-driven
    logger); ``ctr``: each user's CTR candidates (the env's) by standardised log pCTR at
    :data:`OPE_TEMPERATURE`.
    """
    rows = np.arange(n_items) if on_sale is None else np.flatnonzero(on_sale)
    catalog = rows[None]
    log_pop = np.log1p(popularity[rows])
    z = ((log_pop - log_pop.mean()) / (log_pop.std() + 1e-12))[None]
    if name == "random":
        return PLPolicy(name, catalog, np.zeros((1, len(rows))), n_items)
    if name == "popularity":
        return PLPolicy(name, catalog, z, n_items)
    if name == "anti-popularity":
        return PLPolicy(name, catalog, -1.5 * z, n_items)
    if name == "ctr":
        env_world = build_world(EnvConfig(data=data))
        pctr = env_world.candidate_features[:, :, FEATURES.index("pctr")].astype(np.float64)
        return scores_policy(name, env_world.candidates, np.log(np.maximum(pctr, 1e-9)), n_items)
    raise ConfigError(
        f"unknown target policy {name!r}; policies: {CATALOG_POLICIES} or a run folder (agents.train, agents.distill)"
    )


def shop_policy(
    name: str, world: ShopWorld, popularity: np.ndarray, data: str = EnvConfig().data
) -> PLPolicy:
    """A named target policy over the shop's catalog: :func:`catalog_policy`'s, ``logging`` and
    ``near-logging`` (the logging logits at temperature 1.25, close to the logger)."""
    n_items = world.n_catalog
    if name == "logging":
        return shop_logging_policy(world)
    if name == "near-logging":
        logged = world.config.n_items
        return PLPolicy(
            name, np.arange(logged)[None], np.log(world.logging_policy.weights)[None] / 1.25, n_items
        )
    if name not in CATALOG_POLICIES:
        raise ConfigError(
            f"unknown target policy {name!r}; shop policies: {SHOP_POLICIES} or a run folder (agents.train, agents.distill)"
        )
    return catalog_policy(name, n_items, popularity, data, world.launched(world.config.days))


def scores_policy(name: str, support: np.ndarray, scores: np.ndarray, n_items: int) -> PLPolicy:
    """Plackett-Luce over per-user candidate ``scores`` standardised per user / :data:`OPE_TEMPERATURE`."""
    return PLPolicy(name, support.astype(np.int64), standardise(scores) / OPE_TEMPERATURE, n_items)


def agent_policy(agent: Any, n_items: int) -> PLPolicy:
    """A trained agent's (or a distilled planner's) ranking at the start of each user's session, in
    Plackett-Luce form (its deterministic scores over the env's candidates, see :func:`scores_policy`;
    a distilled planner's scores put the candidate slate it chose on top)."""
    distilled = isinstance(agent, DistilledPlanner)
    config = agent.env_config
    if config is None:
        raise ConfigError(f"{agent.name}: no env it was distilled in to rebuild its candidates from")
    if distilled:
        config = replace(config, action_mode="scores")
    world = build_world(config)
    users = np.arange(len(world.candidates))
    core = SessionCore(config, world, batch=len(users))
    core.start_users(users, users, np.zeros(len(users), dtype=np.uint64))
    if distilled:
        agent.bind(core)
    scores, _ = core.scores(core.check_actions(agent.act(core.observe(), np.random.default_rng(0))))
    return scores_policy(agent.name if distilled else str(agent.algorithm), world.candidates, scores, n_items)
