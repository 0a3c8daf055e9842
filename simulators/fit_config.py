"""Configuration of simulator fitting (torch-free, so environments can import it cheaply)."""

from __future__ import annotations

from dataclasses import dataclass, field

from encoders.text import TEXT_ENCODERS
from simulators.errors import ConfigError

HISTORY_ENCODERS = ("lstm", "mean")


@dataclass(frozen=True)
class ResponseNetConfig:
    """Architecture and optimisation of :class:`ResponseNet`."""

    dim: int = 32
    """Size of the user and item vectors."""
    history_encoder: str = "mean"
    """``mean`` (projected text embeddings averaged) or ``lstm`` (:class:`LSTMUserEncoder`)."""
    epochs: int = 8
    """Maximum passes over the training steps (early stopping on validation loss)."""
    batch_size: int = 512
    """Steps (slates) per optimisation step."""
    learning_rate: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 1e-6
    """L2 penalty on all weights."""
    patience: int = 1
    """Epochs without validation improvement before stopping."""
    dropout: float = 0.8
    """Dropout on the user-id embedding (regularises users with few sessions)."""
    seed: int = 0
    """Seed of initialisation and batch order."""

    def __post_init__(self) -> None:
        if self.history_encoder not in HISTORY_ENCODERS:
            raise ConfigError(
                f"history_encoder must be one of {HISTORY_ENCODERS}, got {self.history_encoder!r}"
            )
        for name in ("dim", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError("learning_rate must be > 0")


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
    valid_fraction: float = 0.1
    """Share of sessions (by end time) for early stopping, calibration and dynamics."""
    test_fraction: float = 0.1
    """Share of sessions (latest) held out for the fidelity report."""
    net: ResponseNetConfig = field(default_factory=ResponseNetConfig)
    """The response network."""
    seed: int = 0
    """Seed of the fit and of the report's simulated sessions."""

    def __post_init__(self) -> None:
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        if self.history_length < 1 or self.n_topics < 1:
            raise ConfigError("history_length and n_topics must be >= 1")
        if not all(0 < r < 1 for r in self.retention_grid):
            raise ConfigError("retention_grid values must lie in (0, 1)")
