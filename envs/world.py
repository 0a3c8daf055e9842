"""The world an episode runs in, built once per process: logs, the simulator (fitted or true),
each user's candidates, and the item and user groups that fairness reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.ctr.config import CTRConfig, ctr_cache_key, warm_start_identity
from envs.candidates import (
    CandidateSource,
    CTRCandidateSource,
    PopularitySimilaritySource,
    cached_top_n,
    candidates_key,
)
from envs.config import FEATURE_CLIP, FEATURES, EnvConfig, catalog_day_of
from simulators.core.errors import ConfigError, DataError
from simulators.core.storage import content_key
from simulators.data.features import user_feature_matrix
from simulators.data.logs import LoggedData
from simulators.datasets import DataSource, forget_data, resolve_data
from simulators.fit.cache import load_or_fit, simulator_key
from simulators.fit.config import FitConfig
from simulators.fit.mixed import MixedSimulator, parse_parts
from simulators.fit.returns import fit_return_process
from simulators.response import ResponseTables, UserSimulator
from simulators.retention import ReturnProcess

if TYPE_CHECKING:  # torch loads only when a CTR model is used
    from encoders.ctr.embedder import CTREmbedder
    from encoders.ctr.train import TrainedCTR


def protected_items(items: Any) -> np.ndarray:
    """``(n_items,)`` bool: items of small providers (``provider_group == "small"`` when given,
    else providers outside the largest ones that together hold half the catalog)."""
    if "provider_group" in items.columns:
        return (items["provider_group"] == "small").to_numpy()
    counts = items["provider"].value_counts()
    covered = counts.cumsum() / counts.sum()
    major = set(counts.index[: int(np.searchsorted(covered.to_numpy(), 0.5)) + 1])
    return (~items["provider"].isin(major)).to_numpy()


@dataclass
class RankingWorld:
    """Everything an episode needs, precomputed per user and item (shared, read-only)."""

    simulator: UserSimulator
    candidates: np.ndarray
    """``(n_users, N)`` catalog rows offered to each user."""
    candidate_features: np.ndarray
    """``(n_users, N, 5)`` float32 static features (see ``FEATURES``)."""
    history: np.ndarray
    """``(n_users, H)`` starting history (last logged clicks), -1 pad."""
    user_weight: np.ndarray
    """``(n_users,)`` probability that a session is this user's."""
    user_features: np.ndarray
    """``(n_users, F_u)`` float32."""
    user_group: np.ndarray
    """``(n_users,)`` int code of the first sensitive attribute (0 if none)."""
    n_user_groups: int
    protected: np.ndarray
    """``(n_items,)`` bool long-tail provider."""
    tail: np.ndarray
    """``(n_items,)`` bool outside the top 20% of items by logged clicks."""
    item_text: list[str]
    item_table: np.ndarray
    """``(n_items, text_dim)`` frozen BERT embeddings of the catalog (the policy's item table)."""
    load_ctr: Callable[[], TrainedCTR] | None
    """Returns the CTR model behind the candidates, memoised (``None`` with ``candidates="popularity"``)."""
    n_topics: int
    tables: ResponseTables
    """The simulator as lookup tables."""
    candidate_logits: np.ndarray
    """``(n_users, N, 2)`` float32 static click and purchase logits of each user's candidates
    (``tables`` gathered at the candidates: what the engine steps, small enough to stay in cache)."""
    candidate_merit: np.ndarray
    """``(n_users, 2)`` relevance (pCTR) offered to each user: by all candidates, by protected ones."""
    user_traits: np.ndarray
    """``(n_users, 2)`` float64 each user's boredom scale and leave offset (the simulator's)."""
    source: DataSource
    """The logs the world is built from (resolved once per process)."""
    key: str
    """The world's identity: its simulator's and its candidates' keys (:func:`world_key`); the
    tuned re-rankers' cache key starts with it."""
    candidate_source: CandidateSource | None = None
    """The generator behind ``candidates``, to score other items or histories (the serving path)."""
    embedder: CTREmbedder | None = None
    """The CTR model's frozen encoders (built on first use by ``obs_mode="embedding"``)."""
    load_returns: Callable[[], ReturnProcess] | None = None
    """Returns how the users come back between sessions, memoised: the true shop's with
    ``simulator="true"``, else fitted from the logs' gaps (the retention env reads it)."""

    def return_process(self) -> ReturnProcess:
        """How this world's users come back (:class:`~simulators.retention.ReturnProcess`)."""
        if self.load_returns is None:
            raise ConfigError("this world has no return model")
        return self.load_returns()

    @property
    def logs(self) -> LoggedData:
        """The logs the world is built from."""
        return self.source.logs

    @property
    def has_provider_groups(self) -> bool:
        """Whether the catalog has protected and other providers (logs without a provider have not)."""
        return bool(self.protected.any() and not self.protected.all())

    @property
    def ctr(self) -> TrainedCTR | None:
        """The CTR model, loaded on first use: stepping on cached candidates needs neither it nor torch."""
        return self.load_ctr() if self.load_ctr is not None else None

    def ctr_embedder(self) -> CTREmbedder:
        """The CTR model's frozen towers (for ``obs_mode="embedding"``), built on first use."""
        if self.embedder is None:
            from encoders.ctr.embedder import CTREmbedder  # torch loads here, not with the env

            if self.ctr is None:
                raise ConfigError("obs_mode='embedding' reads the CTR model: it needs candidates='ctr'")
            self.embedder = CTREmbedder(self.ctr)
        return self.embedder


_WORLDS: dict[str, RankingWorld] = {}


def forget_worlds() -> None:
    """Drop the worlds and logs this process keeps (each world holds its users x items tables):
    for a long loop that moves on to other days and data and never reads the old ones again."""
    _WORLDS.clear()
    forget_data()


def data_source(config: EnvConfig) -> DataSource:
    """The logs ``config`` names, resolved once per process."""
    return resolve_data(config.data, config.data_path)


def world_key(config: EnvConfig) -> str:
    """The identity of the world ``config`` describes: the simulator's key (the fitted one's, or
    the true shop's logs and day), the candidates' key and the history length. Computed from the
    (memoised) logs' fingerprint without building anything."""
    source = data_source(config)
    simulator: object = (
        simulator_key(source.logs, FitConfig(sample=config.fit_sample))
        if config.simulator == "fitted"
        else ("true", source.fingerprint, config.true_day)
    )
    if config.true_parts:  # a mixture of the fit and the truth (no key of a plain world changes)
        simulator = ("mixed", simulator, source.fingerprint, parse_parts(config.true_parts))
    return content_key("world", simulator, _candidates_key(config, source), config.history_length)


def _candidates_key(config: EnvConfig, source: DataSource) -> str:
    generator = ctr_key_of(source.logs, config.ctr_warm_start) if config.candidates == "ctr" else "popularity"
    on_sale, fresh = _sale_masks(config, source.logs)
    return candidates_key(
        generator, source.fingerprint, config.n_candidates, config.history_length, on_sale, fresh,
        config.fresh_candidates if fresh is not None else None,
    )  # fmt: skip


def ctr_key_of(logs: LoggedData, init: str | None) -> str:
    """The key of the (default) CTR model of ``logs`` warm-started from ``init`` (torch-free)."""
    return ctr_cache_key(logs.fingerprint, CTRConfig(), None if init is None else warm_start_identity(init))


def _sale_masks(config: EnvConfig, logs: LoggedData) -> tuple[np.ndarray, np.ndarray | None]:
    """The items on sale on the catalog's day, and the new launches among them (``None``: a
    catalog that lists no launches)."""
    on_sale = logs.on_sale(catalog_day_of(config))
    fresh = on_sale & (logs.per_item() == 0) if "launch_day" in logs.items.columns else None
    return on_sale, fresh


def _load_or_train_ctr(logs: LoggedData, embeddings: np.ndarray, init: str | None) -> TrainedCTR:
    """The CTR model behind the candidates (torch loads here, on first use)."""
    from encoders.ctr.train import load_or_train_ctr

    return load_or_train_ctr(logs, embeddings=embeddings, init=None if init is None else Path(init))


def simulator_fields(simulator: UserSimulator, candidates: np.ndarray) -> dict[str, Any]:
    """The :class:`RankingWorld` fields that follow from its simulator, for ``candidates``."""
    tables = simulator.response_tables()
    rows = np.arange(len(candidates))[:, None]
    return {
        "simulator": simulator,
        "n_topics": int(simulator.item_topic.max()) + 1,
        "tables": tables,
        "candidate_logits": np.stack(
            [tables.click_logit[rows, candidates], tables.purchase_logit[rows, candidates]], axis=-1
        ).astype(np.float32),
        "user_traits": tables.traits.as_array(),
    }


def with_simulator(world: RankingWorld, simulator: UserSimulator, key: str) -> RankingWorld:
    """``world`` with its users answering as ``simulator`` does (the same users, candidates and
    groups): a what-if world for studies, under its own ``key`` (never memoised)."""
    return replace(world, **simulator_fields(simulator, world.candidates), key=key)


def build_world(config: EnvConfig) -> RankingWorld:
    """Resolve the logs, fit (or load) the simulator and precompute candidates; cached per process."""
    source = data_source(config)
    logs = source.logs
    if config.ctr_warm_start is not None:
        warm_start_identity(config.ctr_warm_start)  # a folder without a model fails before any fitting
    if config.n_candidates > logs.n_items:
        raise ConfigError(
            f"n_candidates ({config.n_candidates}) must be <= the catalog's {logs.n_items} items"
        )
    on_sale, fresh = _sale_masks(config, logs)  # before any fitting: a bad launch_day fails here
    if on_sale.sum() < config.n_candidates:
        raise ConfigError(
            f"n_candidates ({config.n_candidates}) must be <= the {int(on_sale.sum())} items on sale on the catalog's day"
        )
    key = world_key(config)
    if key in _WORLDS:
        return _WORLDS[key]
    truth = source.truth
    if (config.simulator == "true" or config.true_parts) and truth is None:  # before any fitting
        raise DataError(f"{logs.source}: not read from a shop folder, so its ground truth is unknown")
    fitted, _ = load_or_fit(logs, FitConfig(sample=config.fit_sample))
    load_ctr = (
        cache(partial(_load_or_train_ctr, logs, fitted.item_embedding, config.ctr_warm_start))
        if config.candidates == "ctr"
        else None
    )
    simulator: UserSimulator = fitted
    if truth is not None and (config.simulator == "true" or config.true_parts):
        simulator = truth.at(truth.config.days if config.true_day is None else config.true_day)
        if config.true_parts:
            simulator = MixedSimulator(fitted, simulator, parse_parts(config.true_parts))
    history, _ = logs.padded_histories(config.history_length)
    protected = protected_items(logs.items)
    # New launches the logs never showed keep their quota of candidates (a catalog that lists launches only).
    retrieval = PopularitySimilaritySource(
        logs, history, fitted.item_embedding, protected, on_sale=on_sale, fresh=fresh,
        fresh_slots=config.fresh_candidates,
    )  # fmt: skip
    generator: CandidateSource = retrieval if load_ctr is None else CTRCandidateSource(load_ctr, retrieval)
    candidates, features = cached_top_n(generator, config.n_candidates, _candidates_key(config, source))
    popularity = logs.popularity()
    tail = popularity < np.quantile(popularity, 0.8)
    if logs.sensitive_attributes:
        codes, levels = np.unique(logs.users[logs.sensitive_attributes[0]].astype(str), return_inverse=True)
        user_group, n_groups = levels.astype(np.int64), len(codes)
    else:
        user_group, n_groups = np.zeros(logs.n_users, dtype=np.int64), 1
    relevance = features[..., FEATURES.index("pctr")].astype(np.float64)
    world = RankingWorld(
        candidates=candidates,
        candidate_features=features,
        history=history,
        user_weight=fitted.user_weight,
        user_features=np.clip(user_feature_matrix(logs.users), -FEATURE_CLIP, FEATURE_CLIP),
        user_group=user_group,
        n_user_groups=n_groups,
        protected=protected,
        tail=tail,
        item_text=logs.items["text"].astype(str).tolist(),
        item_table=fitted.item_embedding,
        load_ctr=load_ctr,
        **simulator_fields(simulator, candidates),
        candidate_merit=np.stack(
            [relevance.sum(1), (relevance * features[..., FEATURES.index("protected")]).sum(1)], axis=1
        ),
        source=source,
        key=key,
        candidate_source=generator,
        load_returns=cache(
            truth.return_process
            if truth is not None and config.simulator == "true"
            else partial(fit_return_process, logs, fitted.item_topic)
        ),
    )
    _WORLDS[key] = world
    return world
