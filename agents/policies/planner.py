"""A rollout planner: at every step it tries each of a set of candidate slates in a model of the
world (the shop's ground truth, or the simulator fitted to the logs) and plays the one whose
simulated futures earn most, when the gain clears its noise; otherwise the base policy's.

This is the one-step lookahead with a base policy of Bertsekas (rollout, "Rollout Algorithms for
Discrete Optimization", 1997; *Reinforcement Learning and Optimal Control*, 2019): for each
candidate action ``a`` of a session, ``M`` independent futures take ``a`` now and follow the base
policy until the session ends (or for ``depth`` steps); ``Q(a)`` is their mean return. The futures
of one session share their random keys across actions (common random numbers), so the gain
``Q(a) - Q(base)`` is estimated paired, with its standard error over the ``M`` futures, and a
deviation is played only when it clears ``gate`` standard errors. A rollout policy earns at least
what its base policy earns (in the model, up to that noise), so with the true model it measures a
floor under what adapting can earn: the ceiling row of the benchmarks.

In the retention env the futures go on into the user's next sessions within the horizon
(``across_sessions``), so what a slate does to the user's coming back counts, up to ``depth`` steps
(the truncated horizon of the lookahead).

The futures never reuse the real session's key: the env's randomness is counter-based, so a copy
that kept it would foresee the session's own dice (``clairvoyant=True`` shows how much that
would "gain"; it is never a planner to compare with). The planner reads the session state through
:meth:`envs.core.SessionCore.clone_into` (rows copied with fresh keys) of the env it is bound to
(:meth:`bind`); when its model is another world than the env's (the fitted model acting in the
true shop) it keeps its own belief of each session's latent state, the model's dynamics applied
to what was shown and clicked (:meth:`~envs.core.SessionCore.step_scores` with the observed
clicks), and never reads the true one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from agents.policies.baselines import scores_action
from agents.policies.protocol import Policy
from envs.config import FEATURES, STRATEGIES, WEIGHTS, EnvConfig
from envs.core import SessionCore, action_scores, slate_scores
from envs.world import RankingWorld, build_world
from simulators.core.errors import ConfigError
from simulators.fit.mixed import parse_parts

CANDIDATE_KINDS = ("perturb", "diversify", "greedy", "strategies")
"""The families of candidate actions besides the base policy's own: ``perturb`` (the base weights
with one feature's weight moved up and down by ``perturbation``), ``diversify`` (the base weights
with the diversity switch flipped), ``greedy`` (rank by pCTR alone) and ``strategies`` (each
discrete strategy). ``perturb`` and ``diversify`` apply to a base acting in ``weights`` mode only."""
MODELS = ("true", "fitted")
"""The worlds a planner can simulate: the shop's ground truth, or the simulator fitted to the logs."""
BASE_MODES = {"tuned-weights": "weights", "best-fixed": "discrete", "mmr": "scores"}
"""The static re-rankers a planner may build on (``agents.policies.baselines.RERANKER_NAMES``) and
the action mode each acts in."""
BASES = tuple(BASE_MODES)
"""The static re-rankers a planner may build on."""
MAX_ENSEMBLE = 16
"""Most fits a planner plans in at once."""
MAX_ROLLOUTS = 4_096
"""Most futures per candidate action (each is a session copy in memory)."""


@dataclass(frozen=True)
class PlannerConfig:
    """The rollout planner's options (``agents.evaluate --planner-...``)."""

    base: str = "tuned-weights"
    """The base policy: a tuned static re-ranker (``tuned-weights``, the strongest static baseline
    measured, or ``best-fixed``, ``mmr``)."""
    rollouts: int = 64
    """Independent futures per candidate action and decision (M)."""
    gate: float = 2.0
    """A deviation from the base action is played only when its estimated gain exceeds this many
    standard errors (0: the best estimate, however noisy)."""
    depth: int = 0
    """Steps each future is played for, the first included; 0 = to the session's end."""
    perturbation: float = 0.5
    """How far ``perturb`` moves one feature's weight (the weights stay in [-1, 1])."""
    candidates: tuple[str, ...] = CANDIDATE_KINDS
    """The candidate action families besides the base action (:data:`CANDIDATE_KINDS`)."""
    confirm: bool = True
    """Pick the best candidate on half of the futures and test its gain on the other half (no
    winner's curse); False: pick and test on all of them (more power, more false deviations)."""
    ensemble: int = 0
    """0: plan in the model alone. E >= 2 (a ``fitted`` model only): plan in E fits of the logs, each
    on a random half of the users (``EnvConfig.fit_sample`` 1..E), the futures split evenly among
    them, so that the members' disagreement about a deviation's gain can count against it."""
    kappa: float = 0.0
    """Pessimism with an ensemble: a deviation's gain counts minus ``kappa`` times the members'
    standard deviation of it (the penalty of MOPO, Yu et al., NeurIPS 2020); 0 = their mean."""
    across_sessions: bool = True
    """In the retention env (``horizon_days > 0``): the futures go on into the user's next sessions
    within the horizon (and ``depth``), each return drawn by the model's return model with the
    future's own dice, so a deviation's effect on the user's coming back counts. False: each
    future ends with its session (a per-session planner, blind to returns)."""
    clairvoyant: bool = False
    """True: the futures reuse the real session's key, so they foresee its own dice. Never a planner
    to compare with: it shows what a leak of the env's randomness would be worth."""
    true_parts: str = ""
    """``planner:fitted`` only, where the shop's ground truth is known: mechanisms of its model taken
    from the truth (``click,boredom``...; :data:`simulators.fit.mixed.MECHANISMS`,
    ``EnvConfig.true_parts``). Never a planner to deploy: it says which of the fit's errors cost
    the planner its gain."""

    def __post_init__(self) -> None:
        if not 1 <= self.rollouts <= MAX_ROLLOUTS:
            raise ConfigError(f"--planner-rollouts must lie in [1, {MAX_ROLLOUTS}], got {self.rollouts}")
        if not (np.isfinite(self.gate) and self.gate >= 0):
            raise ConfigError(f"--planner-gate must be a number >= 0, got {self.gate}")
        if self.depth < 0:
            raise ConfigError(f"--planner-depth must be >= 0 (0: to the session's end), got {self.depth}")
        if not (np.isfinite(self.perturbation) and 0 < self.perturbation <= 2):
            raise ConfigError(f"--planner-perturbation must lie in (0, 2], got {self.perturbation}")
        if self.base not in BASES:
            raise ConfigError(f"--planner-base must be one of {list(BASES)}, got {self.base!r}")
        if self.ensemble == 1 or not 0 <= self.ensemble <= MAX_ENSEMBLE:
            raise ConfigError(
                f"--planner-ensemble: 0 (none) or 2 to {MAX_ENSEMBLE} members, got {self.ensemble}"
            )
        if self.ensemble and self.rollouts % self.ensemble:
            raise ConfigError(
                f"--planner-rollouts ({self.rollouts}) must split evenly among the {self.ensemble} members"
            )
        if not (np.isfinite(self.kappa) and self.kappa >= 0):
            raise ConfigError(f"--planner-kappa must be a number >= 0, got {self.kappa}")
        if self.kappa and not self.ensemble:
            raise ConfigError("--planner-kappa weighs the members' disagreement: it needs --planner-ensemble")
        if self.true_parts:
            parse_parts(self.true_parts, "--planner-true-parts")
            if self.ensemble:
                raise ConfigError("--planner-true-parts mends one fit: it cannot go with --planner-ensemble")
        if unknown := sorted(set(self.candidates) - set(CANDIDATE_KINDS)):
            raise ConfigError(f"unknown planner candidates {unknown}; choose from {list(CANDIDATE_KINDS)}")


def candidate_actions(
    base: Policy, config: PlannerConfig, observation: dict[str, np.ndarray], rng: np.random.Generator
) -> list[tuple[str, np.ndarray]]:
    """The candidate actions of ``config.candidates`` over ``base``'s, each as ``(action_mode,
    actions (B, ...))`` (index 0: the base policy's own). The order is fixed by the config, so index
    ``a`` is the same member of the same family at every decision; the planner, the policy
    distilled from it (:class:`agents.policies.distilled.DistilledPlanner`) and a ``menu`` agent
    taught by it (:func:`agents.training.menu.menu_of`: the base's weights, then
    :func:`weight_candidates`) share it."""
    batch = len(observation["candidate_features"])
    base_action = np.asarray(base.act(observation, rng))
    modes: list[tuple[str, np.ndarray]] = [(base.action_mode, base_action)]
    kinds = candidate_kinds(config, base.action_mode)
    modes += [("weights", moved) for moved in weight_candidates(base_action, kinds, config.perturbation)]
    if "strategies" in kinds:
        modes += [("discrete", np.full(batch, i, dtype=np.int64)) for i in range(len(STRATEGIES))]
    return modes


def weight_candidates(base: np.ndarray, kinds: set[str], perturbation: float) -> list[np.ndarray]:
    """The ``weights`` candidates ``(B, len(WEIGHTS))`` float32 of the families ``kinds`` over the
    base's weights ``base (B, len(WEIGHTS))``, in the planner's fixed order: ``perturb`` (each
    feature's weight up, then down), ``diversify``, ``greedy`` (``greedy`` needs no base weights:
    it also comes with a base in another mode). The planner's candidates and a ``menu`` agent's
    weight vectors (:mod:`agents.training.menu`) are these."""
    out: list[np.ndarray] = []
    if "perturb" in kinds:
        for f in range(len(FEATURES)):
            for sign in (1.0, -1.0):
                moved = base.astype(np.float32).copy()
                moved[:, f] = np.clip(moved[:, f] + sign * perturbation, -1.0, 1.0)
                out.append(moved)
    if "diversify" in kinds:
        flipped = base.astype(np.float32).copy()
        flipped[:, -1] = np.where(flipped[:, -1] > 0, -1.0, 1.0)
        out.append(flipped)
    if "greedy" in kinds:
        greedy = np.zeros((len(base), len(WEIGHTS)), dtype=np.float32)
        greedy[:, FEATURES.index("pctr")] = 1.0
        out.append(greedy)
    return out


def candidate_kinds(config: PlannerConfig, base_mode: str) -> set[str]:
    """The candidate families of ``config`` that apply over a base acting in ``base_mode``
    (perturbing weights, or flipping their diversity switch, needs a base that acts in weights)."""
    kinds = set(config.candidates)
    return kinds if base_mode == "weights" else kinds - {"perturb", "diversify"}


def candidate_modes(config: PlannerConfig) -> set[str]:
    """The action modes of the candidate actions of ``config`` (its base's included)."""
    base = BASE_MODES[config.base]
    kinds = candidate_kinds(config, base)
    return {base} | {"discrete" if kind == "strategies" else "weights" for kind in kinds}


def candidate_slates(
    core: SessionCore, observation: dict[str, np.ndarray], actions: list[tuple[str, np.ndarray]]
) -> np.ndarray:
    """``(B, A, K)`` the slates of the candidate ``actions`` (:func:`candidate_actions`) in the
    env's own ranking (candidate positions)."""
    return candidate_rankings(core, observation, actions)[0]


def candidate_rankings(
    core: SessionCore, observation: dict[str, np.ndarray], actions: list[tuple[str, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`candidate_slates` ``(B, A, K)`` and the scores ``(B, A, N)`` each candidate action
    gives the candidates (:func:`envs.core.action_scores`)."""
    features = observation["candidate_features"]
    slates, scored = [], []
    for mode, action in actions:
        scores, diverse = action_scores(
            replace(core.config, action_mode=mode), action, features, core.key, core.step_count
        )
        slates.append(core.slates(scores, diverse))
        scored.append(scores)
    return np.stack(slates, axis=1), np.stack(scored, axis=1)


@dataclass
class RolloutPlanner:
    """A rollout planner over ``base`` in the world ``model`` describes (the module docstring).

    Args:
        base: the base policy (acts in its own mode in every future; the default, the best static
            re-ranker, is passed in by its caller).
        model: the env options of the world the futures are played in (``simulator="true"``: the
            shop's ground truth; ``"fitted"``: the fitted simulator); its candidates must be the
            env's (the same logs and options).
        config: :class:`PlannerConfig`.
        name: how reports name it (``planner:true``).
    """

    base: Policy
    model: EnvConfig
    config: PlannerConfig = field(default_factory=PlannerConfig)
    name: str = "planner"
    decisions: int = field(default=0, init=False)
    """Decisions taken (one per session and step)."""
    deviations: int = field(default=0, init=False)
    """Decisions that played another action than the base policy's."""
    seconds: float = field(default=0.0, init=False)
    """Time spent deciding."""
    last_slates: np.ndarray | None = field(default=None, init=False)
    """``(B, A, K)`` the candidate slates of the last decision (:meth:`candidate_slates`)."""
    last_gains: np.ndarray | None = field(default=None, init=False)
    """``(B, A)`` each candidate's estimated gain over the base's at the last decision (the mean
    over its futures, less the ensemble penalty; 0 for the base): what a distilled policy learns
    to predict (:mod:`agents.training.distill`)."""

    def __post_init__(self) -> None:
        self.model = (
            replace(  # its futures unpenalised: the planner counts the ensemble itself (--planner-kappa)
                self.model, obs_mode="ids", action_mode=self.base.action_mode, render_mode=None, pessimism=0.0
            )
        )
        if self.config.true_parts:
            if self.model.simulator != "fitted":
                raise ConfigError("--planner-true-parts mends the fitted model: it needs planner:fitted")
            self.model = replace(self.model, true_parts=self.config.true_parts)
        if self.config.ensemble and (self.model.simulator != "fitted" or self.model.fit_sample):
            raise ConfigError(
                "--planner-ensemble plans in fits of the logs: it needs the fitted model (planner:fitted)"
            )
        self.models = [replace(self.model, fit_sample=k) for k in range(1, self.config.ensemble + 1)] or [
            self.model
        ]
        """The worlds the futures are played in: the model, or the members of its ensemble."""
        self.worlds: list[RankingWorld] = [build_world(model) for model in self.models]
        self.world: RankingWorld = self.worlds[0]
        self.core: SessionCore | None = None
        self._beliefs: list[SessionCore] = []
        self._shown_candidates: np.ndarray | None = None

    @property
    def action_mode(self) -> str:
        """The planner shows slates: a ``scores`` action whose top K is the chosen slate."""
        return "scores"

    def bind(self, core: SessionCore) -> None:
        """Act for the sessions of ``core`` (``run_sessions`` binds the env's core before playing).
        When ``core`` runs in another world than the model, the planner keeps its own belief of
        each session's latent state (module docstring) and never reads the env's."""
        if (
            core.config.n_candidates != self.model.n_candidates
            or core.config.slate_size != self.model.slate_size
        ):
            raise ConfigError("the planner's model and the env must offer as many candidates and slots")
        self.core = core
        if len(self.worlds) == 1 and core.world is self.world:
            self._beliefs = []
            return
        if not np.array_equal(core.world.candidates, self.world.candidates):
            raise ConfigError(
                "the planner's model offers other candidates than the env (other logs or candidate options)"
            )
        self._beliefs = [
            SessionCore(model, world, core.batch)
            for model, world in zip(self.models, self.worlds, strict=True)
        ]
        self._shown_candidates = None

    # ------------------------------------------------------------------------------ acting
    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """``scores`` actions ``(B, N)`` whose top K are the chosen slates of the bound core's sessions."""
        core = self.core
        if core is None:
            raise ConfigError(
                "the planner acts for an env's sessions: bind(core) it first (run_sessions does)"
            )
        started = time.perf_counter()
        sources = self._follow(core) if self._beliefs else [core]
        positions = self.candidate_slates(core, observation, rng)  # (B, A, K) in the env's ranking
        m = self.config.rollouts // len(sources)
        gains = []
        for source, model, world in zip(sources, self.models, self.worlds, strict=True):
            returns = self._futures_of(source, core, positions, rng, model, world, m)  # (B, A, m)
            gains.append(returns - returns[:, :1, :])
        # Futures interleaved member by member, so that any half of them holds half of each member's.
        gain = np.stack(gains, axis=3).reshape(*gains[0].shape[:2], -1)
        spread = (
            np.stack([g.mean(axis=2) for g in gains], axis=2).std(axis=2, ddof=1) if len(gains) > 1 else None
        )
        choice = self.choose(gain, spread)
        self.last_slates = positions
        self.last_gains = gain.mean(axis=2) - (0.0 if spread is None else self.config.kappa * spread)
        self.decisions += len(choice)
        self.deviations += int((choice > 0).sum())
        self.seconds += time.perf_counter() - started
        chosen = positions[np.arange(len(choice)), choice]
        return scores_action(chosen, core.config.n_candidates)

    def choose(self, gain: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
        """``(B,)`` the candidate to play from the gains ``(B, A, M)`` of each candidate's futures
        over the base's (candidate 0). With ``confirm``, the best candidate is picked on the first
        half of the futures and played only if its gain on the other half clears ``gate``
        standard errors: picking the largest of ~20 noisy estimates overstates it (the winner's
        curse), so the pick is tested on futures it was not picked on. Without, the pick and its
        test share the futures. ``spread (B, A)``: the ensemble members' disagreement about each
        gain, of which ``kappa`` times counts against it in the pick and in the test."""
        penalty = 0.0 if spread is None else self.config.kappa * spread
        m = gain.shape[2]
        if self.config.confirm and m >= 4:
            pick, test = gain[:, :, : m // 2], gain[:, :, m // 2 :]
        else:
            pick = test = gain
        best = pick.mean(axis=2) - penalty
        best[:, 0] = -np.inf
        candidate = best.argmax(axis=1)
        rows = np.arange(len(candidate))
        tested = test[rows, candidate]  # (B, M') the pick's gains on the futures that test it
        mean = tested.mean(axis=1) - (0.0 if spread is None else self.config.kappa * spread[rows, candidate])
        se = (
            tested.std(axis=1, ddof=1) / np.sqrt(tested.shape[1])
            if tested.shape[1] > 1
            else np.zeros_like(mean)
        )
        clears = (mean > self.config.gate * se) & (mean > 0)
        return np.where(clears, candidate, 0)

    def candidate_slates(
        self, core: SessionCore, observation: dict[str, np.ndarray], rng: np.random.Generator
    ) -> np.ndarray:
        """``(B, A, K)`` the slates of the planner's candidate actions (:func:`candidate_actions`)."""
        return candidate_slates(
            core, observation, candidate_actions(self.base, self.config, observation, rng)
        )

    def _futures_of(
        self, source: SessionCore, core: SessionCore, positions: np.ndarray, rng: np.random.Generator,
        model: EnvConfig, world: RankingWorld, m: int,
    ) -> np.ndarray:  # fmt: skip
        """``(B, A, m)`` the return of each of ``m`` futures in ``world``: candidate ``a`` now, then
        the base policy. Candidates of a session that show the same slate share their futures
        (under common random numbers they are the same futures)."""
        batch, n_actions, k = positions.shape
        if self.config.clairvoyant:
            keys = np.repeat(core.key[:, None], m, axis=1)  # the real sessions' own dice
        else:
            keys = np.floor(rng.random((batch, m)) * 2.0**53).astype(np.uint64)
        # One row per (session, distinct slate): ``slot_of[b, a]`` is candidate a's row.
        flat = positions.reshape(batch * n_actions, k)
        labels = np.ascontiguousarray(np.column_stack([np.repeat(np.arange(batch), n_actions), flat]))
        distinct, slot_of = np.unique(labels, axis=0, return_inverse=True)
        session = distinct[:, 0]
        rows = np.repeat(session, m)  # (U * M,): the session of each future
        future_keys = keys[session].reshape(-1)
        totals = self._play(
            source, core.ledger, rows, future_keys, np.repeat(distinct[:, 1:], m, axis=0), rng, model, world
        )
        return totals.reshape(len(distinct), m)[slot_of.reshape(batch, n_actions)]

    def _play(
        self, source: SessionCore, ledger: Any, rows: np.ndarray, keys: np.ndarray, first: np.ndarray,
        rng: np.random.Generator, model: EnvConfig, world: RankingWorld,
    ) -> np.ndarray:  # fmt: skip
        """``(R,)`` the return of futures of ``source``'s sessions ``rows (R,)`` with ``keys (R,)``
        whose first slate is ``first (R, K)`` (candidate positions), the base policy after it. The
        futures still running are packed into a smaller batch as the others end."""
        size, n = len(rows), model.n_candidates
        futures = SessionCore(model, world, size)
        source.clone_into(futures, rows, keys, ledger=ledger)
        frozen = futures.ledger.snapshot()  # one session moves the shared ledger too little to matter
        total = np.zeros(size)
        index = np.arange(size)  # the future each slot of ``futures`` plays
        reward, terminated, truncated, _ = futures.step_scores(
            slate_scores(first, n), np.zeros(size, dtype=bool), copy=False
        )
        total += reward
        alive = ~(terminated | truncated)
        returns = self.config.across_sessions and futures.clock is not None
        if returns:
            self._come_back(futures, ~alive, alive, total, index, model)
        steps = 1
        base = replace(model, action_mode=self.base.action_mode)
        while alive.any() and (self.config.depth == 0 or steps < self.config.depth):
            if alive.mean() < 0.5 and alive.sum() >= 64:  # pack the running futures
                packed = SessionCore(model, world, int(alive.sum()))
                futures.clone_into(packed, np.flatnonzero(alive), futures.key[alive])
                futures, index, alive = packed, index[alive], np.ones(int(alive.sum()), dtype=bool)
            futures.ledger.restore(frozen)
            observation = futures.observe_ids(copy=False)
            action = np.asarray(self.base.act(observation, rng))
            scores, diverse = action_scores(
                base, action, observation["candidate_features"], futures.key, futures.step_count
            )
            reward, terminated, truncated, _ = futures.step_scores(scores, diverse, copy=False)
            np.add.at(total, index[alive], reward[alive])
            ended = alive & (terminated | truncated)
            alive &= ~ended
            if returns:
                self._come_back(futures, ended, alive, total, index, model)
            steps += 1
        return total

    @staticmethod
    def _come_back(
        futures: SessionCore, ended: np.ndarray, alive: np.ndarray, total: np.ndarray, index: np.ndarray,
        model: EnvConfig,
    ) -> None:  # fmt: skip
        """The retention env's futures whose sessions ``ended``: those whose user comes back within
        the horizon go on (``alive`` again, the return bonus added to their ``total``)."""
        slots = np.flatnonzero(ended)
        if not len(slots):
            return
        back = slots[futures.come_back(slots)]
        alive[back] = True
        np.add.at(total, index[back], model.return_bonus)

    def _follow(self, core: SessionCore) -> list[SessionCore]:
        """The beliefs: each model world's own state of each of ``core``'s sessions, the last
        step's shown slate and observed clicks and purchases applied by the model's equations (a
        session that just started starts afresh in the model too)."""
        if self._shown_candidates is not None:
            shown = (core.last_slate[:, :, None] == self._shown_candidates[:, None, :]).argmax(axis=2)
            observed = np.stack([core.last_click, core.last_purchase], axis=1).astype(np.int8)
            for belief in self._beliefs:
                belief.step_scores(slate_scores(shown, core.config.n_candidates), np.zeros(core.batch, bool),
                                   observed=observed)  # fmt: skip
        fresh = np.flatnonzero(core.step_count == 0)
        if len(fresh):
            for belief in self._beliefs:
                belief.start_users(fresh, core.user[fresh], core.key[fresh])
                belief.history[fresh] = core.history[fresh]  # a returning user's clicks so far
        if core.clock is not None:  # the retention env's clock is what the user's visits show
            for belief in self._beliefs:
                if belief.clock is not None:
                    core.clock.clone_into(belief.clock, np.arange(core.batch))
        self._shown_candidates = core.candidates.copy()
        return self._beliefs

    def report(self) -> dict[str, Any]:
        """What the planner did: decisions, the share that deviated from the base, decisions per second."""
        return {
            "decisions": self.decisions,
            "deviation_rate": self.deviations / max(self.decisions, 1),
            "decisions_per_second": self.decisions / self.seconds if self.seconds else None,
            "rollouts": self.config.rollouts,
            "model": self.model.simulator,
            "true_parts": self.model.true_parts,
            "ensemble": self.config.ensemble,
            "kappa": self.config.kappa,
        }
