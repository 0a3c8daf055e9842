"""One user session is one episode: the agent ranks N candidates into a slate of K each step.

``RankingEnv`` is a thin single-user view over ``SessionCore``, the batched engine that
``envs.vector`` steps for many users at once, so both share every equation. Randomness: at
reset each session draws a user and a 64-bit key from the env's generator; within a session,
uniforms are a counter-based hash of (key, step, slot), identical however sessions are batched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs import engine
from envs.engine import context_kernel
from envs.fairness import ExposureLedger, position_weights
from simulators.datasets import load_logs
from simulators.dynamics import DynamicsParams, SessionState
from simulators.errors import ConfigError, RecGymError
from simulators.logs import LoggedData, user_feature_matrix
from simulators.response import ResponseTables, UserSimulator

if TYPE_CHECKING:  # torch loads only when a CTR model is used
    from encoders.ctr import TrainedCTR

ACTION_MODES = ("scores", "weights", "discrete")
OBS_MODES = ("ids", "embedding")
SIMULATORS = ("fitted", "true")
CANDIDATE_SOURCES = ("ctr", "popularity")
FEATURES = ("pctr", "pcvr", "similarity", "popularity", "protected", "session_topic_exposure")
"""Per-candidate features, in column order of ``candidate_features``."""
ID_DTYPE = np.int32
"""Item ids in observations (``history``, ``candidates``): int32 halves the bytes every step
copies (catalogs up to 2**31 items; SB3 hands them to networks as float32, exact below 2**24)."""
WEIGHTS = (*FEATURES, "diversify")
"""Components of a ``weights`` action: one weight per feature, then a switch (> 0: fill the
slate with one item per topic first, best first; otherwise plain top K)."""
STRATEGIES = (
    "greedy_ctr",
    "expected_value",
    "one_per_topic",
    "fresh_topics",
    "fair_boost",
    "similar_to_history",
    "popular",
    "explore",
)
"""Ranking strategies of ``action_mode="discrete"`` (action ``i`` picks ``STRATEGIES[i]``)."""
FEATURE_CLIP = 10.0
"""Standardised features are clipped to [-10, 10]."""
FEATURE_LOW = (0.0, 0.0, -1.0, -FEATURE_CLIP, 0.0, 0.0)
FEATURE_HIGH = (1.0, 1.0, 1.0, FEATURE_CLIP, 1.0, np.inf)
"""Bounds of each candidate feature (the last one's upper bound depends on the slate size)."""
EMBEDDING_CLIP = 100.0
"""Bound of every entry of the ``embedding`` observation (the vectors stay well inside it)."""
TOPIC_EXPOSURE_RETENTION = 0.8
"""Per-step retention of the agent-visible count of topics shown this session."""


class ActionError(RecGymError, ValueError):
    """An action of the wrong shape, type or with NaN values."""


@dataclass(frozen=True)
class EnvConfig:
    """Options of the ranking environments (``gym.make(id, **options)``)."""

    data: str = "shop"
    """Logs to fit the simulator on: a dataset name or path (``load_logs``)."""
    data_path: str | None = None
    """Folder for datasets that need one (MovieLens); ``None`` = the loader's default."""
    simulator: str = "fitted"
    """``fitted`` (learned from the logs) or ``true`` (the shop's ground truth; shop only)."""
    candidates: str = "ctr"
    """Candidate generator: ``ctr`` (top N by the multi-task CTR model, trained on first use and
    cached) or ``popularity`` (popularity + text similarity to the history; no training)."""
    slate_size: int = 5
    """K: items shown per step."""
    n_candidates: int = 50
    """N: candidates offered per step."""
    action_mode: str = "scores"
    """``scores`` (one per candidate), ``weights`` (over candidate features) or ``discrete``."""
    obs_mode: str = "ids"
    """``ids``: compact item ids and features (a Dict); ``embedding``: one flat float vector of
    the CTR model's frozen user and item vectors plus the features (:func:`embedding_layout`)."""
    fairness_lambda: float = 0.0
    """Weight of the fairness penalty in the reward."""
    fairness_target: float | None = None
    """Fixed protected exposure share; ``None`` = merit-based (share of offered relevance)."""
    purchase_weight: float = 1.0
    """w in reward = clicks + w * purchases - lambda * penalty."""
    max_steps: int = 20
    """Session cap: ``truncated`` after this many steps."""
    history_length: int = 20
    """Clicked items kept in the observation."""
    render_mode: str | None = None
    """``ansi`` or ``None``."""

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(f"action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}")
        if self.obs_mode not in OBS_MODES:
            raise ConfigError(f"obs_mode must be one of {OBS_MODES}, got {self.obs_mode!r}")
        if self.candidates not in CANDIDATE_SOURCES:
            raise ConfigError(f"candidates must be one of {CANDIDATE_SOURCES}, got {self.candidates!r}")
        if self.obs_mode == "embedding" and self.candidates != "ctr":
            raise ConfigError(
                "obs_mode='embedding' reads the CTR model's encoders: it needs candidates='ctr'"
            )
        if self.simulator not in SIMULATORS:
            raise ConfigError(f"simulator must be one of {SIMULATORS}, got {self.simulator!r}")
        if self.slate_size < 1 or self.n_candidates < 1:
            raise ConfigError("slate_size and n_candidates must be >= 1")
        if self.slate_size > self.n_candidates:
            raise ConfigError(f"slate_size ({self.slate_size}) must be <= n_candidates ({self.n_candidates})")
        if self.max_steps < 1 or self.history_length < 1:
            raise ConfigError("max_steps and history_length must be >= 1")
        if not np.isfinite(self.fairness_lambda) or self.fairness_lambda < 0:
            raise ConfigError(f"fairness_lambda must be a finite number >= 0, got {self.fairness_lambda}")
        if self.render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be 'ansi' or None, got {self.render_mode!r}")


# ------------------------------------------------------------------------------ the world
class CandidateSource(Protocol):
    """The hook that offers candidates: top-N items and their features for each user."""

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(n_users, n)`` catalog rows and ``(n_users, n, 5)`` static features
        (``FEATURES`` without the session one)."""
        ...


def popularity_z(logs: LoggedData) -> np.ndarray:
    """``(n_items,)`` standardised log(1 + logged clicks), clipped to [-10, 10]."""
    log_pop = np.log1p(logs.per_item("click"))
    return np.clip((log_pop - log_pop.mean()) / (log_pop.std() + 1e-9), -FEATURE_CLIP, FEATURE_CLIP)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)


def history_profiles(history: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``(n_users, dim)`` unit mean of the history's unit item vectors (-1 pads skipped)."""
    profile = np.zeros((len(history), unit.shape[1]), dtype=np.float32)
    for column in history.T:  # one history slot at a time: no (users, H, dim) tensor
        profile[column >= 0] += unit[column[column >= 0]]
    return unit_rows(profile)


def static_features(
    pctr: np.ndarray, pcvr: np.ndarray, candidates: np.ndarray, profiles: np.ndarray, unit: np.ndarray,
    popularity: np.ndarray, protected: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """``(n_users, N, 5)`` float32: ``FEATURES`` without the session one."""
    similarity = np.clip(np.einsum("ud,und->un", profiles, unit[candidates]), -1, 1)
    return np.stack([pctr, pcvr, similarity, popularity[candidates], protected[candidates]], axis=-1).astype(
        np.float32
    )


@dataclass
class PopularitySimilaritySource:
    """Candidates by popularity plus similarity of item text to the user's history (used when
    no CTR model is wanted). Its ``pctr``/``pcvr`` are each item's smoothed logged click and
    purchase-per-click rates."""

    logs: LoggedData
    history: np.ndarray
    """``(n_users, H)`` catalog rows, -1 pad."""
    item_embedding: np.ndarray
    """``(n_items, dim)``."""
    protected: np.ndarray
    """``(n_items,)`` bool."""
    similarity_weight: float = 2.0
    """Weight of text similarity against log-popularity in the candidate score."""

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource`."""
        shows, clicks, buys = (self.logs.per_item(column) for column in (None, "click", "purchase"))
        prior = clicks.sum() / max(shows.sum(), 1.0)
        pctr = (clicks + 10 * prior) / (shows + 10)
        pcvr = (buys + 1.0) / (clicks + 5.0) if buys.any() else np.zeros(self.logs.n_items)
        candidates, profile, unit = self.retrieve(n)
        features = static_features(
            pctr[candidates],
            pcvr[candidates],
            candidates,
            profile,
            unit,
            popularity_z(self.logs),
            self.protected,
        )
        return candidates, features

    def retrieve(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(n_users, n)`` catalog rows by descending score, the users' history profiles and
        the unit item vectors."""
        pop_z = popularity_z(self.logs)
        unit = unit_rows(self.item_embedding)
        profile = history_profiles(self.history, unit)
        n_users, n = len(self.history), min(n, len(unit))
        candidates = np.empty((n_users, n), dtype=np.int64)
        for start in range(0, n_users, 2048):
            score = pop_z[None, :] + self.similarity_weight * (profile[start : start + 2048] @ unit.T)
            top = np.argpartition(-score, n - 1, axis=1)[:, :n]
            order = np.argsort(-np.take_along_axis(score, top, 1), axis=1, kind="stable")
            candidates[start : start + 2048] = np.take_along_axis(top, order, 1)
        return candidates, profile, unit


@dataclass
class CTRCandidateSource:
    """Two-stage candidate generation: retrieve ``retrieval_factor * N`` items per user by
    popularity and text similarity, then keep the N of highest click probability by the CTR
    model. ``pctr``/``pcvr`` are the model's P(click) and P(purchase | click)."""

    load_model: Callable[[], TrainedCTR]
    """Returns the CTR model (loaded only when candidates are not already cached)."""
    retrieval: PopularitySimilaritySource
    retrieval_factor: int = 6
    """Items retrieved per candidate kept. On the shop (N=50), 6 keeps 63% of the candidates a
    whole-catalog ranking would pick (10: 78%) at 1/5 of its cost (15 s vs 77 s for 10,000
    users on 2 cores)."""

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource`."""
        retrieved, profile, unit = self.retrieval.retrieve(self.retrieval_factor * n)
        history = self.retrieval.history
        users = np.arange(len(history))
        candidates, predicted = self.load_model().top_n(history, users, retrieved, n)
        pcvr = predicted.get("purchase_given_click", np.zeros_like(predicted["click"]))
        features = static_features(
            predicted["click"], pcvr, candidates, profile, unit, popularity_z(self.retrieval.logs),
            self.retrieval.protected,
        )  # fmt: skip
        return candidates, features


CANDIDATES_VERSION = 1
"""Bump when candidate generation changes, so cached candidates are recomputed."""


def cached_top_n(
    source: CandidateSource, config: EnvConfig, logs: LoggedData
) -> tuple[np.ndarray, np.ndarray]:
    """``source.top_n(N)``, cached on disk: CTR ranking of every user's retrieval takes seconds,
    and every process that builds the world would pay it."""
    import hashlib
    import json

    from encoders.ctr_config import CTR_CACHE_VERSION
    from simulators.logs import data_fingerprint
    from simulators.storage import atomic_path, cache_dir

    identity = json.dumps(
        [CANDIDATES_VERSION, CTR_CACHE_VERSION, data_fingerprint(logs), config.candidates, config.n_candidates,
         config.history_length, getattr(source, "retrieval_factor", 0)]
    )  # fmt: skip
    file = cache_dir("candidates") / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.npz"
    if file.is_file():
        with np.load(file) as stored:
            return stored["candidates"], stored["features"]
    candidates, features = source.top_n(config.n_candidates)
    with atomic_path(file) as tmp, tmp.open("wb") as handle:
        np.savez(handle, candidates=candidates, features=features)
    return candidates, features


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
    embedder: CTREmbedder | None = None
    """The CTR model's frozen encoders (built on first use by ``obs_mode="embedding"``)."""

    @property
    def ctr(self) -> TrainedCTR | None:
        """The CTR model, loaded on first use: stepping on cached candidates needs neither it nor torch."""
        return self.load_ctr() if self.load_ctr is not None else None


class CTREmbedder:
    """Dense state from the CTR model's frozen towers: the user vector (LSTM over the BERT
    item table + user features) and every catalog item's vector (projected BERT + id)."""

    def __init__(self, trained: TrainedCTR):
        import torch

        self._torch = torch
        self.model = trained.model.eval()
        self.device = next(self.model.parameters()).device
        self.user_features = trained.user_features
        with torch.no_grad():
            catalog = torch.arange(int(self.model.item_table.shape[0]), device=self.device)
            self.item_vectors = self.model.item_vectors(catalog).cpu().numpy().astype(np.float32)
        self.dim = self.item_vectors.shape[1]

    def users(self, history: np.ndarray, users: np.ndarray) -> np.ndarray:
        """``(B, dim)`` float32 user vectors for ``history (B, H)`` (-1 pad) of ``users (B,)``."""
        torch = self._torch
        with torch.no_grad():
            h = torch.from_numpy(history).to(self.device)
            f = torch.from_numpy(self.user_features[users]).to(self.device)
            return self.model.user_vectors(h, f).cpu().numpy().astype(np.float32)


def embedding_layout(config: EnvConfig, dim: int) -> dict[str, tuple[int, int]]:
    """Where each part sits in the ``embedding`` observation: name -> (start, stop). The
    candidate blocks are row-major ``(N, dim)`` and ``(N, len(FEATURES))``."""
    n, sizes = config.n_candidates, {}
    sizes["user"] = dim
    sizes["candidate_vectors"] = n * dim
    sizes["candidate_features"] = n * len(FEATURES)
    sizes["context"] = 4
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = (start, start + size)
        start += size
    return layout


_WORLDS: dict[tuple[Any, ...], RankingWorld] = {}


def _world_key(config: EnvConfig) -> tuple[Any, ...]:
    return (
        config.data, config.data_path, config.simulator, config.candidates, config.n_candidates, config.history_length
    )  # fmt: skip


def _load_or_train_ctr(logs: LoggedData, embeddings: np.ndarray) -> TrainedCTR:
    from encoders.ctr import load_or_train_ctr  # torch loads here, not when a world is built

    return load_or_train_ctr(logs, embeddings=embeddings)


def build_world(config: EnvConfig) -> RankingWorld:
    """Load logs, fit (or load) the simulator and precompute candidates; cached per process."""
    key = _world_key(config)
    if key in _WORLDS:
        return _WORLDS[key]
    from simulators.simulator import load_or_fit

    options = {"path": config.data_path} if config.data_path else {}
    logs = load_logs(config.data, **options)
    fitted, _ = load_or_fit(logs)
    load_ctr = (
        cache(partial(_load_or_train_ctr, logs, fitted.item_embedding))
        if config.candidates == "ctr"
        else None
    )
    simulator: UserSimulator = fitted
    if config.simulator == "true":
        from simulators.datasets.shop import shop_config_of
        from simulators.shop import ShopWorld

        simulator = ShopWorld(shop_config_of(logs))
    history, _ = logs.padded_histories(config.history_length)
    protected = protected_items(logs.items)
    retrieval = PopularitySimilaritySource(logs, history, fitted.item_embedding, protected)
    source: CandidateSource = retrieval if load_ctr is None else CTRCandidateSource(load_ctr, retrieval)
    candidates, features = cached_top_n(source, config, logs)
    popularity = logs.popularity()
    tail = popularity < np.quantile(popularity, 0.8)
    if logs.sensitive_attributes:
        codes, levels = np.unique(logs.users[logs.sensitive_attributes[0]].astype(str), return_inverse=True)
        user_group, n_groups = levels.astype(np.int64), len(codes)
    else:
        user_group, n_groups = np.zeros(logs.n_users, dtype=np.int64), 1
    tables = simulator.response_tables()
    rows = np.arange(len(candidates))[:, None]
    relevance = features[..., FEATURES.index("pctr")].astype(np.float64)
    world = RankingWorld(
        simulator=simulator,
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
        n_topics=int(simulator.item_topic.max()) + 1,
        tables=tables,
        candidate_logits=np.stack(
            [tables.click_logit[rows, candidates], tables.purchase_logit[rows, candidates]], axis=-1
        ).astype(np.float32),
        candidate_merit=np.stack(
            [relevance.sum(1), (relevance * features[..., FEATURES.index("protected")]).sum(1)], axis=1
        ),
    )
    _WORLDS[key] = world
    return world


# --------------------------------------------------------------------------- the engine
class SessionCore:
    """Batched sessions: ``B`` users, each at some step of their own session.

    Every array is preallocated with a leading batch axis; ``ledger_rows`` maps each slot of
    the batch to its exposure-ledger row (all 0 for a shared ledger).
    """

    def __init__(self, config: EnvConfig, world: RankingWorld, batch: int, shared_ledger: bool = True):
        self.config, self.world, self.batch = config, world, batch
        n_items = len(world.protected)
        self.ledger = ExposureLedger(
            1 if shared_ledger else batch, n_items, world.n_user_groups, config.fairness_target
        )
        self.ledger_rows = np.zeros(batch, dtype=np.int64) if shared_ledger else np.arange(batch)
        self.user = np.zeros(batch, dtype=np.int64)
        self.key = np.zeros(batch, dtype=np.uint64)
        self.step_count = np.zeros(batch, dtype=np.int64)
        self.history = np.full((batch, config.history_length), -1, dtype=ID_DTYPE)
        self.topic_exposure = np.zeros((batch, world.n_topics))
        self.session_clicks = np.zeros(batch)
        self.session_utility = np.zeros(batch)
        self.state = SessionState.fresh(batch, world.n_topics)
        self.cumulative_weights = np.cumsum(world.user_weight)
        k = config.slate_size
        self.last_slate = np.zeros((batch, k), dtype=np.int64)
        self.last_click = np.zeros((batch, k), dtype=np.int8)
        self.last_purchase = np.zeros((batch, k), dtype=np.int8)
        self.last_p_click = np.zeros((batch, k))
        self.last_leave = np.zeros(batch, dtype=np.bool_)
        self._no_diversity = np.zeros(batch, dtype=np.bool_)
        self.stats = np.zeros((batch, engine.N_STATS))
        self.penalty = np.zeros(batch)
        self.reward = np.zeros(batch)
        self.terminated = np.zeros(batch, dtype=np.bool_)
        self.truncated = np.zeros(batch, dtype=np.bool_)
        self._taken = np.zeros((batch, config.n_candidates), dtype=np.bool_)
        self._used = np.zeros((batch, world.n_topics), dtype=np.bool_)

        self.user_features = np.zeros((batch, world.user_features.shape[1]), dtype=np.float32)
        """``(B, D)`` features of each slot's user, set when a session starts."""
        self.context = np.zeros((batch, 4), dtype=np.float32)
        self.history_mask = np.zeros((batch, config.history_length), dtype=np.int8)
        self.item_topic = np.ascontiguousarray(world.simulator.item_topic, dtype=np.int64)
        self.slot_bias = np.ascontiguousarray(world.simulator.slot_bias(k), dtype=np.float64)
        self.params = engine_params(world.simulator.dynamics, world.tables, TOPIC_EXPOSURE_RETENTION)
        self.weights = position_weights(config.slate_size)
        n, n_features = config.n_candidates, len(FEATURES)
        self.candidates = np.zeros((batch, n), dtype=ID_DTYPE)
        """``(B, N)`` this session's candidates (catalog rows)."""
        self.candidate_topics = np.zeros((batch, n), dtype=np.int32)
        self.candidate_features = np.zeros((batch, n, n_features), dtype=np.float32)
        """``(B, N, F)``; the last column (session topic exposure) changes every step."""
        self.embedder: CTREmbedder | None = None
        if config.obs_mode == "embedding":
            if world.embedder is None:
                assert world.ctr is not None  # EnvConfig guarantees candidates="ctr"
                world.embedder = CTREmbedder(world.ctr)
            self.embedder = world.embedder
            self._user_vectors = np.zeros((batch, world.embedder.dim), dtype=np.float32)
            self._embedded_history = np.full((batch, config.history_length), -1, dtype=ID_DTYPE)
            self._embedded = np.zeros(batch, dtype=np.bool_)

    # -------------------------------------------------------------------------- spaces
    def observation_space(self) -> spaces.Space[Any]:
        """``ids``: a flat Dict of fixed-shape Boxes (no nesting); ``embedding``: one Box."""
        cfg, n_items = self.config, len(self.world.protected)
        if self.embedder is not None:
            size = embedding_layout(cfg, self.embedder.dim)["context"][1]
            return spaces.Box(-EMBEDDING_CLIP, EMBEDDING_CLIP, (size,), np.float32)
        low = np.array(FEATURE_LOW, dtype=np.float32)
        high = np.array(
            [*FEATURE_HIGH[:-1], cfg.slate_size / (1 - TOPIC_EXPOSURE_RETENTION)], dtype=np.float32
        )
        n_user = self.world.user_features.shape[1]
        return spaces.Dict(
            {
                "history": spaces.Box(-1, n_items - 1, (cfg.history_length,), ID_DTYPE),
                "history_mask": spaces.Box(0, 1, (cfg.history_length,), np.int8),
                "candidates": spaces.Box(0, n_items - 1, (cfg.n_candidates,), ID_DTYPE),
                "candidate_features": spaces.Box(
                    np.tile(low, (cfg.n_candidates, 1)),
                    np.tile(high, (cfg.n_candidates, 1)),
                    dtype=np.float32,
                ),
                "user_features": spaces.Box(-FEATURE_CLIP, FEATURE_CLIP, (n_user,), np.float32),
                "context": spaces.Box(
                    np.array([-1, -1, 0, 0], dtype=np.float32),
                    np.array([1, 1, 1, cfg.slate_size], dtype=np.float32),
                    dtype=np.float32,
                ),
            }
        )

    def action_space(self) -> spaces.Space[Any]:
        """Per ``action_mode``: scores Box(N), weights Box(len(WEIGHTS)) or Discrete."""
        cfg = self.config
        if cfg.action_mode == "scores":
            return spaces.Box(-1.0, 1.0, (cfg.n_candidates,), np.float32)
        if cfg.action_mode == "weights":
            return spaces.Box(-1.0, 1.0, (len(WEIGHTS),), np.float32)
        return spaces.Discrete(len(STRATEGIES))

    # ------------------------------------------------------------------------ sessions
    def start(self, index: np.ndarray, draws: np.ndarray) -> None:
        """Start sessions in batch slots ``index`` from ``draws (len, 2)``: a uniform that
        picks the user and an integer session key (see :func:`draw_session`)."""
        users = np.minimum(
            np.searchsorted(self.cumulative_weights, draws[:, 0] * self.cumulative_weights[-1]),
            len(self.world.user_weight) - 1,
        )
        self.start_users(index, users, draws[:, 1].astype(np.uint64))

    def start_users(self, index: np.ndarray, users: np.ndarray, keys: np.ndarray) -> None:
        """Start sessions of ``users`` with session ``keys`` (uint64) in batch slots ``index``."""
        world = self.world
        if self.embedder is not None:
            self._embedded[index] = False
        self.user_features[index] = world.user_features[users]
        kernel = (
            engine.parallel_start_kernel if len(index) >= engine.PARALLEL_MIN_BATCH else engine.start_kernel
        )
        kernel(
            index, users, keys, world.history, world.candidates, world.candidate_features, self.item_topic,
            self.user, self.key, self.step_count, self.session_clicks, self.session_utility, self.history,
            self.state.interest_drift, self.state.boredom, self.topic_exposure, self.candidates,
            self.candidate_topics, self.candidate_features,
        )  # fmt: skip

    def observe(self, copy: bool = True) -> Any:
        """The batch's observations: fresh arrays, or (``copy=False``) the live buffers, which
        the next step overwrites (as gymnasium's ``copy=False`` vector envs do)."""
        ids = self.observe_ids(copy)
        if self.embedder is None:
            return ids
        changed = (self.history != self._embedded_history).any(axis=1) | ~self._embedded
        if changed.any():  # the LSTM runs only for users whose history moved
            self._user_vectors[changed] = self.embedder.users(self.history[changed], self.user[changed])
            self._embedded_history[changed] = self.history[changed]
            self._embedded[changed] = True
        return np.clip(
            np.concatenate(
                [
                    self._user_vectors.copy(),
                    self.embedder.item_vectors[self.candidates].reshape(self.batch, -1),
                    self.candidate_features.reshape(self.batch, -1),
                    self.context,
                ],
                axis=1,
            ),
            -EMBEDDING_CLIP,
            EMBEDDING_CLIP,
        )

    def observe_ids(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The ``ids`` observation (what the engine and the baselines read)."""
        ledger = self.ledger
        context_kernel(
            self.ledger_rows, ledger.provider_exposure, ledger.provider_merit, ledger.popularity_exposure, ledger.target_value,
            ledger.tail_target, self.step_count, self.config.max_steps, self.session_clicks, self.history,
            self.context, self.history_mask,
        )  # fmt: skip
        return {
            "history": self.history.copy() if copy else self.history,
            "history_mask": self.history_mask.copy() if copy else self.history_mask,
            "candidates": self.candidates.copy() if copy else self.candidates,
            "candidate_features": self.candidate_features.copy() if copy else self.candidate_features,
            "user_features": self.user_features.copy() if copy else self.user_features,
            "context": self.context.copy() if copy else self.context,
        }

    # --------------------------------------------------------------------------- actions
    def scores(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-candidate scores ``(B, N)`` float64 for validated ``actions``, and which rows
        rank one item per topic first (the ``one_per_topic`` strategy)."""
        cfg, features = self.config, self.candidate_features
        if cfg.action_mode == "scores":  # the kernel ranks float32 or float64 scores as they are
            floats = actions if actions.dtype in (np.float32, np.float64) else actions.astype(np.float64)
            return np.ascontiguousarray(floats), self._no_diversity
        if cfg.action_mode == "weights":
            weights = actions.astype(np.float32)
            weighted = np.einsum("bnf,bf->bn", standardise(features), weights[:, : len(FEATURES)])
            return weighted.astype(np.float64), weights[:, -1] > 0
        strategy = actions.astype(np.int64)
        f = features.astype(np.float64)
        pctr, pcvr, similarity, popularity, protected, seen = (f[..., i] for i in range(len(FEATURES)))
        explore = engine.counter_uniforms(self.key ^ np.uint64(0xE7), self.step_count, f.shape[1])
        scores = np.select(
            [strategy[:, None] == i for i in range(len(STRATEGIES))],
            [
                pctr,
                pctr * (1 + cfg.purchase_weight * pcvr),
                pctr,
                pctr * np.exp(-seen),
                pctr * (1 + 0.5 * protected),
                similarity,
                popularity,
                explore,
            ],
        )
        return scores, strategy == STRATEGIES.index("one_per_topic")

    def check_actions(self, actions: Any) -> np.ndarray:
        """Validate a batch of actions: shape, dtype and finiteness; raise :class:`ActionError`."""
        cfg = self.config
        array = np.asarray(actions)
        if cfg.action_mode == "discrete":
            if array.shape != (self.batch,) or not np.issubdtype(array.dtype, np.integer):
                raise ActionError(
                    f"discrete actions must be {self.batch} integer(s), got shape {array.shape} {array.dtype}"
                )
            if ((array < 0) | (array >= len(STRATEGIES))).any():
                raise ActionError(f"discrete action must lie in [0, {len(STRATEGIES)}), got {array.tolist()}")
            return array
        width = cfg.n_candidates if cfg.action_mode == "scores" else len(WEIGHTS)
        if array.shape != (self.batch, width):
            raise ActionError(
                f"{cfg.action_mode} action must have shape {(width,)} per env, got {array.shape}"
            )
        if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
            raise ActionError(f"{cfg.action_mode} action holds NaN, inf or non-numbers")
        return array

    # ----------------------------------------------------------------------------- step
    def step(
        self, actions: np.ndarray, copy: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance every session one step: ``(reward, terminated, truncated, terms)``: fresh
        arrays, or (``copy=False``) views of buffers that the next step overwrites."""
        cfg, world = self.config, self.world
        scores, one_per_topic = self.scores(actions)
        kernel = (
            engine.parallel_step_kernel if self.batch >= engine.PARALLEL_MIN_BATCH else engine.step_kernel
        )
        kernel(
            scores, one_per_topic, self.user, self.key, self.step_count, self.candidates, self.candidate_topics,
            self.candidate_features, world.candidate_logits, world.candidate_merit, self.slot_bias,
            self.item_topic, self.state.interest_drift, self.state.boredom, self.topic_exposure, self.history,
            self.params, self.last_slate, self.last_click, self.last_purchase, self.last_p_click, self.last_leave,
            self.stats, self._taken, self._used,
        )  # fmt: skip
        items, stats, ledger = self.last_slate, self.stats, self.ledger
        any_done = engine.finish_kernel(
            self.ledger_rows, items, world.protected, world.tail, stats, self.last_leave, self.weights,
            ledger.target_value, ledger.provider_exposure, ledger.provider_merit, ledger.popularity_exposure,
            ledger.item_exposure, cfg.purchase_weight, cfg.fairness_lambda, cfg.max_steps, self.step_count,
            self.session_clicks, self.session_utility, self.penalty, self.reward, self.terminated, self.truncated,
        )  # fmt: skip
        if any_done:
            done = self.terminated | self.truncated
            ledger.record_session(
                self.ledger_rows[done], world.user_group[self.user[done]], self.session_utility[done]
            )
        keep = np.copy if copy else np.asarray
        clicks, purchases = stats[:, engine.S_CLICKS], stats[:, engine.S_PURCHASES]
        terms = {
            "clicks": keep(clicks),
            "purchases": keep(purchases),
            "engagement": clicks + cfg.purchase_weight * purchases,
            "fairness_penalty": keep(self.penalty),
            "protected_in_slate": keep(stats[:, engine.S_PROTECTED]),
        }
        return keep(self.reward), keep(self.terminated), keep(self.truncated), terms

    def render(self, b: int = 0) -> str:
        """The last slate of batch slot ``b`` with the user's response."""
        lines = [f"user {self.user[b]}  step {self.step_count[b]}"]
        for k, item in enumerate(self.last_slate[b]):
            mark = "BUY" if self.last_purchase[b, k] else ("click" if self.last_click[b, k] else "")
            title = self.world.item_text[item].split(". ")[0]
            lines.append(f"  {k + 1}. [{mark:5}] {title[:70]}")
        return "\n".join(lines) + "\n"


def standardise(features: np.ndarray) -> np.ndarray:
    """``(B, N, F)`` features z-scored across each step's candidates (a constant feature -> 0),
    so that ranking weights compare signals on one scale."""
    centred = features - features.mean(axis=1, keepdims=True)
    return centred / (centred.std(axis=1, keepdims=True) + 1e-6)


def engine_params(dynamics: DynamicsParams, tables: ResponseTables, exposure_retention: float) -> np.ndarray:
    """The kernel's parameter vector (layout: ``envs.engine.P_*``)."""
    params = np.zeros(engine.N_PARAMS)
    params[engine.P_DRIFT_PER_CLICK] = dynamics.drift_per_click
    params[engine.P_DRIFT_RETENTION] = dynamics.drift_retention
    params[engine.P_BOREDOM_PER_VIEW] = dynamics.boredom_per_view
    params[engine.P_BOREDOM_PER_CLICK] = dynamics.boredom_per_click
    params[engine.P_BOREDOM_RETENTION] = dynamics.boredom_retention
    params[engine.P_BOREDOM_WEIGHT] = dynamics.boredom_weight
    params[engine.P_LEAVE_BIAS] = dynamics.leave_bias
    params[engine.P_LEAVE_PER_BOREDOM] = dynamics.leave_per_boredom
    params[engine.P_LEAVE_IF_NO_CLICK] = dynamics.leave_if_no_click
    params[engine.P_LEAVE_PER_CLICK] = dynamics.leave_per_click
    params[engine.P_PURCHASE_DRIFT] = tables.purchase_drift_weight
    params[engine.P_EXPOSURE_RETENTION] = exposure_retention
    params[engine.P_HAS_PURCHASES] = float(tables.has_purchases)
    return params


def draw_session(rng: np.random.Generator) -> np.ndarray:
    """``(2,)`` the draws that start a session: a user uniform and a 53-bit key (exact in float64)."""
    draws = rng.random(2)
    draws[1] = np.floor(draws[1] * 2.0**53)
    return draws


# ------------------------------------------------------------------------- the single env
class RankingEnv(gym.Env[dict[str, np.ndarray], Any]):
    """One simulated user session per episode (see the module docstring and README).

    Options are the fields of :class:`EnvConfig`, passed as keyword arguments.
    ``reset(seed=...)`` also starts a fresh exposure ledger; ``reset()`` keeps it, so the
    ledger spans sessions.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}  # noqa: RUF012 (gymnasium's convention)

    def __init__(self, **options: Any):
        self.config = EnvConfig(**options)
        self.render_mode = self.config.render_mode
        self._build()

    def _build(self) -> None:
        self.world = build_world(self.config)
        self.core = SessionCore(self.config, self.world, batch=1)
        self.observation_space = self.core.observation_space()
        self.action_space = self.core.action_space()
        self._started = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw a user and start their session."""
        super().reset(seed=seed)
        if seed is not None:
            self.core.ledger.clear()
        self.core.start(np.array([0]), draw_session(self.np_random)[None, :])
        self._started = True
        return _first(self.core.observe()), {"user": int(self.core.user[0])}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Show the slate the action ranks; the user answers each slot."""
        if not self._started:
            raise ActionError("call reset() before step()")
        batch_action = self.core.check_actions(np.asarray(action)[None, ...])
        reward, terminated, truncated, terms = self.core.step(batch_action, copy=False)  # read at once
        if terminated[0] or truncated[0]:
            self._started = False
        info = {name: float(value[0]) for name, value in terms.items()}
        info["slate"] = self.core.last_slate[0].copy()
        return _first(self.core.observe()), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self) -> str | None:
        """``ansi``: the last slate and the response."""
        return self.core.render(0) if self.render_mode == "ansi" else None

    def fairness_metrics(self) -> dict[str, float]:
        """The exposure ledger's metrics."""
        return self.core.ledger.metrics(0)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for heavy in ("world", "core", "observation_space", "action_space"):
            state.pop(heavy, None)
        state["_core_arrays"] = {k: v for k, v in self.core.__dict__.items() if k not in _WORLD_DERIVED}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arrays = state.pop("_core_arrays")
        self.__dict__.update(state)
        started = state.get("_started", False)
        self._build()
        self.core.__dict__.update(arrays)
        self._started = started


_WORLD_DERIVED = frozenset(
    {
        "world",
        "config",
        "item_topic",
        "slot_bias",
        "params",
        "cumulative_weights",
        "weights",
        "embedder",
    }
)
"""Core attributes rebuilt from the (cached) world on unpickling, so a pickle holds session state only."""


def _first(batch: Any) -> Any:
    if isinstance(batch, np.ndarray):
        return batch[0]
    return {name: value[0] for name, value in batch.items()}
