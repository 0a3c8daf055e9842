"""A rollout planner distilled into a fast policy: at every step it builds the planner's candidate
slates (:func:`agents.policies.planner.candidate_actions`), predicts each one's gain over the base
policy's slate with a regressor trained on the planner's own estimates (:mod:`agents.training.distill`),
and plays the best when its predicted gain clears ``threshold``; otherwise the base's slate.

It is expert iteration in the sense of Anthony et al. ("Thinking Fast and Slow with Deep Learning
and Tree Search", NeurIPS 2017), with DAgger's data collection (Ross et al., AISTATS 2011): the
slow expert (the planner, tens of decisions per second) labels the states the fast apprentice
visits, and the apprentice learns the expert's *values* of its candidate actions, not only its
choice, so it can also refuse a deviation the expert would have played on a noisy estimate. It
needs no model of the world when it acts: about sixty times the planner's decisions per second
on the shop (``benchmarks/results/distill.md``).

A run folder of ``python -m agents.distill`` holds it: ``distilled.json`` (what it was distilled
from and how, the sha256 of the scorer) and ``scorer.pkl`` (the regressor, pickled by scikit-learn's
own convention; it is read only when its digest matches, and like SB3's ``model.zip`` it is code
from whoever wrote the folder: load only your own runs).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agents.policies.baselines import scores_action
from agents.policies.planner import MODELS, PlannerConfig, candidate_actions, candidate_rankings
from agents.policies.protocol import Policy
from envs.config import EnvConfig, known_options
from envs.core import SessionCore
from simulators.core.errors import ConfigError
from simulators.core.storage import atomic_path, file_digest, write_text_atomic

DISTILLED_FILE = "distilled.json"
"""A distilled run's record: its config, the planner's options, the scorer's digest, the rounds."""
SCORER_FILE = "scorer.pkl"
"""The distilled run's regressor."""
LABELS_FILE = "labels.npz"
"""Every row and label of the run (``x (R, D)``, ``y (R,)``, ``round (R,)``): to refit without the planner."""
METRICS_FILE = "metrics.json"
"""The rounds' labels and times, and the paired evaluation against the base."""
DISTILLED_RUN_FILES = (DISTILLED_FILE, SCORER_FILE, LABELS_FILE, METRICS_FILE)
"""Files a distillation writes at the top of its run folder."""
FORMAT = 1
"""Bump when the design's columns (:func:`candidate_design`) change: older scorers are refused."""


class Scorer(Protocol):
    """A fitted regressor: rows of :func:`candidate_design` in, predicted gains out."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``(R,)`` predictions of ``x (R, D)``."""
        ...


def candidate_design(
    observation: dict[str, np.ndarray], slates: np.ndarray, topics: np.ndarray
) -> np.ndarray:
    """``(B, A, D)`` the regressor's rows, one per session and candidate slate ``slates (B, A, K)``
    (positions among the candidates; candidate 0 the base's): the session's ``context``; the
    slate's candidate features (mean over its slots, their sum discounted by position as DCG is,
    its top slot's) and its number of distinct topics (``topics (B, N)`` of the candidates), each
    minus the base slate's; and which candidate it is (one-hot)."""
    features = observation["candidate_features"].astype(np.float64)  # (B, N, F)
    b, a, k = slates.shape
    rows = np.arange(b)[:, None, None]
    slot = features[rows, slates]  # (B, A, K, F)
    slot_topics = np.sort(topics[rows, slates], axis=2)
    distinct = 1.0 + (np.diff(slot_topics, axis=2) != 0).sum(axis=2)  # (B, A)
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    x = np.concatenate(
        [
            slot.mean(axis=2),
            (slot * discount[None, None, :, None]).sum(axis=2),
            slot[:, :, 0],
            distinct[..., None],
        ],
        axis=2,
    )
    context = np.repeat(observation["context"].astype(np.float64)[:, None, :], a, axis=1)
    which = np.broadcast_to(np.eye(a)[None], (b, a, a))
    return np.concatenate([context, x - x[:, :1], which], axis=2)


@dataclass
class DistilledPlanner:
    """The policy of the module docstring.

    Args:
        base: the planner's base policy (a tuned static re-ranker), tuned for the env's logs.
        planner: the planner's options (its base name, candidate families and perturbation fix
            the candidates; the rest is how the labels were made).
        scorer: the regressor of each candidate's gain (:class:`Scorer`).
        threshold: the predicted gain a deviation must clear (in the reward's units, per session).
        name: how reports name it.
        env_config: the env it was distilled in (``None``: not known), where the serving path and
            OPE rebuild its candidates; its logs and fairness weight are :attr:`env_options`.
    """

    base: Policy
    planner: PlannerConfig
    scorer: Scorer
    threshold: float = 0.0
    name: str = "distilled"
    env_config: EnvConfig | None = None
    decisions: int = field(default=0, init=False)
    """Decisions taken (one per session and step)."""
    deviations: int = field(default=0, init=False)
    """Decisions that played another slate than the base policy's."""

    def __post_init__(self) -> None:
        self.core: SessionCore | None = None
        self.last_actions: list[tuple[str, np.ndarray]] = []
        """The candidate actions of the last decision (:func:`~agents.policies.planner.candidate_actions`)."""
        self.last_choice: np.ndarray | None = None
        """``(B,)`` the candidate played at the last decision (0: the base's)."""
        self.last_gains: np.ndarray | None = None
        """``(B, A)`` the predicted gains of the last decision's candidates."""

    @property
    def env_options(self) -> dict[str, Any]:
        """The logs, fairness weight and session cap it was distilled with (``data``,
        ``fairness_lambda``, ``max_steps``), which ``agents.evaluate`` plays it on by default (empty
        when its env is not known)."""
        if self.env_config is None:
            return {}
        config = self.env_config
        return {"data": config.data, "fairness_lambda": config.fairness_lambda, "max_steps": config.max_steps}

    @property
    def action_mode(self) -> str:
        """It shows slates: a ``scores`` action whose top K is the chosen slate."""
        return "scores"

    def bind(self, core: SessionCore) -> None:
        """Act for the sessions of ``core`` (its candidates' topics and the ranking rule make the
        candidate slates; ``run_sessions`` binds the env's core before playing)."""
        self.core = core

    def act(self, observation: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """``scores`` actions ``(B, N)`` whose top K are the chosen slates."""
        core = self.core
        if core is None:
            raise ConfigError(
                "a distilled planner acts for an env's sessions: bind(core) it first (run_sessions does)"
            )
        self.last_actions = candidate_actions(self.base, self.planner, observation, rng)
        slates, scores = candidate_rankings(core, observation, self.last_actions)
        return self.play(observation, slates, core.candidate_topics, core.config.n_candidates, scores)

    def play(
        self, observation: dict[str, np.ndarray], slates: np.ndarray, topics: np.ndarray, n_candidates: int,
        scores: np.ndarray | None = None,
    ) -> np.ndarray:  # fmt: skip
        """The ``scores`` actions ``(B, N)`` of the candidate slates ``slates (B, A, K)`` it chooses
        (:meth:`choose`), counted; given each candidate action's ``scores (B, A, N)``, the chosen
        one's are kept below its slate (:func:`~agents.policies.baselines.scores_action`)."""
        choice = self.choose(observation, slates, topics)
        self.last_choice = choice
        self.decisions += len(choice)
        self.deviations += int((choice > 0).sum())
        rows = np.arange(len(choice))
        return scores_action(
            slates[rows, choice], n_candidates, None if scores is None else scores[rows, choice]
        )

    def predict(
        self, observation: dict[str, np.ndarray], slates: np.ndarray, topics: np.ndarray
    ) -> np.ndarray:
        """``(B, A)`` the predicted gain of each candidate slate over the base's (0 for the base)."""
        b, a, _ = slates.shape
        x = candidate_design(observation, slates, topics)
        gain = np.asarray(self.scorer.predict(x.reshape(b * a, -1)), dtype=np.float64).reshape(b, a)
        gain[:, 0] = 0.0
        return gain

    def choose(
        self, observation: dict[str, np.ndarray], slates: np.ndarray, topics: np.ndarray
    ) -> np.ndarray:
        """``(B,)`` the candidate to play: the largest predicted gain when it clears ``threshold``,
        else the base's (0)."""
        gain = self.predict(observation, slates, topics)
        self.last_gains = gain
        best = gain.argmax(axis=1)
        return np.where(gain.max(axis=1) > self.threshold, best, 0)

    def report(self) -> dict[str, Any]:
        """What it did: decisions and the share that left the base policy's slate."""
        return {"decisions": self.decisions, "deviation_rate": self.deviations / max(self.decisions, 1),
                "threshold": self.threshold}  # fmt: skip


def save_scorer(folder: Path, scorer: Scorer) -> str:
    """Write ``scorer`` to ``folder/scorer.pkl`` atomically; return its sha256."""
    with atomic_path(folder / SCORER_FILE) as tmp:
        tmp.write_bytes(pickle.dumps(scorer, protocol=pickle.HIGHEST_PROTOCOL))
    return file_digest(folder / SCORER_FILE)


def write_record(folder: Path, record: dict[str, Any]) -> None:
    """Write the run's ``distilled.json`` (atomically; the last file a run writes)."""
    write_text_atomic(folder / DISTILLED_FILE, json.dumps({"format": FORMAT, **record}, indent=1) + "\n")


def read_record(folder: Path) -> dict[str, Any]:
    """The ``distilled.json`` of a distilled run folder, checked; :class:`ConfigError` naming what is wrong."""
    file = folder / DISTILLED_FILE
    try:
        record = json.loads(file.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{file}: not a distilled run's record ({err})") from None
    if record.get("format") != FORMAT:
        raise ConfigError(
            f"{file}: written by another version of RecGym (format {record.get('format')}, this one reads {FORMAT})"
        )
    try:
        digest = str(record["scorer_sha256"])
        if not isinstance(record["planner"], dict) or not isinstance(record["env_options"], dict):
            raise ValueError("its planner and env_options must be objects")
        planner_config(record["planner"])
        float(record["threshold"])
        if record["planner_model"] not in MODELS:
            raise ValueError(f"planner_model {record['planner_model']!r} is not one of {list(MODELS)}")
    except (ValueError, KeyError, TypeError, ConfigError) as err:
        raise ConfigError(f"{file}: not a distilled run's record ({err})") from None
    scorer = folder / SCORER_FILE
    if not scorer.is_file() or file_digest(scorer) != digest:
        raise ConfigError(
            f"{scorer}: missing or changed since the run wrote it (its sha256 differs); distil again"
        )
    return record


def load_distilled(folder: str | Path, base: Policy, threshold: float | None = None) -> DistilledPlanner:
    """The distilled policy of a run folder of ``python -m agents.distill`` over ``base`` (the
    run's planner base, tuned for the env's logs: :func:`agents.evaluation.load.load_policy`
    tunes it); ``threshold``: another deviation threshold than the run's."""
    folder = Path(folder)
    record = read_record(folder)
    try:
        scorer = pickle.loads((folder / SCORER_FILE).read_bytes())
    except (OSError, pickle.UnpicklingError, AttributeError, ImportError, EOFError) as err:
        raise ConfigError(f"{folder / SCORER_FILE}: unreadable ({err})") from None
    options = record.get("env_options", {})
    return DistilledPlanner(
        base,
        planner_config(record["planner"]),
        scorer,
        float(record["threshold"]) if threshold is None else threshold,
        name=f"distilled:{record['planner_model']}",
        env_config=EnvConfig(**known_options(options)),
    )


def planner_config(raw: dict[str, Any]) -> PlannerConfig:
    """A :class:`PlannerConfig` from its JSON (lists back to tuples)."""
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return PlannerConfig(**fields)


def is_distilled_run(path: str | Path) -> bool:
    """Whether ``path`` is a folder a distillation wrote (it holds ``distilled.json``)."""
    return (Path(path) / DISTILLED_FILE).is_file()
