"""Configuration of simulator fitting (torch-free, so environments can import it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass, field

from encoders.optimiser import OptimiserConfig
from encoders.text import TEXT_ENCODERS
from simulators.core.errors import ConfigError, check_seed

HISTORY_ENCODERS = ("lstm", "mean")


@dataclass(frozen=True)
class ResponseNetConfig:
    """Architecture and optimisation of :class:`ResponseNet`."""

    dim: int = 32
    """Size of the user and item vectors."""
    history_encoder: str = "mean"
    """``mean`` (projected text embeddings averaged) or ``lstm`` (:class:`LSTMUserEncoder`)."""
    dropout: float = 0.8
    """Dropout on the user-id embedding (regularises users with few sessions)."""
    optim: OptimiserConfig = field(
        default_factory=lambda: OptimiserConfig(learning_rate=3e-3, weight_decay=1e-6, tolerance=1e-5)
    )
    """Adam with early stopping: epochs, batch size, learning rate, weight decay, patience, seed."""

    def __post_init__(self) -> None:
        if self.history_encoder not in HISTORY_ENCODERS:
            raise ConfigError(
                f"history_encoder must be one of {HISTORY_ENCODERS}, got {self.history_encoder!r}"
            )
        if self.dim < 1:
            raise ConfigError(f"dim must be >= 1, got {self.dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")


DYNAMICS_FITS = ("sessions", "steps")
"""How :class:`FitConfig` fits the dynamics."""


@dataclass(frozen=True)
class FitConfig:
    """How a simulator is fitted from logs."""

    text_encoder: str = "minilm"
    """``minilm`` (BERT, the default) or ``hashing`` (fast, for tests)."""
    history_length: int = 20
    """Clicked items before a session that the user tower reads."""
    n_topics: int = 20
    """Topics (k-means on text embeddings) when the catalog has no ``topic_column``."""
    topic_column: str = "category"
    """Item column whose values are the topics of boredom and drift, when present."""
    retention_grid: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    """Candidate per-step retentions of boredom/drift; the best on validation is kept."""
    dynamics_fit: str = "sessions"
    """How the dynamics are fitted: ``sessions`` (every coefficient at once, by the likelihood of
    whole logged sessions, drift and boredom with retentions of their own:
    :mod:`simulators.fit.sessions`) or ``steps`` (step-wise: a click calibration with one shared
    retention, then a leave regression; the fit before the counterfactual-fidelity study)."""
    random_effects: bool = True
    """With ``dynamics_fit="sessions"``: each user's interest in each topic beyond the static
    logits and each user's leave offset are random effects integrated out of the sessions'
    likelihood (:mod:`simulators.fit.sessions`), their posterior means the simulator's (False: no
    interests, and the offsets of :func:`~simulators.fit.traits.fit_patience` held fixed, the fit
    before FIT_VERSION 13)."""
    session_effects: bool = True
    """With ``random_effects``: each session's leave logit has a random intercept of its own too,
    nested in its user's (visits differ in intent: :mod:`simulators.fit.sessions`), and the
    simulator draws one per session (False: the fit before FIT_VERSION 14, every session of a user
    with one hazard)."""
    cross_fit_folds: int = 2
    """With ``dynamics_fit="sessions"``: folds of the training sessions whose clicks also score the
    dynamics, each with the static logits of a response network trained on the other folds
    (cross-fitting: logits honest on sessions their network never saw). 0: the validation
    sessions alone score the click part (the fit before FIT_VERSION 13)."""
    valid_fraction: float = 0.1
    """Share of sessions (by end time) for early stopping, calibration and dynamics."""
    test_fraction: float = 0.1
    """Share of sessions (latest) held out for the fidelity report."""
    net: ResponseNetConfig = field(default_factory=ResponseNetConfig)
    """The response network."""
    seed: int = 0
    """Seed of the fit and of the report's simulated sessions."""
    sample: int = 0
    """0: fit on every logged session. k >= 1: fit on the sessions of half the users, the k-th
    member of an ensemble whose spread measures how unsure the fit is. Members 2j-1 and 2j are
    the two halves of one random split of the users (drawn with ``seed`` and j): fit on one, the
    other is held out. Every member still plays the whole population (who shows up, their
    histories)."""

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        if self.history_length < 1 or self.n_topics < 1:
            raise ConfigError("history_length and n_topics must be >= 1")
        if self.cross_fit_folds < 0 or self.cross_fit_folds == 1:
            raise ConfigError(f"cross_fit_folds must be 0 (off) or >= 2, got {self.cross_fit_folds}")
        if self.sample < 0:
            raise ConfigError(f"sample must be >= 0 (0: every session), got {self.sample}")
        if self.dynamics_fit not in DYNAMICS_FITS:
            raise ConfigError(f"dynamics_fit must be one of {DYNAMICS_FITS}, got {self.dynamics_fit!r}")
        if not all(0 < r < 1 for r in self.retention_grid):
            raise ConfigError("retention_grid values must lie in (0, 1)")
