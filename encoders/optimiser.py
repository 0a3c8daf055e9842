"""The options of RecGym's one supervised training loop (:func:`encoders.training.train_early_stopping`).

Torch-free, so configurations that nest it (the CTR model's, the fitted simulator's) stay cheap
to import and to hash into cache keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulators.core.errors import ConfigError, check_at_least_one, check_seed


@dataclass(frozen=True)
class OptimiserConfig:
    """Minibatch Adam with early stopping on the validation loss."""

    epochs: int = 8
    """Maximum passes over the training split (early stopping on validation loss)."""
    batch_size: int = 512
    """Steps (slates) per optimisation step."""
    learning_rate: float = 2e-3
    """Adam learning rate."""
    weight_decay: float = 1e-6
    """L2 penalty on all weights."""
    patience: int = 1
    """Epochs without validation improvement before stopping."""
    tolerance: float = 1e-6
    """Smallest decrease of the validation loss that counts as an improvement."""
    seed: int = 0
    """Seed of initialisation and batch order."""

    def __post_init__(self) -> None:
        check_seed("seed", self.seed)
        check_at_least_one(self, ("epochs", "batch_size"))
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not (self.weight_decay >= 0 and self.tolerance >= 0):
            raise ConfigError("weight_decay and tolerance must be >= 0")
