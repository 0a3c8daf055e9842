"""The item and user towers RecGym's networks share: the CTR model, the response network of the
fitted simulator and the RL policy's features extractor.

Item tower: ``text(BERT row) [+ side(side-feature row)] [+ id embedding]``. User tower: the
LSTM over the clicked history (:class:`~encoders.sequence.LSTMUserEncoder`) plus a projection of
the user's attributes. A warm start copies a tower's sub-modules by ``state_dict``
(:func:`copy_towers`), so what is shared is named by the module, not by matching strings.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from encoders.sequence import LSTMUserEncoder
from simulators.core.errors import ConfigError


def _table(array: np.ndarray | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32))


class ItemTower(nn.Module):
    """Item vectors from a frozen text-embedding table, optional side features and ids.

    Args:
        text: projection of a text embedding, ``Linear(text_dim, dim)``.
        side: projection of the side features, ``Linear(F, dim)``, or ``None``.
        ids: a learned vector per item, ``Embedding(n_items, dim)``, or ``None``.
        item_table: ``(n_items, text_dim)`` frozen text embeddings (a buffer, not a weight).
        item_features: ``(n_items, F)`` side features (needed with ``side``).

    Use :meth:`build` for the standard construction; a model that must keep its own order of
    initialisation (and so its random draws) builds the layers itself and passes them in.
    """

    item_table: torch.Tensor
    item_features: torch.Tensor

    def __init__(
        self,
        text: nn.Linear,
        side: nn.Linear | None,
        ids: nn.Embedding | None,
        item_table: np.ndarray | torch.Tensor,
        item_features: np.ndarray | torch.Tensor | None = None,
    ):
        super().__init__()
        self.text, self.side, self.ids = text, side, ids
        self.register_buffer("item_table", _table(item_table), persistent=False)
        features = np.zeros((len(self.item_table), 0)) if item_features is None else item_features
        self.register_buffer("item_features", _table(features), persistent=False)
        if side is not None and item_features is None:
            raise ConfigError("an item tower with side features needs the item_features table")

    @classmethod
    def build(
        cls,
        item_table: np.ndarray | torch.Tensor,
        item_features: np.ndarray | torch.Tensor | None,
        dim: int,
        id_embedding: bool,
    ) -> ItemTower:
        """Layers created in the order text, side, ids; ids start at ``N(0, 0.01^2)``."""
        table = _table(item_table)
        text = nn.Linear(table.shape[1], dim)
        side = nn.Linear(_table(item_features).shape[1], dim) if item_features is not None else None
        ids = nn.Embedding(table.shape[0], dim) if id_embedding else None
        if ids is not None:
            nn.init.normal_(ids.weight, std=0.01)
        return cls(text, side, ids, table, item_features)

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.item_table.shape[0])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` vectors of catalog rows ``items`` (any shape, values in range)."""
        vectors = self.text(self.item_table[items])
        if self.side is not None:
            vectors = vectors + self.side(self.item_features[items])
        return vectors if self.ids is None else vectors + self.ids(items)

    def text_vectors(self) -> torch.Tensor:
        """``(n_items, dim)`` the projected text embedding of every item."""
        return self.text(self.item_table)

    def catalog(self) -> torch.Tensor:
        """``(n_items, dim)`` every item's vector, computed over the whole table at once."""
        vectors = self.text_vectors()
        if self.side is not None:
            vectors = vectors + self.side(self.item_features)
        return vectors if self.ids is None else vectors + self.ids.weight


class UserTower(nn.Module):
    """User vectors: the LSTM over the clicked history plus a projection of the attributes.

    Args:
        item_table: ``(n_items, text_dim)`` frozen text embeddings the LSTM reads items through.
        n_user_features: width of the user attribute matrix (0: no attribute projection).
        dim: size of the projection, the LSTM state and the output.
    """

    def __init__(self, item_table: np.ndarray | torch.Tensor, n_user_features: int, dim: int):
        super().__init__()
        self.history = LSTMUserEncoder(item_table, projection_dim=dim, hidden_dim=dim)
        self.features = nn.Linear(n_user_features, dim) if n_user_features else None

    def forward(
        self,
        history: torch.Tensor,
        mask: torch.Tensor,
        user_features: torch.Tensor,
        projected: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, dim)`` from ``history (B, H)`` item rows, ``mask (B, H)`` and ``user_features (B, F)``
        (``projected``: the history encoder's projected catalog, :meth:`LSTMUserEncoder.projected_table`)."""
        vector = self.history(history, mask, projected)
        if self.features is not None:
            vector = vector + self.features(user_features)
        return vector


def copy_towers(
    source_items: ItemTower, source_users: UserTower, items: ItemTower, users: UserTower
) -> list[str]:
    """Load a trained model's towers into another model's (the RL policy's warm start from the
    CTR model): the user tower whole, the item tower's text projection, and its id embedding
    when both have one. Returns the sub-modules copied; raises :class:`ConfigError` when their
    shapes differ (another ``dim`` or catalog)."""
    pairs: list[tuple[str, nn.Module | None, nn.Module | None]] = [
        ("user_tower", source_users, users),
        ("item_tower.text", source_items.text, items.text),
        ("item_tower.ids", source_items.ids, items.ids),
    ]
    copied = []
    for name, source, target in pairs:
        if source is None or target is None:
            continue
        try:
            target.load_state_dict(source.state_dict())
        except RuntimeError as err:
            raise ConfigError(
                f"cannot warm-start {name} from the CTR model ({str(err).splitlines()[0]}): different dim or catalog?"
            ) from None
        copied.append(name)
    return copied
