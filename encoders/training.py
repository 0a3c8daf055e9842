"""The one training loop RecGym's supervised models share: minibatch Adam with early stopping.

A model only needs a ``loss(batch) -> scalar tensor`` method; batches are dicts of tensors
that share their first axis.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from encoders.optimiser import OptimiserConfig


class LossModel(Protocol):
    """A module whose ``loss`` scores a batch (lower is better)."""

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean loss of ``batch``."""
        ...


def tensor_batches(
    data: dict[str, torch.Tensor], size: int, generator: torch.Generator | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Minibatches of ``size`` rows; shuffled by ``generator``, in order without one."""
    n = len(next(iter(data.values())))
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, size):
        index = order[start : start + size]
        yield {key: value[index] for key, value in data.items()}


def mean_loss(model: LossModel, data: dict[str, torch.Tensor], batch_size: int = 4096) -> float:
    """Row-weighted mean of ``model.loss`` over ``data`` (no gradients)."""
    n = len(next(iter(data.values())))
    with torch.no_grad():
        total = sum(
            float(model.loss(b)) * len(next(iter(b.values()))) for b in tensor_batches(data, batch_size)
        )
    return total / n


def train_early_stopping(
    model: nn.Module,
    train: dict[str, torch.Tensor],
    valid: dict[str, torch.Tensor],
    optim: OptimiserConfig,
    description: str,
) -> list[float]:
    """Adam over shuffled minibatches; stop after ``optim.patience`` epochs without a
    validation improvement of ``optim.tolerance``; restore the best weights. Returns the
    validation losses."""
    generator = torch.Generator().manual_seed(optim.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=optim.learning_rate, weight_decay=optim.weight_decay)
    epochs, batch_size, tolerance, patience = optim.epochs, optim.batch_size, optim.tolerance, optim.patience
    best, best_state, stale, history = float("inf"), None, 0, []
    for _ in tqdm(range(epochs), desc=description, unit="epoch"):
        model.train()
        for batch in tensor_batches(train, batch_size, generator):
            optimiser.zero_grad()
            model.loss(batch).backward()  # type: ignore[operator]
            optimiser.step()
        model.eval()
        loss = mean_loss(model, valid)  # type: ignore[arg-type]
        history.append(round(loss, 6))
        if loss < best - tolerance:
            best, stale = loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale > patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
