"""Choosing the torch device from a user's ``auto|cpu|cuda`` option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from simulators.core.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a :class:`ConfigError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but torch sees no CUDA GPU (use --device cpu or auto)")
    if name.split(":")[0] not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {DEVICE_CHOICES}, got {name!r}")
    return torch.device(name)


@contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seed torch and switch on deterministic kernels for the block (restored afterwards).

    On CPU this makes training bit-reproducible: embedding backward passes otherwise
    accumulate in a thread-dependent order.
    """
    previous = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
