"""Batched sessions: the state of ``B`` users, each at some step of their own session, stepped
by the compiled engine (:mod:`envs.engine`). The single and the vector env are views of it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from envs import engine
from envs.config import (
    CONTEXT_HIGH_PER_SLATE,
    CONTEXT_LOW,
    DISCRETE_MODES,
    EMBEDDING_CLIP,
    FEATURE_CLIP,
    FEATURE_HIGH,
    FEATURE_LOW,
    FEATURE_STD_FLOOR,
    FEATURES,
    ID_DTYPE,
    MAX_WEIGHT,
    RETURN_CONTEXT_HIGH_PER_SLATE,
    RETURN_CONTEXT_LOW,
    STRATEGIES,
    TOPIC_EXPOSURE_RETENTION,
    WEIGHTS,
    ActionError,
    EnvConfig,
    embedding_layout,
)
from envs.engine import context_kernel, engine_params
from envs.fairness import ExposureLedger, position_weights
from envs.retention import ReturnClock
from envs.world import RankingWorld, build_world
from simulators.core.errors import ConfigError
from simulators.dynamics import SessionState

if TYPE_CHECKING:
    from encoders.ctr.embedder import CTREmbedder


# --------------------------------------------------------------------------- the engine
class SessionCore:
    """Batched sessions: ``B`` users, each at some step of their own session.

    Every array is preallocated with a leading batch axis; ``ledger_rows`` maps each slot of
    the batch to its exposure-ledger row (all 0 for a shared ledger).
    """

    def __init__(self, config: EnvConfig, world: RankingWorld, batch: int, shared_ledger: bool = True):
        self.config, self.world, self.batch = config, world, batch
        # Without provider groups the merit-based target is 0 and so is the penalty (fairness is off,
        # as the reports say); a fixed target would charge every step for a group that does not exist.
        if (
            config.fairness_lambda > 0
            and config.fairness_target is not None
            and not world.has_provider_groups
        ):
            raise ConfigError(
                f"fairness_target {config.fairness_target:g}: a fixed protected share needs provider groups, and "
                "these logs have none (no provider column, or every item in one group): map an item column onto "
                "provider (column_map, or schema.json beside your tables)"
            )
        if config.user_fairness_lambda > 0 and world.n_user_groups < 2:
            raise ConfigError(
                f"user_fairness_lambda {config.user_fairness_lambda:g}: the user-side penalty needs user groups, "
                "and these logs name no sensitive attribute with two or more values"
            )
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
        self.repeat_shown = np.zeros(batch)
        """``(B,)`` this session's slots whose topic it had shown before."""
        self.repeat_clicks = np.zeros(batch)
        """``(B,)`` ... and the clicks they got."""
        self._topic_counts = np.zeros((batch, world.n_topics))
        self.state = SessionState.fresh(batch, world.n_topics)
        self.clock = ReturnClock(config, world, batch) if config.horizon_days > 0 else None
        """The retention env's clock (``horizon_days > 0``; ``None`` otherwise)."""
        # A session is a user's in proportion to their logged sessions; a retention episode (a
        # user's horizon) is any user's who has one.
        self.cumulative_weights = np.cumsum(
            world.user_weight if self.clock is None else world.user_weight > 0
        )
        k = config.slate_size
        self.last_slate = np.zeros((batch, k), dtype=np.int64)
        self.last_click = np.zeros((batch, k), dtype=np.int8)
        self.last_purchase = np.zeros((batch, k), dtype=np.int8)
        self.last_p_click = np.zeros((batch, k))
        self.last_p_purchase = np.zeros((batch, k))
        self.last_leave = np.zeros(batch, dtype=np.bool_)
        self.last_p_leave = np.zeros(batch)
        self.stats = np.zeros((batch, engine.N_STATS))
        self.penalty = np.zeros(batch)
        self.user_penalty = np.zeros(batch)
        self.reward = np.zeros(batch)
        self.terminated = np.zeros(batch, dtype=np.bool_)
        self.truncated = np.zeros(batch, dtype=np.bool_)
        self._taken = np.zeros((batch, config.n_candidates), dtype=np.bool_)
        self._used = np.zeros((batch, world.n_topics), dtype=np.bool_)
        self._draw = np.full((batch, 2, k), -1, dtype=np.int8)
        """``(B, 2, K)`` all -1: every click and purchase drawn (the forced outcomes of a plain step)."""

        self.user_features = np.zeros((batch, world.user_features.shape[1]), dtype=np.float32)
        """``(B, D)`` features of each slot's user, set when a session starts."""
        self.context = np.zeros((batch, len(config.context_names)), dtype=np.float32)
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
            self.embedder = world.ctr_embedder()
            self._user_vectors = np.zeros((batch, self.embedder.dim), dtype=np.float32)
            self._embedded_history = np.full((batch, config.history_length), -1, dtype=ID_DTYPE)
            self._embedded = np.zeros(batch, dtype=np.bool_)
        self.uncertainty = np.zeros(batch)
        """``(B,)`` the last step's pessimism penalty (``EnvConfig.pessimism``; 0 when off)."""
        self.members: list[SessionCore] = [
            SessionCore(member, build_world(member), batch, shared_ledger)
            for member in pessimism_members(config)
        ]
        """The fits whose disagreement the penalty charges, each following this core's sessions."""
        for member in self.members:
            if not np.array_equal(member.world.candidates, world.candidates):
                raise ConfigError(
                    "pessimism: the ensemble's fits offer other candidates than the env's world"
                )

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
        low_context: tuple[float, ...] = CONTEXT_LOW
        high_context: tuple[float | None, ...] = CONTEXT_HIGH_PER_SLATE
        if self.clock is not None:
            low_context, high_context = (
                low_context + RETURN_CONTEXT_LOW,
                high_context + RETURN_CONTEXT_HIGH_PER_SLATE,
            )
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
                    np.array(low_context, dtype=np.float32),
                    np.array([cfg.slate_size if h is None else h for h in high_context], dtype=np.float32),
                    dtype=np.float32,
                ),
            }
        )

    def action_space(self) -> spaces.Space[Any]:
        """Per ``action_mode``: scores Box(N), weights Box(len(WEIGHTS)), Discrete(len(STRATEGIES))
        or Discrete(M) over the M weight vectors of ``action_menu``."""
        cfg = self.config
        if cfg.action_mode == "scores":
            return spaces.Box(-1.0, 1.0, (cfg.n_candidates,), np.float32)
        if cfg.action_mode == "weights":
            return spaces.Box(-1.0, 1.0, (len(WEIGHTS),), np.float32)
        return spaces.Discrete(discrete_actions(cfg))

    # ------------------------------------------------------------------------ sessions
    def start(self, index: np.ndarray, draws: np.ndarray) -> None:
        """Start sessions in batch slots ``index`` from ``draws (len, 2)``: a uniform that
        picks the user and an integer session key (see :func:`draw_session`)."""
        users = np.minimum(
            np.searchsorted(self.cumulative_weights, draws[:, 0] * self.cumulative_weights[-1]),
            len(self.world.user_weight) - 1,
        )
        self.start_users(index, users, draws[:, 1].astype(np.uint64))
        if self.clock is not None:
            self.clock.begin(index, self.key[index])

    @property
    def episode_keys(self) -> np.ndarray:
        """``(B,)`` each slot's episode key: its session's, or in the retention env its first session's."""
        return self.key if self.clock is None else self.clock.episode_key

    def come_back(self, index: np.ndarray) -> np.ndarray:
        """The retention env: the sessions of slots ``index`` ended. The users whose next session
        falls within the horizon start it in their slot, with the clicked history they had
        (:mod:`envs.retention`). Returns ``(len,)`` bool: came back."""
        if self.clock is None:
            raise ConfigError("come_back is the retention env's (horizon_days > 0)")
        back, keys = self.clock.end_sessions(
            index, self.user[index], self.step_count[index], self.session_clicks[index]
        )
        slots = index[back]
        history = self.history[slots].copy()
        self.start_users(slots, self.user[slots].copy(), keys[back])
        self.history[slots] = history
        return back

    def start_users(self, index: np.ndarray, users: np.ndarray, keys: np.ndarray) -> None:
        """Start sessions of ``users`` with session ``keys`` (uint64) in batch slots ``index``."""
        world = self.world
        if self.embedder is not None:
            self._embedded[index] = False
        self.user_features[index] = world.user_features[users]
        self.repeat_shown[index] = 0.0
        self.repeat_clicks[index] = 0.0
        kernel = (
            engine.parallel_start_kernel if len(index) >= engine.PARALLEL_MIN_BATCH else engine.start_kernel
        )
        kernel(
            index, users, keys, world.history, world.candidates, world.candidate_features, self.item_topic,
            self.user, self.key, self.step_count, self.session_clicks, self.session_utility, self.history,
            self.state.interest_drift, self.state.boredom, self.topic_exposure, self.candidates,
            self.candidate_topics, self.candidate_features,
        )  # fmt: skip
        for member in self.members:
            member.start_users(index, users, keys)

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
            ledger.tail_target, self.step_count, self.config.max_steps, self.session_clicks, self.repeat_shown,
            self.repeat_clicks, self.history, self.item_topic, self._topic_counts, self.context, self.history_mask,
        )  # fmt: skip
        if self.clock is not None:
            self.clock.fill(self.context)
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
        rank one item per topic first (:func:`action_scores` on this batch's candidates)."""
        return action_scores(self.config, actions, self.candidate_features, self.key, self.step_count)

    def check_actions(self, actions: Any) -> np.ndarray:
        """Validate a batch of actions: shape, dtype and finiteness; raise :class:`ActionError`."""
        cfg = self.config
        array = as_action_array(actions)
        if cfg.action_mode in DISCRETE_MODES:
            if array.shape != (self.batch,) or not np.issubdtype(array.dtype, np.integer):
                raise ActionError(
                    f"{cfg.action_mode} actions must be {self.batch} integer(s), got shape {array.shape} {array.dtype}"
                )
            count = discrete_actions(cfg)
            if ((array < 0) | (array >= count)).any():
                raise ActionError(f"{cfg.action_mode} action must lie in [0, {count}), got {array.tolist()}")
            return array
        width = cfg.n_candidates if cfg.action_mode == "scores" else len(WEIGHTS)
        if array.shape != (self.batch, width):
            raise ActionError(
                f"{cfg.action_mode} action must have shape {(width,)} per env, got {array.shape}"
            )
        if array.dtype.kind not in "fiu" or not np.isfinite(array).all():
            raise ActionError(f"{cfg.action_mode} action holds NaN, inf or non-numbers")
        magnitude = np.abs(array.astype(np.float64))  # (an int dtype's minimum has no int absolute value)
        if cfg.action_mode == "weights" and (largest := float(magnitude.max(initial=0.0))) > MAX_WEIGHT:
            raise ActionError(  # float32 arithmetic would overflow to inf and silently reorder the slate
                f"weights action values are meant in [-1, 1]; got {largest:g} (at most {MAX_WEIGHT:g} accepted)"
            )
        return array

    # ----------------------------------------------------------------------------- step
    def step(
        self, actions: np.ndarray, copy: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Advance every session one step: ``(reward, terminated, truncated, terms)``: fresh
        arrays, or (``copy=False``) views of buffers that the next step overwrites."""
        return self.step_scores(*self.scores(actions), copy=copy)

    def step_scores(
        self,
        scores: np.ndarray,
        one_per_topic: np.ndarray,
        copy: bool = True,
        observed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """:meth:`step` from per-candidate ``scores (B, N)`` and the one-per-topic switch ``(B,)``
        (what :func:`action_scores` makes of any action, in any mode), so a planner can try actions
        of several modes in one batch. ``observed (B, 2, K)`` int8: clicks and purchases that happened
        elsewhere (0 or 1), used instead of drawing them (-1: draw), so the model's state follows a
        real session (a belief); the leave draw then means nothing."""
        cfg, world = self.config, self.world
        kernel = (
            engine.parallel_step_kernel if self.batch >= engine.PARALLEL_MIN_BATCH else engine.step_kernel
        )
        kernel(
            scores, one_per_topic, self.user, self.key, self.step_count, self.candidates, self.candidate_topics,
            self.candidate_features, world.candidate_logits, world.candidate_merit, world.user_traits, self.slot_bias,
            self.item_topic, self.state.interest_drift, self.state.boredom, self.topic_exposure, self.history,
            self.params, self.last_slate, self.last_click, self.last_purchase, self.last_p_click, self.last_p_purchase,
            self.last_leave, self.last_p_leave,
            self.stats, self._taken, self._used, self._draw if observed is None else observed,
        )  # fmt: skip
        items, stats, ledger = self.last_slate, self.stats, self.ledger
        if self.clock is not None:
            self.clock.record(self.item_topic[items])
        self.repeat_shown += stats[:, engine.S_REPEAT_SHOWN]
        self.repeat_clicks += stats[:, engine.S_REPEAT_CLICKS]
        any_done = engine.finish_kernel(
            self.ledger_rows, items, world.protected, world.tail, stats, self.last_leave, self.weights,
            ledger.target_value, ledger.provider_exposure, ledger.provider_merit, ledger.popularity_exposure,
            ledger.item_exposure, cfg.purchase_weight, cfg.fairness_lambda, cfg.max_steps, self.step_count,
            self.session_clicks, self.session_utility, self.penalty, self.reward, self.terminated, self.truncated,
        )  # fmt: skip
        self.user_penalty[:] = 0.0
        if any_done:
            done = self.terminated | self.truncated
            self.user_penalty[done] = ledger.record_session(
                self.ledger_rows[done], world.user_group[self.user[done]], self.session_utility[done]
            )
            if cfg.user_fairness_lambda > 0:
                self.reward[done] -= cfg.user_fairness_lambda * self.user_penalty[done]
        if self.members:
            self.uncertainty[:] = cfg.pessimism * self._disagreement(scores, one_per_topic)
            self.reward -= self.uncertainty
        keep = np.copy if copy else np.asarray
        clicks, purchases = stats[:, engine.S_CLICKS], stats[:, engine.S_PURCHASES]
        terms = {
            "clicks": keep(clicks),
            "purchases": keep(purchases),
            "engagement": clicks + cfg.purchase_weight * purchases,
            "fairness_penalty": keep(self.penalty),
            "user_fairness_penalty": keep(self.user_penalty),
            "protected_in_slate": keep(stats[:, engine.S_PROTECTED]),
            "uncertainty_penalty": keep(self.uncertainty),
        }
        return keep(self.reward), keep(self.terminated), keep(self.truncated), terms

    def _disagreement(self, scores: np.ndarray, one_per_topic: np.ndarray) -> np.ndarray:
        """``(B,)`` the standard deviation over :attr:`members` of the step's expected engagement:
        each member steps the same action with this step's outcomes imposed (so its state follows
        the session), and its P(click) and P(purchase | click) of the shown slate are summed."""
        observed = np.stack([self.last_click, self.last_purchase], axis=1).astype(np.int8)
        expected = np.empty((len(self.members), self.batch))
        for m, member in enumerate(self.members):
            member.step_scores(scores, one_per_topic, copy=False, observed=observed)
            # P(purchase | click) is 0 in the slots the session did not click (the kernel's convention)
            purchases = member.last_p_purchase.sum(axis=1)
            expected[m] = member.last_p_click.sum(axis=1) + self.config.purchase_weight * purchases
        return expected.std(axis=0, ddof=1)

    SESSION_ARRAYS = (
        "user", "step_count", "history", "topic_exposure", "session_clicks", "session_utility", "repeat_shown",
        "repeat_clicks", "user_features", "candidates", "candidate_topics", "candidate_features",
    )  # fmt: skip
    """The arrays that hold each slot's session (with the key, the latent state and the ledger row)."""

    def clone_into(
        self, target: SessionCore, rows: np.ndarray, keys: np.ndarray, ledger: ExposureLedger | None = None
    ) -> None:
        """Copy the sessions of slots ``rows (R,)`` (repeats allowed) into the ``R`` slots of
        ``target``, a core over the same world, with session ``keys (R,)``: fresh keys make each
        copy an independent future of its session, while the session's own key would replay its
        own dice. The copies' ledger is ``ledger``'s state (default this core's), each copy on the
        row of its session; ``target``'s own observations and steps never touch this core."""
        if target.world.n_topics != self.world.n_topics or target.batch != len(rows):
            raise ConfigError(
                f"clone_into: {len(rows)} rows into a core of batch {target.batch} over another world"
            )
        for name in self.SESSION_ARRAYS:
            getattr(target, name)[...] = getattr(self, name)[rows]
        target.state.interest_drift[...] = self.state.interest_drift[rows]
        target.state.boredom[...] = self.state.boredom[rows]
        target.key[...] = keys
        if self.clock is not None and target.clock is not None:
            self.clock.clone_into(target.clock, rows)
            target.clock.episode_key[...] = keys  # a copy's returns draw from its own dice, not the episode's
        target.ledger_rows = np.ascontiguousarray(self.ledger_rows[rows])
        source = ledger or self.ledger
        if target.ledger.n_rows != source.n_rows:
            target.ledger = ExposureLedger(
                source.n_rows, source.n_items, source.n_user_groups, source.target_share
            )
        target.ledger.restore(source.snapshot())
        if target.members:  # a target without them plays the copies unpenalised
            if len(target.members) != len(self.members):
                raise ConfigError("clone_into: the target core charges another ensemble's disagreement")
            for mine, theirs in zip(self.members, target.members, strict=True):
                mine.clone_into(theirs, rows, keys, ledger=mine.ledger)

    def slates(
        self, scores: np.ndarray, one_per_topic: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """``(R, K)`` candidate positions of the slates the step would show for ``scores (R, N)``
        and ``one_per_topic (R,)`` (the step kernel's own ranking), without stepping; ``rows (R,)``:
        the slot each row of scores is for (default: one row per slot)."""
        out = np.zeros((len(scores), self.config.slate_size), dtype=np.int64)
        kernel = (
            engine.parallel_rank_kernel if len(scores) >= engine.PARALLEL_MIN_BATCH else engine.rank_kernel
        )
        topics = np.ascontiguousarray(self.candidate_topics if rows is None else self.candidate_topics[rows])
        kernel(
            np.ascontiguousarray(scores),
            topics,
            self.config.slate_size,
            one_per_topic,
            self.world.n_topics,
            out,
        )
        return out

    def render(self, b: int = 0) -> str:
        """The last slate of batch slot ``b`` with the user's response."""
        lines = [f"user {self.user[b]}  step {self.step_count[b]}"]
        for k, item in enumerate(self.last_slate[b]):
            mark = "BUY" if self.last_purchase[b, k] else ("click" if self.last_click[b, k] else "")
            title = self.world.item_text[item].split(". ")[0]
            lines.append(f"  {k + 1}. [{mark:5}] {title[:70]}")
        return "\n".join(lines) + "\n"


def pessimism_members(config: EnvConfig) -> list[EnvConfig]:
    """The env configs of the fits whose disagreement ``config.pessimism`` charges (none when off):
    ``fit_sample`` 1..``pessimism_members``, the penalty itself off (and no retention clock: a
    member follows the env's sessions and prices one step, never a return)."""
    if config.pessimism <= 0:
        return []
    return [
        replace(
            config,
            fit_sample=k,
            pessimism=0.0,
            render_mode=None,
            horizon_days=0.0,
            return_bonus=0.0,
            return_effects=True,
        )
        for k in range(1, config.pessimism_members + 1)
    ]


def action_scores(
    config: EnvConfig, actions: np.ndarray, features: np.ndarray, keys: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-candidate scores ``(B, N)`` of validated ``actions`` over candidates with ``features
    (B, N, F)``, and which rows rank one item per topic first: ``scores`` actions as they are,
    ``weights`` over the standardised features (the last weight the diversity switch), a
    ``discrete`` strategy's scoring (``explore`` draws counter-based uniforms of the session
    ``keys (B,)`` uint64 and ``steps (B,)``), a ``menu`` action as its weight vector's ``weights``
    action. The env and the serving path rank by this one function."""
    mode = config.action_mode
    if mode == "menu":  # its entries' weight vectors, ranked as weights actions
        actions, mode = config.menu[actions.astype(np.int64)], "weights"
    if mode == "scores":  # the kernel ranks float32 or float64 scores as they are
        floats = actions if actions.dtype in (np.float32, np.float64) else actions.astype(np.float64)
        return np.ascontiguousarray(floats), np.zeros(len(actions), dtype=np.bool_)
    if mode == "weights":
        weights = np.ascontiguousarray(actions[:, : len(FEATURES)], dtype=np.float32)
        scores = np.empty(features.shape[:2])
        kernel = (
            engine.parallel_weighted_scores_kernel
            if len(actions) >= engine.PARALLEL_MIN_BATCH
            else engine.weighted_scores_kernel
        )
        scratch = np.empty((len(actions), 3, weights.shape[1]))
        kernel(np.ascontiguousarray(features, dtype=np.float32), weights, FEATURE_STD_FLOOR, scratch, scores)
        return scores, actions[:, -1] > 0
    strategy = actions.astype(np.int64)
    f = features.astype(np.float64)
    pctr, pcvr, similarity, popularity, protected, seen = (f[..., i] for i in range(len(FEATURES)))
    explore = engine.counter_uniforms(keys ^ np.uint64(0xE7), steps, f.shape[1])
    scores = np.select(
        [strategy[:, None] == i for i in range(len(STRATEGIES))],
        [
            pctr,
            pctr * (1 + config.purchase_weight * pcvr),
            pctr,
            pctr * np.exp(-seen),
            pctr * (1 + 0.5 * protected),
            similarity,
            popularity,
            explore,
        ],
    )
    return scores, strategy == STRATEGIES.index("one_per_topic")


def discrete_actions(config: EnvConfig) -> int:
    """How many actions a ``discrete`` (the strategies) or ``menu`` (its weight vectors) env has."""
    if config.action_mode != "menu":
        return len(STRATEGIES)
    if not config.action_menu:
        raise ConfigError("action_mode 'menu' picks among the weight vectors of action_menu: it is empty")
    return len(config.menu)


def slate_scores(positions: np.ndarray, n_candidates: int) -> np.ndarray:
    """``(B, N)`` scores whose top K are the candidate ``positions (B, K)`` in order (the rest at
    -1): any slate as a ``scores`` action for :meth:`SessionCore.step_scores`."""
    scores = np.full((len(positions), n_candidates), -1.0)
    k = positions.shape[1]
    np.put_along_axis(scores, positions, np.arange(k, 0, -1, dtype=np.float64)[None, :], axis=1)
    return scores


def as_action_array(actions: Any) -> np.ndarray:
    """``np.asarray(actions)``, with a ragged or unconvertible action an :class:`ActionError`."""
    try:
        return np.asarray(actions)
    except (ValueError, TypeError) as err:
        raise ActionError(f"action is not an array of numbers ({err})") from None


def standardise(values: np.ndarray) -> np.ndarray:
    """``(B, N)`` scores or ``(B, N, F)`` features z-scored across each row's N candidates (a
    constant column -> 0; the spread is floored at ``FEATURE_STD_FLOOR``, so rounding noise never
    becomes a signal). Ranking weights compare features on one scale through it, and one sampling
    temperature suits every scoring (the re-rankers', an agent's in OPE and serving)."""
    centred = values - values.mean(axis=1, keepdims=True)
    return centred / np.maximum(centred.std(axis=1, keepdims=True), FEATURE_STD_FLOOR)


def draw_session(rng: np.random.Generator) -> np.ndarray:
    """``(2,)`` the draws that start a session: a user uniform and a 53-bit key (exact in float64)."""
    draws = rng.random(2)
    draws[1] = np.floor(draws[1] * 2.0**53)
    return draws
