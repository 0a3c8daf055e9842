"""The LSTM user encoder: a padded history of item ids in, a user vector out.

Items enter through a frozen embedding table (from ``encoders.text``) and a trainable
projection; the table is a buffer, not a weight, so ``state_dict`` holds only learned weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from simulators.core.errors import ConfigError


class LSTMUserEncoder(nn.Module):
    """Encode ``(batch, history)`` item ids with a mask into ``(batch, out_dim)`` user vectors.

    Args:
        item_table: ``(n_items, text_dim)`` frozen item embeddings (catalog row order).
        projection_dim: size of the trainable projection of each item embedding.
        hidden_dim: LSTM hidden size.
        out_dim: size of the output vector (a linear head); ``None`` returns the hidden state.
        num_layers: stacked LSTM layers.

    Masked-out positions may hold any id (``-1`` is fine) and may sit anywhere: valid items are
    read in their order. A user with an empty history gets a learned ``empty_history`` vector.
    """

    item_table: torch.Tensor

    def __init__(
        self,
        item_table: np.ndarray | torch.Tensor,
        projection_dim: int = 64,
        hidden_dim: int = 64,
        out_dim: int | None = None,
        num_layers: int = 1,
    ):
        super().__init__()
        table = torch.as_tensor(np.asarray(item_table, dtype=np.float32))
        if table.ndim != 2 or table.shape[0] < 1:
            raise ConfigError(
                f"item_table must be (n_items, dim) with n_items >= 1, got {tuple(table.shape)}"
            )
        if min(projection_dim, hidden_dim, num_layers) < 1 or (out_dim is not None and out_dim < 1):
            raise ConfigError("projection_dim, hidden_dim, num_layers and out_dim must be >= 1")
        self.register_buffer("item_table", table, persistent=False)
        self.project = nn.Linear(table.shape[1], projection_dim)
        self.lstm = nn.LSTM(projection_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.empty_history = nn.Parameter(torch.zeros(hidden_dim))
        self.head: nn.Module = nn.Linear(hidden_dim, out_dim) if out_dim else nn.Identity()
        self.out_dim = out_dim or hidden_dim

    @property
    def n_items(self) -> int:
        """Rows of the frozen item table."""
        return int(self.item_table.shape[0])

    def forward(self, item_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``item_ids (batch, H)`` int, ``mask (batch, H)`` bool -> ``(batch, out_dim)``."""
        if item_ids.shape != mask.shape or item_ids.ndim != 2:
            raise ConfigError(
                f"item_ids and mask must both be (batch, H), got {tuple(item_ids.shape)} and {tuple(mask.shape)}"
            )
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        # Move valid entries to the front, keeping their order (stable sort on ~mask).
        order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
        ids = torch.gather(item_ids.long(), 1, order).clamp(0, self.n_items - 1)
        vectors = self.project(self.item_table[ids])  # (batch, H, projection_dim)
        batch = item_ids.shape[0]
        hidden = self.empty_history.expand(batch, -1).clone()
        has_history = lengths > 0
        if bool(has_history.any()):
            packed = pack_padded_sequence(
                vectors[has_history], lengths[has_history].cpu(), batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = self.lstm(packed)
            hidden[has_history] = h_n[-1]
        return self.head(hidden)
