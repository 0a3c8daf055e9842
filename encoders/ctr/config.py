"""Configuration of the CTR model (torch-free, so environments can key their caches cheaply)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from encoders.optimiser import OptimiserConfig
from encoders.text import TEXT_ENCODERS
from simulators.core.errors import ConfigError, DataError
from simulators.core.storage import content_key

CTR_CACHE_VERSION = 4
"""Bump when training changes, so cached models are retrained."""

ARCHITECTURES = ("mmoe", "shared_bottom")
TASKS = ("click", "purchase", "rating")


@dataclass(frozen=True)
class CTRConfig:
    """Architecture, tasks and optimisation of :class:`CTRModel`."""

    architecture: str = "mmoe"
    """``mmoe`` (multi-gate mixture of experts) or ``shared_bottom``."""
    tasks: tuple[str, ...] = ()
    """Tasks to learn; empty = every task the logs support."""
    dim: int = 32
    """Size of the user and item vectors."""
    item_id_embedding: bool = False
    """Add a learned vector per item id to the item tower. Off by default: it overfits catalogs
    with few impressions per item and helps those with many (measured in the README)."""
    experts: int = 4
    """Experts of the MMoE layer."""
    hidden: int = 64
    """Width of experts, the shared bottom and task towers."""
    history_length: int = 20
    """Clicked items before the session that the user tower reads."""
    text_encoder: str = "minilm"
    """``minilm`` (BERT) or ``hashing`` (fast, for tests)."""
    optim: OptimiserConfig = field(default_factory=lambda: OptimiserConfig(learning_rate=2e-3))
    """Adam with early stopping: epochs, batch size, learning rate, weight decay, patience, seed."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        unknown = set(self.tasks) - set(TASKS)
        if unknown:
            raise ConfigError(f"unknown task(s) {sorted(unknown)}; tasks are {TASKS}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ConfigError(f"text_encoder must be one of {TEXT_ENCODERS}, got {self.text_encoder!r}")
        for name in ("dim", "experts", "hidden", "history_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")


def warm_start_identity(init: Path | str) -> str:
    """What a warm start from the model folder ``init`` adds to a cache key: the hash of its
    parameters' file (so a retrained ``init`` is a new key). One clear error when it has none."""
    try:
        return hashlib.sha256((Path(init) / "model.pt").read_bytes()).hexdigest()
    except OSError as err:
        raise DataError(f"{init}: not a CTR model folder to warm-start from ({err})") from None


def ctr_cache_key(fingerprint: str, config: CTRConfig, start: str | None = None) -> str:
    """The identity of the CTR model trained with ``config`` on the logs of ``fingerprint``, from
    the warm start ``start`` (:func:`warm_start_identity`; ``None``: from scratch): its cache
    folder's name. The device is not part of it."""
    return content_key("ctr", CTR_CACHE_VERSION, fingerprint, {**asdict(config), "device": None}, start)
