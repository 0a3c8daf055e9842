"""The learned response model: a two-tower click / purchase network with a position-based model.

``P(click at slot k) = theta_k * sigmoid(<u, v_i> + b_i + c + beta . dyn)``, with ``theta``
estimated beforehand by PBM EM and held fixed (position bias kept apart from relevance), the user tower reading the
history (LSTM or mean over the frozen text table), user features and a user-id embedding;
``P(purchase | click)`` shares the towers. Trained in :mod:`simulators.fit.train`; exported to numpy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from encoders.sequence import LSTMUserEncoder
from encoders.towers import ItemTower
from simulators.fit.config import ResponseNetConfig


class ResponseNet(nn.Module):
    """Two-tower click and purchase model with learned position bias (see module doc).

    Args:
        item_table: ``(n_items, text_dim)`` frozen text embeddings.
        item_features: ``(n_items, F)`` side features (:func:`simulators.data.features.item_feature_matrix`).
        n_users: users in the user table (for the id embedding).
        n_user_features: width of the user feature matrix.
        position_bias: ``(n_slots,)`` fixed examination probabilities (``theta_1 = 1``).
        config: architecture options.
    """

    def __init__(
        self,
        item_table: np.ndarray,
        item_features: np.ndarray,
        n_users: int,
        n_user_features: int,
        position_bias: np.ndarray,
        config: ResponseNetConfig,
    ):
        super().__init__()
        dim = config.dim
        table = torch.as_tensor(np.asarray(item_table, dtype=np.float32))
        n_items = table.shape[0]
        side = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
        # The item tower's layers are made here, interleaved with the biases, in the order that
        # fixes this network's random initialisation (so a seed refits the same simulator).
        side_layer = nn.Linear(side.shape[1], dim)
        self.side_bias = nn.Linear(side.shape[1], 2)  # click, purchase
        nn.init.zeros_(self.side_bias.weight)
        text_layer = nn.Linear(table.shape[1], dim)
        ids = nn.Embedding(n_items, dim)
        self.item_bias = nn.Embedding(n_items, 2)  # click, purchase
        nn.init.normal_(ids.weight, std=0.01)
        nn.init.zeros_(self.item_bias.weight)
        self.item_tower = ItemTower(text_layer, side_layer, ids, table, side)
        self.user_id = nn.Embedding(n_users, dim)
        nn.init.normal_(self.user_id.weight, std=0.01)
        self.history_encoder = config.history_encoder
        self.history_lstm = (
            LSTMUserEncoder(table, projection_dim=dim, hidden_dim=dim)
            if config.history_encoder == "lstm"
            else None
        )
        self.user_mlp = nn.Sequential(
            nn.Linear(2 * dim + n_user_features, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, 2 * dim)
        )
        self.purchase_item = nn.Linear(dim, dim)
        self.offset = nn.Parameter(torch.tensor([-2.0, -1.0]))
        self.dynamics_coef = nn.Parameter(torch.zeros(2))  # views, clicks of the topic earlier in session
        self.register_buffer("theta", torch.as_tensor(np.asarray(position_bias, dtype=np.float32)))
        self.theta: torch.Tensor
        self.dropout = nn.Dropout(config.dropout)

    def item_vectors(self) -> torch.Tensor:
        """``(n_items, dim)``."""
        return self.item_tower.catalog()

    def item_biases(self) -> torch.Tensor:
        """``(n_items, 2)`` click and purchase logit offsets: per item id plus from side features."""
        return self.item_bias.weight + self.side_bias(self.item_tower.item_features)

    def user_vectors(
        self, users: torch.Tensor, history: torch.Tensor, user_features: torch.Tensor
    ) -> torch.Tensor:
        """``(B, 2 * dim)``: click half then purchase half."""
        mask = history >= 0
        if self.history_lstm is not None:
            pooled = self.history_lstm(history, mask)
        else:
            vectors = self.item_tower.text_vectors()[history.clamp(min=0)]
            weights = mask.unsqueeze(-1).float()
            pooled = (vectors * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        user_id = self.dropout(self.user_id(users))
        return self.user_mlp(torch.cat([user_id + pooled, pooled, user_features], dim=1))

    def static_logits(
        self, user_vec: torch.Tensor, items: torch.Tensor, item_vec: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Click and purchase logits before dynamics: ``items (B, K)`` -> ``(B, K)`` x2."""
        dim = item_vec.shape[1]
        v = item_vec[items.clamp(min=0)]  # (B, K, dim)
        bias = self.item_biases()[items.clamp(min=0)]
        click = (v * user_vec[:, None, :dim]).sum(-1) + bias[..., 0] + self.offset[0]
        purchase = (self.purchase_item(v) * user_vec[:, None, dim:]).sum(-1) + bias[..., 1] + self.offset[1]
        return click, purchase

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean negative log-likelihood of clicks (all shown slots) and purchases (clicked ones)."""
        user_vec = self.user_vectors(batch["user"], batch["history"], batch["user_features"])
        click_logit, purchase_logit = self.static_logits(user_vec, batch["items"], self.item_vectors())
        click_logit = (
            click_logit + self.dynamics_coef[0] * batch["views"] + self.dynamics_coef[1] * batch["clicked"]
        )
        shown = batch["items"] >= 0
        theta = self.theta[: batch["items"].shape[1]]
        p = (theta * torch.sigmoid(click_logit)).clamp(1e-6, 1 - 1e-6)
        y = batch["click"].float()
        click_nll = -(y * torch.log(p) + (1 - y) * torch.log1p(-p))[shown].mean()
        clicked = shown & (batch["click"] > 0)
        if bool(clicked.any()):
            buy_nll = F.binary_cross_entropy_with_logits(
                purchase_logit[clicked], batch["purchase"][clicked].float()
            )
        else:
            buy_nll = torch.zeros((), device=p.device)
        return click_nll + 0.5 * buy_nll
