"""The serving path's ranker: a trained agent answering one ranking request at a time, outside
the simulator, with the observation the env would have given it.

A request names a user and, optionally, their history, the candidates and a session. The
observation is built as the env builds it: the candidate generator's candidates and static
features (``RankingWorld``), the session's topic exposure, the context (exposure ledger, step,
clicks, history breadth, repeats) by the env's own kernel, and the policy's action is turned into
scores by the env's own :func:`~envs.core.action_scores`. A session that names itself keeps its
state between requests (step, clicks fed back, topics shown, history grown by its clicks); the
exposure ledger is the server's, fed by every slate it shows. At temperature 0 the slate is the
env's greedy ranking (propensity 1, one item per topic first when the action asks for it); above
it, a draw from the Plackett-Luce of the policy's scores standardised over the request's
candidates, divided by the temperature, with each slot's probability given the slots above.
The draw leaves out the diversity switch on purpose: every slate of the candidates keeps a
positive probability, so any Plackett-Luce target over them is supported by the log.

A retention agent (``horizon_days > 0``) also reads where the user is in their horizon: the
ranker keeps each user's visits (:class:`~envs.retention.VisibleVisits`: the horizon's start, the
sessions so far, the days since the last one ended and its clicks per slate) from the times of
the slates it showed them, and a restarted server recalls them from its log (:meth:`Ranker.recall`).
Every request that starts a session (a new ``session_id``, a named session past the cap, or a
request without one) starts one of the user's visits.

A distilled planner's run (``python -m agents.distill``) serves too: its candidate slates are
ranked by the env's own rule (a one-row :class:`~envs.core.SessionCore` given the request's
candidates, session key and step) and its scikit-learn scorer picks one; its action is a
``scores`` action whose top K is that slate over the chosen candidate action's own scores, so the
greedy slate is the one it chose and a draw at a temperature follows those scores. It
chooses among slates of all N candidates: a request naming fewer is refused.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.evaluation.load import load_distilled_run
from agents.policies.agent import TrainedAgent
from agents.policies.distilled import DistilledPlanner, is_distilled_run, read_record
from agents.policies.onnx import OnnxPolicy
from agents.serve import BACKENDS
from envs.config import (
    FEATURES,
    ID_DTYPE,
    STRATEGIES,
    EnvConfig,
    catalog_day_of,
    known_options,
)
from envs.core import SessionCore, action_scores, standardise
from envs.fairness import ExposureLedger
from envs.retention import VisibleVisits
from envs.session import VisibleSession
from envs.world import RankingWorld, build_world
from simulators.core.errors import ConfigError, DataError
from simulators.core.storage import file_digest
from simulators.data.logs import LoggedData
from simulators.data.plackett_luce import sequential_sample

MAX_TEMPERATURE = 100.0
"""Largest sampling temperature accepted (beyond it every slate is as likely as uniform)."""
MIN_TEMPERATURE = 0.05
"""Smallest positive temperature accepted: standardised scores lie within a few units, so at
0.05 the least likely slot of a slate still has a probability far above float underflow (a
logged propensity of 0 would be no propensity at all)."""
INTEGER_TEXT = re.compile(r"^-?[0-9]{1,18}$")
"""Decimal text that names an integer id (at most 18 digits: within int64)."""


class RequestError(DataError):
    """A request the ranker cannot answer, naming the field at fault (the API's 422)."""

    def __init__(self, field_path: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.field_path = field_path


@dataclass(frozen=True)
class Ranked:
    """One answered request."""

    user: int
    """User row."""
    items: np.ndarray
    """``(K,)`` catalog rows shown, top first."""
    scores: np.ndarray
    """``(K,)`` the policy's score of each (before standardising)."""
    slot_propensity: np.ndarray
    """``(K,)`` probability of each slot's item given the slots above it."""
    repeat: np.ndarray
    """``(K,)`` bool: the slot's topic was shown earlier in the session."""
    session: str | None

    @property
    def propensity(self) -> float:
        """Probability of the whole slate."""
        return float(np.prod(self.slot_propensity))


@dataclass
class Ranker:
    """A run folder's agent behind the serving interface (see the module docstring)."""

    run_dir: Path
    backend: str = "onnx"
    seed: int = 0
    """Seed of the slates sampled at temperature > 0 (request ``i`` draws from stream ``(seed, i)``)."""
    max_sessions: int = 100_000
    """Named sessions kept (least recently used dropped first)."""
    stream: int = 0
    """Mixed into every draw's stream, so a restarted server (its log's part count here) draws afresh."""
    catalog_day: float | None = None
    """Day whose catalog the candidates come from (a drifting shop's launches: ``agents.adapt``
    serves each week's); ``None`` = the run's own env's."""
    sessions: OrderedDict[str, VisibleSession] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {BACKENDS}, got {self.backend!r}")
        day: dict[str, Any] = {} if self.catalog_day is None else {"catalog_day": self.catalog_day}
        self.core: SessionCore | None = None
        """A distilled run's ranking rule of its candidate slates (``None`` for an agent)."""
        if is_distilled_run(self.run_dir):
            record = read_record(Path(self.run_dir))
            self.policy: Any = load_distilled_run(self.run_dir)
            assert self.policy.env_config is not None
            # the distilled policy's action is a ``scores`` action: its top K is the slate it chose
            self.config = replace(self.policy.env_config, action_mode="scores", **day)
            self.backend = "scikit-learn"  # (its scorer; no network to export)
            self.version = f"{record.get('run_id') or 'distilled'}-{record['scorer_sha256'][:8]}"
            """The policy version every answer and log row carries: run id and the digest of the model."""
        else:
            agent = TrainedAgent.load(self.run_dir, device="cpu")
            if agent.env_options.get("obs_mode", "ids") != "ids":
                raise ConfigError(
                    f"{self.run_dir}: only agents of obs_mode 'ids' serve (this one reads 'embedding')"
                )
            self.policy = OnnxPolicy.load(self.run_dir) if self.backend == "onnx" else agent
            self.config = EnvConfig(**(known_options(agent.env_options) | day))
            run_id = json.loads((Path(self.run_dir) / "config.json").read_text()).get("run_id") or "run"
            self.version = f"{run_id}-{file_digest(Path(self.run_dir) / 'model.zip')[:8]}"
        self.world: RankingWorld = build_world(self.config)
        if isinstance(self.policy, DistilledPlanner):
            self.core = SessionCore(self.config, self.world, 1)
            self.policy.bind(self.core)
        self.world.ctr  # noqa: B018 - loads the CTR model now, not on the first request that needs it
        self.logs: LoggedData = self.world.logs
        self.on_sale = self.logs.on_sale(catalog_day_of(self.config))
        """``(n_items,)`` bool: the items a request may name as candidates (launched by the catalog's day)."""
        self.user_row = IdIndex(self.logs.users["user_id"].to_numpy())
        self.item_row = IdIndex(self.logs.items["item_id"].to_numpy())
        self.user_ids = self.logs.users["user_id"].to_numpy()
        self.item_ids = self.logs.items["item_id"].to_numpy()
        self.item_topic = np.ascontiguousarray(self.world.simulator.item_topic, dtype=np.int64)
        self.ledger = ExposureLedger(
            1, len(self.world.protected), self.world.n_user_groups, self.config.fairness_target
        )
        self.sessions = OrderedDict()
        self.visits: OrderedDict[int, VisibleVisits] = OrderedDict()
        """A retention agent's users' visits, by user row (``max_sessions`` kept, least recent dropped first)."""
        self.requests = 0
        self._zero_rows = np.zeros(1, dtype=np.int64)

    # ------------------------------------------------------------------------ lookups
    def user_of(self, user_id: Any) -> int:
        """The user row of ``user_id``; :class:`RequestError` if the logs have no such user."""
        row = self.user_row.get(user_id)
        if row is None:
            raise RequestError(
                ("user_id",), f"unknown user_id {user_id!r}: not a user of the logs the policy trained on"
            )
        return row

    def items_of(self, ids: list[Any], name: str) -> np.ndarray:
        """Catalog rows of item ``ids``; :class:`RequestError` naming the first unknown one."""
        rows = np.empty(len(ids), dtype=np.int64)
        for i, value in enumerate(ids):
            row = self.item_row.get(value)
            if row is None:
                raise RequestError((name, i), f"unknown item id {value!r} in {name}[{i}]")
            rows[i] = row
        return rows

    # ------------------------------------------------------------------------ ranking
    def rank(
        self,
        user_id: Any,
        history: list[Any] | None = None,
        candidates: list[Any] | None = None,
        slate_size: int | None = None,
        temperature: float = 0.0,
        session_id: str | None = None,
        now: float | None = None,
    ) -> Ranked:
        """Answer one request (see the module docstring) shown at ``now`` (seconds since the
        epoch; default: the clock's); raise :class:`RequestError` for a bad one."""
        cfg, world = self.config, self.world
        user = self.user_of(user_id)
        k = cfg.slate_size if slate_size is None else int(slate_size)
        if not (
            np.isfinite(temperature)
            and (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE)
        ):
            raise RequestError(
                ("temperature",),
                f"temperature must be 0 (greedy) or lie in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}], got {temperature}",
            )
        given = None if candidates is None else self.items_of(candidates, "candidates")
        if given is not None:
            if len(given) > cfg.n_candidates or len(given) == 0:
                raise RequestError(
                    ("candidates",),
                    f"candidates: 1 to {cfg.n_candidates} items (the policy's N), got {len(given)}",
                )
            if len(np.unique(given)) != len(given):
                raise RequestError(("candidates",), "candidates: an item appears twice")
            if self.core is not None and len(given) < cfg.n_candidates:
                raise RequestError(
                    ("candidates",),
                    f"candidates: a distilled run chooses among slates of all {cfg.n_candidates} candidates; give "
                    f"{cfg.n_candidates} or none (the generator's), got {len(given)}",
                )
            if not self.on_sale[given].all():
                unsold = self.item_ids[given[~self.on_sale[given]][0]]
                raise RequestError(
                    ("candidates",), f"candidates: item {unsold!r} is not on sale yet (its launch_day)"
                )
        offered = cfg.n_candidates if given is None else len(given)
        if not 1 <= k <= offered:
            raise RequestError(
                ("slate_size",), f"slate_size must lie in [1, {offered}] (the candidates offered), got {k}"
            )
        session = self._session(session_id, user)
        if self.config.horizon_days > 0:
            self._visits_of(user).visit(time.time() if now is None else now, session)
        if history is not None:
            rows = self.items_of(history, "history")[-cfg.history_length :]
            past = np.full(cfg.history_length, -1, dtype=ID_DTYPE)
            past[: len(rows)] = rows
        else:
            past = session.history
        if given is None and history is None:
            items, static = world.candidates[user], world.candidate_features[user]
            valid = np.ones(cfg.n_candidates, dtype=bool)
        else:
            items, static, valid = self._offer(user, past, given)
        observation = self._observe(user, past, items, static, session)
        self.requests += 1
        rng = np.random.default_rng([self.seed, self.stream, self.requests])
        if self.core is not None:  # the distilled planner's candidate slates: this request's
            self.core.key[0], self.core.step_count[0] = session.key, session.step
            self.core.candidates[0], self.core.candidate_topics[0] = items, self.item_topic[items]
        action = np.asarray(self.policy.act(observation, rng))
        key = np.array([session.key], dtype=np.uint64)
        scores, one_per_topic = action_scores(
            cfg, action, observation["candidate_features"], key, np.array([session.step])
        )
        positions, chance = self._choose(scores[0], items, valid, k, bool(one_per_topic[0]), temperature, rng)
        if cfg.action_mode == "discrete" and int(action.reshape(-1)[0]) == STRATEGIES.index("explore"):
            # random scores: over their draw every ordering of the candidates is as likely
            chance = 1.0 / (valid.sum() - np.arange(k))
        shown = items[positions].astype(np.int64)
        pctr = static[:, FEATURES.index("pctr")].astype(np.float64) * valid
        protected = static[:, FEATURES.index("protected")]
        self.ledger.record(
            self._zero_rows, shown[None], world.protected, world.tail,
            np.array([pctr.sum()]), np.array([(pctr * protected).sum()]),
        )  # fmt: skip
        repeat = session.record_slate(self.item_topic[shown])
        return Ranked(user, shown, scores[0, positions], chance, repeat, session_id)

    def feedback(self, ranked: Ranked, clicks: np.ndarray) -> None:
        """A shown slate's clicks ``(K,)`` 0/1 join its session (clicks, repeats, history)."""
        if ranked.session is None or (session := self.sessions.get(ranked.session)) is None:
            return
        session.record_clicks(ranked.items, clicks, ranked.repeat)

    # ------------------------------------------------------------------------ pieces
    def _session(self, session_id: str | None, user: int) -> VisibleSession:
        """The named session's state (a new one on first sight, or once it reached the env's
        session cap, as the env starts a new session there), or a fresh unnamed one."""
        if session_id is not None and (found := self.sessions.get(session_id)) is not None:
            if found.user != user:
                raise RequestError(("session_id",), f"session_id {session_id!r} belongs to another user")
            self.sessions.move_to_end(session_id)
            if found.step < self.config.max_steps:
                return found
        key = int(np.random.default_rng([self.seed, self.stream, self.requests, 0x5E55]).integers(0, 2**53))
        session = VisibleSession(user, self._history_of(user), np.zeros(self.world.n_topics), key)
        if session_id is not None:
            self.sessions[session_id] = session
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
        return session

    def _history_of(self, user: int) -> np.ndarray:
        """A new session's history: the logs' (as the env starts every session, and every
        episode of the retention env), or for a retention agent the user's history at the end of
        their last session it served (their clicks there included: a returning user's history in
        the retention env)."""
        visits = self.visits.get(user) if self.config.horizon_days > 0 else None
        if visits is not None and visits.current is not None:
            return np.asarray(visits.current.history)
        return self.world.history[user]

    def _visits_of(self, user: int) -> VisibleVisits:
        """The user's visits (new ones on first sight), the most recently used last."""
        visits = self.visits.get(user)
        if visits is None:
            visits = self.visits[user] = VisibleVisits(self.config.horizon_days)
            while len(self.visits) > self.max_sessions:
                self.visits.popitem(last=False)
        self.visits.move_to_end(user)
        return visits

    def recall(self, interactions: pd.DataFrame) -> int:
        """A retention agent's users' visits and named sessions from a served log's
        ``interactions`` (the columns of :mod:`agents.serve.logbook`), its slates replayed in
        time order through the session path of :meth:`rank` (a named session past the cap starts a
        new one there too), with the clicks fed back and the histories they grew. Rows of users
        or items the policy does not know are skipped. Returns the slates read (0, reading nothing, when the
        agent is not a retention agent). Call it before the first request."""
        if self.config.horizon_days <= 0 or interactions.empty:
            return 0
        rows = interactions.sort_values(["timestamp", "slate_id", "position"], kind="stable")
        slate = rows["slate_id"].astype(str).to_numpy()
        starts = np.flatnonzero(np.r_[True, slate[1:] != slate[:-1]])
        ends = np.r_[starts[1:], len(slate)]
        item_rows = np.array([self.item_row.get(v) for v in rows["item_id"].tolist()], dtype=object)
        clicks = rows["click"].to_numpy()
        users, named = rows["user_id"].tolist(), rows["session_id"].astype(str).to_numpy()
        stamps = rows["timestamp"].to_numpy(dtype=np.float64)
        for first, last in zip(starts, ends, strict=True):
            user, shown = self.user_row.get(users[first]), item_rows[first:last]
            if user is None or any(row is None for row in shown):
                continue  # a user or item of other logs: this policy cannot serve them anyway
            # the request's own path; an unnamed request's session id is its event id
            session_id = None if named[first] == slate[first] else named[first]
            try:
                session = self._session(session_id, user)
            except RequestError:
                continue  # a session id the log gives to two users: its later user's slates are skipped
            self._visits_of(user).visit(float(stamps[first]), session)
            items = shown.astype(np.int64)
            repeat = session.record_slate(self.item_topic[items])
            session.record_clicks(items, clicks[first:last].astype(np.int64), repeat)
        return len(starts)

    def _offer(
        self, user: int, history: np.ndarray, given: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The policy's N candidates for a request with its own history or candidates: the given
        ones first filled up to N with the generator's (never shown), scored for this history."""
        n = self.config.n_candidates
        default = self.world.candidates[user].astype(np.int64)
        if given is None:
            pool = default
        else:
            extra = default[~np.isin(default, given)][: n - len(given)]
            pool = np.concatenate([given, extra])
        source = self.world.candidate_source
        assert source is not None
        ranked, static = source.score(history.astype(np.int64)[None], np.array([user]), pool[None])
        items = ranked[0]
        valid = np.ones(n, dtype=bool) if given is None else np.isin(items, given)
        return items, static[0], valid

    def _observe(
        self, user: int, history: np.ndarray, items: np.ndarray, static: np.ndarray, session: VisibleSession
    ) -> dict[str, np.ndarray]:
        """The env's ``ids`` observation of this request, batch of one."""
        cfg, world = self.config, self.world
        features = np.empty((1, cfg.n_candidates, len(FEATURES)), dtype=np.float32)
        features[0, :, :-1] = static
        features[0, :, -1] = session.topic_exposure[self.item_topic[items]]
        context, mask = session.context(self.ledger, self.item_topic, cfg.max_steps, history)
        if cfg.horizon_days > 0:
            context = np.concatenate([context, self._visits_of(user).context()], axis=1)
        return {
            "history": np.ascontiguousarray(history[None], dtype=ID_DTYPE),
            "history_mask": mask,
            "candidates": items[None].astype(ID_DTYPE),
            "candidate_features": features,
            "user_features": world.user_features[user][None],
            "context": context,
        }

    def _choose(
        self, scores: np.ndarray, items: np.ndarray, valid: np.ndarray, k: int, one_per_topic: bool,
        temperature: float, rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Candidate positions of the slate and each slot's probability given the ones above."""
        z = np.full(len(scores), -np.inf)
        z[valid] = standardise(scores[valid][None])[0]
        topics = self.item_topic[items]

        def utility(taken: np.ndarray, slot: int) -> np.ndarray:
            del slot
            u = z[None]
            if one_per_topic and temperature == 0:
                used = np.zeros(self.world.n_topics, dtype=bool)
                used[topics[taken[0]]] = True
                fresh = ~used[topics] & valid & ~taken[0]
                if fresh.any():
                    u = np.where(fresh, z, -np.inf)[None]
            return u

        positions, chance = sequential_sample(utility, (1, len(scores)), k, temperature, rng)
        return positions[0], chance[0]


class IdIndex:
    """Rows of the logs' ids. Integer ids also answer to their decimal text (JSON clients send
    either); text ids answer only to themselves."""

    def __init__(self, ids: np.ndarray):
        self.integer = np.issubdtype(ids.dtype, np.integer)
        self.rows = {(int(v) if self.integer else str(v)): i for i, v in enumerate(ids.tolist())}

    def get(self, value: Any) -> int | None:
        """The row of ``value``, or ``None``."""
        if isinstance(value, bool):
            return None
        if self.integer:
            if isinstance(value, str) and INTEGER_TEXT.match(value.strip()):
                value = int(value.strip())
            return self.rows.get(int(value)) if isinstance(value, (int, np.integer)) else None
        return self.rows.get(value) if isinstance(value, str) else None
