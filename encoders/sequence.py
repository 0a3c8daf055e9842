"""The LSTM user encoder: a padded history of item ids in, a user vector out.

Items enter through a frozen embedding table (from ``encoders.text``) and a trainable
projection; the table is a buffer, not a weight, so ``state_dict`` holds only learned weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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

    def projected_table(self) -> torch.Tensor:
        """``(n_items, projection_dim)``: every catalog row through the projection."""
        return self.project(self.item_table)

    def forward(
        self, item_ids: torch.Tensor, mask: torch.Tensor, projected: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``item_ids (batch, H)`` int, ``mask (batch, H)`` bool -> ``(batch, out_dim)``.

        ``projected``: the whole catalog already through the projection, ``(n_items,
        projection_dim)`` (what :meth:`projected_table` returns), to look rows up instead of
        projecting them again: a frozen encoder's saving."""
        if item_ids.shape != mask.shape or item_ids.ndim != 2:
            raise ConfigError(
                f"item_ids and mask must both be (batch, H), got {tuple(item_ids.shape)} and {tuple(mask.shape)}"
            )
        mask = mask.bool()
        lengths = mask.sum(dim=1)
        # Move valid entries to the front, keeping their order: the ascending order of a unique key
        # (invalid after valid, then position), by top-k, which ONNX has (a stable sort it has not).
        width = mask.shape[1]
        key = (~mask).long() * width + torch.arange(width, device=mask.device)[None, :]
        order = torch.topk(key, k=width, dim=1, largest=False, sorted=True).indices
        ids = torch.gather(item_ids.long(), 1, order).clamp(0, self.n_items - 1)
        vectors = (
            self.project(self.item_table[ids]) if projected is None else projected[ids]
        )  # (batch, H, proj)
        # The last layer's output at step length - 1 is the packed sequence's final state (the LSTM
        # runs forward only, so padding after it never reaches it); no data-dependent branch, so the
        # same graph traces to ONNX (agents.export).
        state = vectors.new_zeros(self.lstm.num_layers, vectors.shape[0], self.lstm.hidden_size)
        outputs, _ = self.lstm(vectors, (state, state))  # (batch, H, hidden); a traced batch stays dynamic
        last = (lengths - 1).clamp(min=0)
        final = outputs[torch.arange(outputs.shape[0]), last]
        empty = self.empty_history.expand(outputs.shape[0], -1)
        return self.head(torch.where((lengths > 0)[:, None], final, empty))
