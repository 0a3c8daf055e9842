"""The options of the ranking environments (:class:`EnvConfig`) and the observation and action
vocabularies they define: candidate features, ranking weights, discrete strategies."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from numbers import Real
from typing import Any

import numpy as np

from simulators.core.errors import ConfigError, RecGymError, check_field_types
from simulators.fit.mixed import parse_parts

ACTION_MODES = ("scores", "weights", "discrete", "menu")


DISCRETE_MODES = ("discrete", "menu")
"""The action modes whose actions are one integer per env (a ``Discrete`` space)."""


OBS_MODES = ("ids", "embedding")


SIMULATORS = ("fitted", "true")


CANDIDATE_SOURCES = ("ctr", "popularity")


FEATURES = ("pctr", "pcvr", "similarity", "popularity", "protected", "session_topic_exposure")
"""Per-candidate features, in column order of ``candidate_features``."""


CONTEXT = (
    "protected_deficit",
    "tail_deficit",
    "step_fraction",
    "clicks_per_step",
    "history_breadth",
    "repeat_click_rate",
)
"""The observation's ``context`` vector, in order: the exposure ledger's protected and tail
deficits (target share minus share), the session's step over the cap, its clicks per step, the
normalised topic entropy of the history (a user's breadth: 0 one topic, 1 every topic evenly),
and the session's clicks per slot whose topic was already shown this session (how the user
takes repeats; 0 before any repeat)."""
CONTEXT_LOW = (-1.0, -1.0, 0.0, 0.0, 0.0, 0.0)
CONTEXT_HIGH_PER_SLATE = (1.0, 1.0, 1.0, None, 1.0, 1.0)
"""Upper bounds (``None``: the slate size, the most clicks a step can get)."""

RETURN_CONTEXT = ("horizon_fraction", "log_sessions", "days_since_last", "last_clicks_per_step")
"""What the retention env (``horizon_days > 0``) adds to ``context``, in order: the days elapsed
over the horizon, the log of 1 + the user's earlier sessions in the episode, the days between
the last session's end and this session's start over the horizon (at most 1; 1 for the
episode's first session) and the last session's clicks per step (0 for the first)."""
MAX_EPISODE_SESSIONS = 10_000
"""Sessions an episode of the retention env holds at most (the bound of ``log_sessions``)."""
RETURN_CONTEXT_LOW = (0.0, 0.0, 0.0, 0.0)
RETURN_CONTEXT_HIGH_PER_SLATE = (1.0, float(np.log1p(MAX_EPISODE_SESSIONS)), 1.0, None)
MAX_HORIZON_DAYS = 366.0
"""The longest retention episode (a year)."""


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


FEATURE_STD_FLOOR = 1e-3
"""Standardising candidate features across a step's candidates divides by at least this: a
feature that varies by less counts as constant there (its rounding noise never becomes a signal)."""
FEATURE_CLIP = 10.0
"""Standardised features are clipped to [-10, 10]."""


FEATURE_LOW = (0.0, 0.0, -1.0, -FEATURE_CLIP, 0.0, 0.0)


FEATURE_HIGH = (1.0, 1.0, 1.0, FEATURE_CLIP, 1.0, np.inf)
"""Bounds of each candidate feature (the last one's upper bound depends on the slate size)."""


EMBEDDING_CLIP = 100.0
"""Bound of every entry of the ``embedding`` observation (the vectors stay well inside it)."""


TOPIC_EXPOSURE_RETENTION = 0.8
"""Per-step retention of the agent-visible count of topics shown this session."""


MAX_MENU = 256
"""Most weight vectors of a ``menu`` action."""


class ActionError(RecGymError, ValueError):
    """An action of the wrong shape, type or with NaN values."""


MAX_HISTORY = 1_000
"""Longest history an observation may carry (each user's history is preallocated)."""
MAX_STEPS = 100_000
"""Longest session cap accepted (counters and step fractions stay exact far below it)."""
MAX_FIT_SAMPLE = 1_000
"""Most members of a fitted simulator's ensemble (``fit_sample``)."""
MAX_PESSIMISM_MEMBERS = 16
"""Most fits whose disagreement ``pessimism`` charges (each costs a step of the env)."""
MAX_WEIGHT = 1e6
"""Largest reward weight accepted: beyond it rewards lose their precision."""


def catalog_day_of(config: EnvConfig) -> float | None:
    """The day whose catalog ``config``'s candidates come from (``None``: the logs' last)."""
    return config.catalog_day if config.catalog_day is not None else config.true_day


def known_options(options: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` (a run's ``env_options``) that are :class:`EnvConfig` fields,
    ``render_mode`` left out: what a policy's own env is rebuilt from elsewhere (OPE, export, serving)."""
    known = {f.name for f in fields(EnvConfig)} - {"render_mode"}
    return {k: v for k, v in options.items() if k in known}


def env_config(**options: object) -> EnvConfig:
    """``EnvConfig(**options)``, with an unknown option one clear error naming the known ones."""
    known = {f.name for f in fields(EnvConfig)}
    if unknown := sorted(set(options) - known):
        raise ConfigError(f"unknown env option(s) {unknown}; options: {sorted(known)}")
    return EnvConfig(**options)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EnvConfig:
    """Options of the ranking environments (``gym.make(id, **options)``)."""

    data: str = "shop"
    """Logs to fit the simulator on: a dataset name or path (``load_logs``)."""
    data_path: str | None = None
    """Folder for datasets that need one (MovieLens); ``None`` = the loader's default."""
    simulator: str = "fitted"
    """``fitted`` (learned from the logs) or ``true`` (the shop's ground truth; shop only)."""
    fit_sample: int = 0
    """Which fit of the logs the fitted simulator is: 0 = the fit on every session; k >= 1 = the
    k-th member of an ensemble, each fitted on half the users' sessions (and playing every
    user): the members' disagreement measures how unsure the fit is. Members 2j-1 and 2j are
    fitted on the two halves of one split of the users."""
    true_parts: str = ""
    """Mechanisms of the fitted simulator taken from the shop's ground truth instead, comma-separated
    (``click``, ``purchase``, ``drift``, ``boredom``, ``leave``, ``traits``; see
    :mod:`simulators.fit.mixed`): which mechanism a fit gets wrong. Empty = none; needs
    ``simulator="fitted"`` and a shop."""
    pessimism: float = 0.0
    """MOPO's penalty (Yu et al., NeurIPS 2020): each step's reward minus ``pessimism`` times the
    standard deviation, over an ensemble of fits (``pessimism_members`` fits on half the users
    each, ``fit_sample`` 1..E), of the step's expected engagement (the shown slate's expected
    clicks, plus ``purchase_weight`` times the expected purchases of the clicks that happened),
    each member following the session's shown slates and outcomes. An agent trained in the fitted
    world then does not chase what the fit is unsure of. 0 = off; needs the plain fitted simulator."""
    pessimism_members: int = 4
    """Fits in the ensemble that ``pessimism`` charges the disagreement of (2 to 16)."""
    true_day: float | None = None
    """Day (since the logs began) a drifting shop's ground truth answers at (``simulator="true"``
    on ``shop:drift``); ``None`` = the last logged day. A shop without drift is the same every day."""
    catalog_day: float | None = None
    """Day (since the logs began) whose catalog the candidates come from: items the catalog lists
    with a later ``launch_day`` are not offered (a drifting shop's new items). ``None`` =
    ``true_day`` when set, else the logs' last day."""
    candidates: str = "ctr"
    """Candidate generator: ``ctr`` (top N by the multi-task CTR model, trained on first use and
    cached) or ``popularity`` (popularity + text similarity to the history; no training)."""
    ctr_warm_start: str | None = None
    """A saved CTR model folder whose parameters start the CTR model's training on these logs
    (``agents.adapt`` passes last week's to this week's refit); ``None`` = trained from scratch."""
    slate_size: int = 5
    """K: items shown per step."""
    n_candidates: int = 50
    """N: candidates offered per step."""
    fresh_candidates: int = 5
    """Of each user's N candidates, how many are kept for items on sale that the logs never
    showed (new launches, known only by their text and attributes), the best of them by the
    generator's own ranking: without a quota, popularity-led retrieval never offers them. Only a
    catalog that lists launches (a ``launch_day`` column) has such items; 0 = no quota."""
    action_mode: str = "scores"
    """``scores`` (one per candidate), ``weights`` (over candidate features), ``discrete`` (one
    of :data:`STRATEGIES`) or ``menu`` (one of the weight vectors of ``action_menu``)."""
    action_menu: tuple[float, ...] = ()
    """The weight vectors a ``menu`` action picks among, row-major, ``len(WEIGHTS)`` numbers each,
    in [-1, 1]: action ``i`` ranks as the ``weights`` action ``action_menu[i * W:(i + 1) * W]``
    does. A categorical policy over a few weight vectors can switch among them from state to
    state, which a Gaussian mean between them cannot. ``agents.train`` fills it: ``tuned-weights``
    (entry 0), then the planner's weight candidates over it, or with ``--teacher`` the teacher's
    candidates in its order (:mod:`agents.training.menu`). At most :data:`MAX_MENU` vectors; read
    in ``menu`` mode only, where an env needs one."""
    obs_mode: str = "ids"
    """``ids``: compact item ids and features (a Dict); ``embedding``: one flat float vector of
    the CTR model's frozen user and item vectors plus the features (:func:`embedding_layout`)."""
    fairness_lambda: float = 0.0
    """Weight of the fairness penalty in the reward."""
    fairness_target: float | None = None
    """Fixed protected exposure share; ``None`` = merit-based (share of offered relevance)."""
    user_fairness_lambda: float = 0.0
    """Weight of the user-side penalty: at a session's end, its effect on the gap between the
    best- and the worst-served user group's mean session engagement (the exposure ledger's),
    times the sessions the ledger holds (so it is in engagement units)."""
    purchase_weight: float = 1.0
    """w in reward = clicks + w * purchases - lambda * penalty."""
    max_steps: int = 20
    """Session cap: ``truncated`` after this many steps."""
    history_length: int = 20
    """Clicked items kept in the observation."""
    horizon_days: float = 0.0
    """0: one session is one episode. > 0: the retention env: an episode is one user's sessions
    over this many days. When a session ends, the user comes back after a gap drawn from the
    world's return model (:mod:`simulators.retention`: the true shop's, or the one fitted from
    the logs' gaps) given what the session passed on, and the next session starts in the same
    episode; when the next visit would fall beyond the horizon, the episode ends (``terminated``).
    ``context`` gains :data:`RETURN_CONTEXT`."""
    return_bonus: float = 0.0
    """Reward added at a session's end when the user comes back within the horizon, in engagement
    units: a return term like RLUR's (Cai et al., WWW 2023), whose reward is the return time.
    0 = the reward is engagement alone; needs ``horizon_days > 0``."""
    return_effects: bool = True
    """False: what a session passes on (its like rate, length and topic repetition) does not move
    the gap to the user's next visit (those effects of the return model set to 0; the users' own
    offsets and the sessions so far kept): the what-if in which nothing a policy does carries
    across sessions. Needs ``horizon_days > 0``."""
    render_mode: str | None = None
    """``ansi`` or ``None``."""

    @property
    def context_names(self) -> tuple[str, ...]:
        """The entries of the observation's ``context``: :data:`CONTEXT`, then
        :data:`RETURN_CONTEXT` in the retention env."""
        return CONTEXT + RETURN_CONTEXT if self.horizon_days > 0 else CONTEXT

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.action_mode not in ACTION_MODES:
            raise ConfigError(f"action_mode must be one of {ACTION_MODES}, got {self.action_mode!r}")
        if self.obs_mode not in OBS_MODES:
            raise ConfigError(f"obs_mode must be one of {OBS_MODES}, got {self.obs_mode!r}")
        if self.candidates not in CANDIDATE_SOURCES:
            raise ConfigError(f"candidates must be one of {CANDIDATE_SOURCES}, got {self.candidates!r}")
        if self.ctr_warm_start is not None and self.candidates != "ctr":
            raise ConfigError("ctr_warm_start starts the CTR model's training: it needs candidates='ctr'")
        if self.obs_mode == "embedding" and self.candidates != "ctr":
            raise ConfigError(
                "obs_mode='embedding' reads the CTR model's encoders: it needs candidates='ctr'"
            )
        if self.simulator not in SIMULATORS:
            raise ConfigError(f"simulator must be one of {SIMULATORS}, got {self.simulator!r}")
        if not 0 <= self.fit_sample <= MAX_FIT_SAMPLE:
            raise ConfigError(
                f"fit_sample must lie in [0, {MAX_FIT_SAMPLE}] (0: the fit on every session), got {self.fit_sample}"
            )
        if self.fit_sample and self.simulator != "fitted":
            raise ConfigError("fit_sample picks a fit of the logs: it needs simulator='fitted'")
        if self.true_parts:
            parse_parts(self.true_parts)
            if self.simulator != "fitted":
                raise ConfigError(
                    "true_parts swaps mechanisms of the fitted simulator: it needs simulator='fitted'"
                )
        if not (np.isfinite(self.pessimism) and 0 <= self.pessimism <= MAX_WEIGHT):
            raise ConfigError(
                f"pessimism must be a number in [0, {MAX_WEIGHT:g}] (0: off), got {self.pessimism}"
            )
        if not 2 <= self.pessimism_members <= MAX_PESSIMISM_MEMBERS:
            raise ConfigError(
                f"pessimism_members must lie in [2, {MAX_PESSIMISM_MEMBERS}], got {self.pessimism_members}"
            )
        if self.pessimism > 0 and (self.simulator != "fitted" or self.fit_sample or self.true_parts):
            raise ConfigError(
                "pessimism charges the disagreement of the fit's ensemble: it needs the plain fitted simulator "
                "(simulator='fitted', no fit_sample, no true_parts)"
            )
        if self.catalog_day is not None and not (np.isfinite(self.catalog_day) and self.catalog_day >= 0):
            raise ConfigError(f"catalog_day must be a finite number of days >= 0, got {self.catalog_day}")
        if self.true_day is not None:
            if not (np.isfinite(self.true_day) and self.true_day >= 0):
                raise ConfigError(f"true_day must be a finite number of days >= 0, got {self.true_day}")
            if self.simulator != "true":
                raise ConfigError("true_day is the day of the true shop: it needs simulator='true'")
        if self.slate_size < 1 or self.n_candidates < 1:
            raise ConfigError("slate_size and n_candidates must be >= 1")
        if not 0 <= self.fresh_candidates <= self.n_candidates:
            raise ConfigError(f"fresh_candidates must lie in [0, n_candidates], got {self.fresh_candidates}")
        if self.slate_size > self.n_candidates:
            raise ConfigError(f"slate_size ({self.slate_size}) must be <= n_candidates ({self.n_candidates})")
        if self.max_steps < 1 or self.history_length < 1:
            raise ConfigError("max_steps and history_length must be >= 1")
        if self.max_steps > MAX_STEPS:
            raise ConfigError(f"max_steps must be <= {MAX_STEPS:,}, got {self.max_steps}")
        if self.history_length > MAX_HISTORY:
            raise ConfigError(f"history_length must be <= {MAX_HISTORY}, got {self.history_length}")
        if not np.isfinite(self.purchase_weight) or not 0 <= self.purchase_weight <= MAX_WEIGHT:
            raise ConfigError(f"purchase_weight must lie in [0, {MAX_WEIGHT:g}], got {self.purchase_weight}")
        if self.fairness_target is not None and not 0.0 <= self.fairness_target <= 1.0:
            raise ConfigError(f"fairness_target must lie in [0, 1] (or be None), got {self.fairness_target}")
        if not (np.isfinite(self.fairness_lambda) and 0 <= self.fairness_lambda <= MAX_WEIGHT):
            raise ConfigError(
                f"fairness_lambda must be a finite number in [0, {MAX_WEIGHT:g}], got {self.fairness_lambda}"
            )
        if not (np.isfinite(self.user_fairness_lambda) and 0 <= self.user_fairness_lambda <= MAX_WEIGHT):
            raise ConfigError(
                f"user_fairness_lambda must be a finite number in [0, {MAX_WEIGHT:g}], got {self.user_fairness_lambda}"
            )
        if not (np.isfinite(self.horizon_days) and 0 <= self.horizon_days <= MAX_HORIZON_DAYS):
            raise ConfigError(
                f"horizon_days must be a number of days in [0, {MAX_HORIZON_DAYS:g}] (0: one session per episode), "
                f"got {self.horizon_days}"
            )
        if not (np.isfinite(self.return_bonus) and 0 <= self.return_bonus <= MAX_WEIGHT):
            raise ConfigError(
                f"return_bonus must be a finite number in [0, {MAX_WEIGHT:g}], got {self.return_bonus}"
            )
        if self.return_bonus > 0 and self.horizon_days == 0:
            raise ConfigError(
                "return_bonus rewards a user's return: it needs horizon_days > 0 (the retention env)"
            )
        if not self.return_effects and self.horizon_days == 0:
            raise ConfigError(
                "return_effects=False switches the return model's effects off: it needs horizon_days > 0"
            )
        if self.render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be 'ansi' or None, got {self.render_mode!r}")
        self._check_menu()

    def _check_menu(self) -> None:
        if isinstance(self.action_menu, list):  # (as config.json holds it)
            object.__setattr__(self, "action_menu", tuple(self.action_menu))
        menu = self.action_menu
        if not isinstance(menu, tuple) or any(
            isinstance(v, (bool, np.bool_)) or not isinstance(v, Real) for v in menu
        ):
            raise ConfigError(f"action_menu must be a list of numbers, got {menu!r}")
        width = len(WEIGHTS)
        if len(menu) % width:
            raise ConfigError(
                f"action_menu holds weight vectors of {width} numbers each ({', '.join(WEIGHTS)}); got {len(menu)} numbers"
            )
        if not all(-1.0 <= v <= 1.0 for v in menu):  # (NaN compares false)
            raise ConfigError("action_menu's weights must be numbers in [-1, 1]")
        if len(menu) > MAX_MENU * width:
            raise ConfigError(
                f"action_menu holds at most {MAX_MENU} weight vectors, got {len(menu) // width}"
            )
        object.__setattr__(self, "action_menu", tuple(float(v) for v in menu))

    @cached_property
    def menu(self) -> np.ndarray:
        """``(M, len(WEIGHTS))`` float32 the weight vectors of ``action_menu`` (read-only, built once
        per config: a menu env reads it every step)."""
        menu = np.asarray(self.action_menu, dtype=np.float32).reshape(-1, len(WEIGHTS))
        menu.setflags(write=False)
        return menu


def embedding_layout(config: EnvConfig, dim: int) -> dict[str, tuple[int, int]]:
    """Where each part sits in the ``embedding`` observation: name -> (start, stop). The
    candidate blocks are row-major ``(N, dim)`` and ``(N, len(FEATURES))``."""
    n, sizes = config.n_candidates, {}
    sizes["user"] = dim
    sizes["candidate_vectors"] = n * dim
    sizes["candidate_features"] = n * len(FEATURES)
    sizes["context"] = len(config.context_names)
    layout, start = {}, 0
    for name, size in sizes.items():
        layout[name] = (start, start + size)
        start += size
    return layout
