"""Candidate generation: the N items each user is offered, with their static features.

Retrieval by popularity and text similarity to the history; ranking by the CTR model
(``candidates="ctr"``) or by logged rates (``"popularity"``). Cached on disk per logs and options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from envs.config import FEATURE_CLIP
from simulators.core.storage import atomic_path, cache_dir, content_key, load_or_build, manifest_beside
from simulators.data.logs import LoggedData

if TYPE_CHECKING:  # torch loads only when a CTR model is used
    from encoders.ctr.train import TrainedCTR


RETRIEVAL_FACTOR = 6
"""Items retrieved per candidate kept by :class:`CTRCandidateSource` (its default)."""


# ------------------------------------------------------------------------------ the world
class CandidateSource(Protocol):
    """The hook that offers candidates: top-N items and their features for each user."""

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(n_users, n)`` catalog rows and ``(n_users, n, 5)`` static features
        (``FEATURES`` without the session one)."""
        ...

    def score(
        self, history: np.ndarray, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Given items ``(U, R)`` (catalog rows) of users ``(U,)`` with clicked ``history (U, H)``
        (-1 pad): the same items ranked as :meth:`top_n` ranks (best first) and their static
        features ``(U, R, 5)``, for a history other than the logged one (the serving path)."""
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
    on_sale: np.ndarray | None = None
    """``(n_items,)`` bool: the items retrieval may offer (launched by the env's day); ``None`` = all."""
    fresh: np.ndarray | None = None
    """``(n_items,)`` bool: items on sale the logs never showed (new launches); ``None`` = none."""
    fresh_slots: int = 0
    """Of each user's ``n`` candidates, how many go to the best ``fresh`` items (at most their number)."""

    def __post_init__(self) -> None:
        self._computed: dict[str, np.ndarray] = {}
        if self.on_sale is not None and self.on_sale.all():
            self.on_sale = None
        if self.fresh is not None and not self.fresh.any():
            self.fresh = None

    def fresh_quota(self, scale: int = 1) -> int:
        """How many fresh items ``scale`` times the quota is: ``scale * fresh_slots``, at most the
        fresh items there are (0 when there are none)."""
        if self.fresh is None:
            return 0
        return min(scale * self.fresh_slots, int(self.fresh.sum()))

    def _cached(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if name not in self._computed:  # per-item arrays a request would otherwise recompute from the logs
            self._computed[name] = compute()
        return self._computed[name]

    def popularity(self) -> np.ndarray:
        """``(n_items,)`` :func:`popularity_z` of the logs (computed once)."""
        return self._cached("popularity", lambda: popularity_z(self.logs))

    def unit(self) -> np.ndarray:
        """``(n_items, dim)`` the item vectors at unit norm (computed once)."""
        return self._cached("unit", lambda: unit_rows(self.item_embedding))

    def retrieval_score(self, profile: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """``popularity + similarity_weight * similarity`` of ``items (U, R)`` (default: the
        whole catalog) to users' history ``profile (U, dim)``: the retrieval's ranking score."""
        if items is None:
            score = self.popularity()[None, :] + self.similarity_weight * (profile @ self.unit().T)
            return score if self.on_sale is None else np.where(self.on_sale[None, :], score, -np.inf)
        return self.popularity()[items] + self.similarity_weight * np.einsum(
            "ud,urd->ur", profile, self.unit()[items]
        )

    def rates(self) -> tuple[np.ndarray, np.ndarray]:
        """``(n_items,)`` each: the smoothed logged click rate and purchase-per-click rate (computed once)."""

        def compute() -> np.ndarray:
            shows, clicks, buys = (self.logs.per_item(column) for column in (None, "click", "purchase"))
            prior = clicks.sum() / max(shows.sum(), 1.0)
            pctr = (clicks + 10 * prior) / (shows + 10)
            pcvr = (buys + 1.0) / (clicks + 5.0) if buys.any() else np.zeros(self.logs.n_items)
            return np.stack([pctr, pcvr])

        both = self._cached("rates", compute)
        return both[0], both[1]

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource`."""
        pctr, pcvr = self.rates()
        candidates, profile, unit = self.retrieve(n, self.fresh_quota())
        features = static_features(
            pctr[candidates],
            pcvr[candidates],
            candidates,
            profile,
            unit,
            self.popularity(),
            self.protected,
        )
        return candidates, features

    def score(
        self, history: np.ndarray, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource` (ranked by the retrieval score)."""
        del users
        profile = history_profiles(history, self.unit())
        ranked = np.take_along_axis(
            items, np.argsort(-self.retrieval_score(profile, items), axis=1, kind="stable"), 1
        )
        pctr, pcvr = self.rates()
        return ranked, static_features(
            pctr[ranked], pcvr[ranked], ranked, profile, self.unit(), self.popularity(), self.protected
        )

    def retrieve(self, n: int, fresh: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(n_users, n)`` catalog rows, the users' history profiles and the unit item vectors:
        the ``n - fresh`` best items not fresh by descending score, then the ``fresh`` best
        fresh ones (``fresh`` <= the fresh items there are; 0: all by descending score)."""
        unit = self.unit()
        profile = history_profiles(self.history, unit)
        on_sale = len(unit) if self.on_sale is None else int(self.on_sale.sum())
        n_users, n = len(self.history), min(n, on_sale)
        n_fresh = 0 if self.fresh is None else int(self.fresh.sum())
        f = min(max(fresh, n - (on_sale - n_fresh)), n, n_fresh)  # no more of either kind than there is
        candidates = np.empty((n_users, n), dtype=np.int64)
        for start in range(0, n_users, 2048):
            score = self.retrieval_score(profile[start : start + 2048])
            if f == 0:
                candidates[start : start + 2048] = _best(score, n)
            else:
                assert self.fresh is not None
                candidates[start : start + 2048, : n - f] = _best(np.where(self.fresh, -np.inf, score), n - f)
                candidates[start : start + 2048, n - f :] = _best(np.where(self.fresh, score, -np.inf), f)
        return candidates, profile, unit


def _best(score: np.ndarray, n: int) -> np.ndarray:
    """``(U, n)`` the columns of each row's ``n`` highest scores, best first (ties: lowest column)."""
    if n == 0:
        return np.empty((len(score), 0), dtype=np.int64)
    top = np.argpartition(-score, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(score, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1)


@dataclass
class CTRCandidateSource:
    """Two-stage candidate generation: retrieve ``retrieval_factor * N`` items per user by
    popularity and text similarity, then keep the N of highest click probability by the CTR
    model. ``pctr``/``pcvr`` are the model's P(click) and P(purchase | click)."""

    load_model: Callable[[], TrainedCTR]
    """Returns the CTR model (loaded only when candidates are not already cached)."""
    retrieval: PopularitySimilaritySource
    retrieval_factor: int = RETRIEVAL_FACTOR
    """Items retrieved per candidate kept: more keeps more of the candidates a whole-catalog CTR
    ranking would pick, at a ranking cost that grows with it."""

    def top_n(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource` (the fresh quota kept: the best fresh items by P(click)
        among the fresh ones retrieved, the rest among the others, all ranked by P(click))."""
        retrieved, profile, unit = self.retrieval.retrieve(
            self.retrieval_factor * n, self.retrieval.fresh_quota(self.retrieval_factor)
        )
        history = self.retrieval.history
        users = np.arange(len(history))
        model = self.load_model()
        fresh = self.retrieval.fresh
        quota = fresh is not None and self.retrieval.fresh_slots > 0
        pulled = int(fresh[retrieved[0]].sum()) if fresh is not None and quota else 0  # then they come last
        if pulled == 0:
            candidates, predicted = model.top_n(history, users, retrieved, n)
        else:
            kept = min(max(self.retrieval.fresh_quota(), n - (retrieved.shape[1] - pulled)), pulled)
            old, old_p = model.top_n(history, users, retrieved[:, :-pulled], n - kept)
            new, new_p = model.top_n(history, users, retrieved[:, -pulled:], kept)
            both = np.concatenate([old_p["click"], new_p["click"]], axis=1)
            order = np.argsort(-both, axis=1, kind="stable")
            candidates = np.take_along_axis(np.concatenate([old, new], axis=1), order, 1)
            predicted = {
                t: np.take_along_axis(np.concatenate([old_p[t], new_p[t]], axis=1), order, 1) for t in old_p
            }
        pcvr = predicted.get("purchase_given_click", np.zeros_like(predicted["click"]))
        features = static_features(
            predicted["click"], pcvr, candidates, profile, unit, self.retrieval.popularity(),
            self.retrieval.protected,
        )  # fmt: skip
        return candidates, features

    def score(
        self, history: np.ndarray, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`CandidateSource` (ranked by the CTR model's P(click))."""
        ranked, predicted = self.load_model().top_n(history, users, items, items.shape[1])
        unit = self.retrieval.unit()
        pcvr = predicted.get("purchase_given_click", np.zeros_like(predicted["click"]))
        features = static_features(
            predicted["click"], pcvr, ranked, history_profiles(history, unit), unit,
            self.retrieval.popularity(), self.retrieval.protected,
        )  # fmt: skip
        return ranked, features


CANDIDATES_VERSION = 2
"""Bump when candidate generation changes, so cached candidates are recomputed."""


def _mask_digest(mask: np.ndarray | None) -> str | None:
    return None if mask is None else hashlib.sha256(np.packbits(mask).tobytes()).hexdigest()


def candidates_key(
    generator: str, fingerprint: str, n_candidates: int, history_length: int, on_sale: np.ndarray | None,
    fresh: np.ndarray | None, fresh_candidates: int | None,
) -> str:  # fmt: skip
    """The identity of a candidate table: the generator's (the CTR model's key, or
    ``popularity``), the logs' fingerprint, N, the history length, and the masks of the items on
    sale and of the new launches among them (with their quota)."""
    sale = None if on_sale is None or on_sale.all() else _mask_digest(on_sale)
    return content_key(
        "candidates", CANDIDATES_VERSION, generator, fingerprint, n_candidates, history_length,
        RETRIEVAL_FACTOR, sale, _mask_digest(fresh), fresh_candidates,
    )  # fmt: skip


def cached_top_n(source: CandidateSource, n: int, key: str) -> tuple[np.ndarray, np.ndarray]:
    """``source.top_n(n)``, cached on disk under ``key`` (:func:`candidates_key`): CTR ranking of
    every user's retrieval takes seconds, and every process that builds the world would pay it."""
    file = cache_dir("candidates") / f"{key}.npz"

    def load() -> tuple[np.ndarray, np.ndarray]:
        with np.load(file, allow_pickle=False) as stored:
            candidates, features = stored["candidates"], stored["features"]
        if not np.isfinite(features).all():
            raise ValueError("its features hold NaN or inf")
        return candidates, features

    def build() -> tuple[np.ndarray, np.ndarray]:
        candidates, features = source.top_n(n)
        with atomic_path(file) as tmp, tmp.open("wb") as handle:
            np.savez(handle, candidates=candidates, features=features)
        return candidates, features

    return load_or_build("candidates", manifest_beside(file), [file], load, build)
