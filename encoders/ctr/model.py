"""The multi-task CTR network: item and user towers (:mod:`encoders.towers`), MMoE or a shared
bottom, one head per task.

Tasks: ``click`` always (MovieLens stores *like* there), ``purchase`` when logged (ESMM:
``P(purchase) = P(click) * P(purchase | click)`` over all impressions, Ma et al., SIGIR 2018),
``rating`` when logged (regression). Position enters training as an additive logit per task
and is fixed to the top slot when serving.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from encoders.ctr.config import CTRConfig
from encoders.towers import ItemTower, UserTower


class CTRModel(nn.Module):
    """Multi-task model over (user, item, position).

    Args:
        item_table: ``(n_items, text_dim)`` frozen BERT embeddings.
        item_features: ``(n_items, F)`` side features (:func:`simulators.data.features.item_feature_matrix`).
        n_user_features: width of the user feature matrix.
        n_positions: slots seen in the logs.
        tasks: the tasks, in head order.
        config: architecture options.
    """

    def __init__(
        self,
        item_table: np.ndarray,
        item_features: np.ndarray,
        n_user_features: int,
        n_positions: int,
        tasks: tuple[str, ...],
        config: CTRConfig,
    ):
        super().__init__()
        self.tasks = tasks
        dim, hidden = config.dim, config.hidden
        self.item_tower = ItemTower.build(item_table, item_features, dim, config.item_id_embedding)
        self.user_tower = UserTower(item_table, n_user_features, dim)
        width = 3 * dim
        self.architecture = config.architecture
        if config.architecture == "mmoe":
            self.experts = nn.ModuleList(
                nn.Sequential(nn.Linear(width, hidden), nn.ReLU()) for _ in range(config.experts)
            )
            self.gates = nn.ModuleList(nn.Linear(width, config.experts) for _ in tasks)
        else:
            self.bottom = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1)) for _ in tasks
        )
        self.position_logit = nn.Parameter(torch.zeros(len(tasks), max(n_positions, 1)))

    def user_vectors(self, history: torch.Tensor, user_features: torch.Tensor) -> torch.Tensor:
        """``(B, dim)`` from ``history (B, H)`` (-1 pad) and ``user_features (B, F)``."""
        return self.user_tower(history, history >= 0, user_features)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` for catalog rows ``items``."""
        return self.item_tower(items)

    def forward(
        self,
        user: torch.Tensor,
        items: torch.Tensor,
        positions: torch.Tensor | None = None,
        catalog: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Task logits ``(B, K, n_tasks)`` for ``user (B, dim)`` and ``items (B, K)``; without
        ``positions`` every item is scored at the top slot (serving). ``catalog``: the item
        tower's ``(n_items, dim)`` output computed once (``item_tower.catalog()``) for scoring
        many slates; without it the tower runs on the rows given (training)."""
        rows = items.clamp(min=0)
        item = self.item_vectors(rows) if catalog is None else catalog[rows]
        u = user[:, None, :].expand_as(item)
        x = torch.cat([u, item, u * item], dim=-1)
        if self.architecture == "mmoe":
            expert_out = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (B, K, E, hidden)
            mixed = [(torch.softmax(gate(x), dim=-1)[..., None] * expert_out).sum(-2) for gate in self.gates]
        else:
            shared = self.bottom(x)
            mixed = [shared for _ in self.tasks]
        logits = torch.cat([tower(h) for tower, h in zip(self.towers, mixed, strict=True)], dim=-1)
        position = torch.zeros_like(items) if positions is None else positions
        return logits + self.position_logit.T[position.clamp(min=0, max=self.position_logit.shape[1] - 1)]

    def probabilities(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task predictions: ``click`` = P(click), ``purchase`` = P(click) * P(purchase | click)
        (ESMM), ``purchase_given_click``, ``rating`` (a value)."""
        out: dict[str, torch.Tensor] = {}
        for index, task in enumerate(self.tasks):
            if task == "rating":
                out["rating"] = logits[..., index]
            else:
                out[task] = torch.sigmoid(logits[..., index])
        if "purchase" in out and "click" in out:  # ESMM; a purchase-only model predicts it directly
            out["purchase_given_click"] = out["purchase"]
            out["purchase"] = out["click"] * out["purchase_given_click"]
        return out

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over tasks of the mean loss on shown slots."""
        user = self.user_vectors(batch["history"], batch["user_features"])
        items = batch["items"]
        positions = torch.arange(items.shape[1], device=items.device).expand_as(items)
        predicted = self.probabilities(self(user, items, positions))
        shown = items >= 0
        total = torch.zeros((), device=items.device)
        for task, value in predicted.items():
            if task == "purchase_given_click":
                continue
            if task == "rating":
                rated = shown & ~torch.isnan(batch["rating"])
                if bool(rated.any()):
                    total = total + F.mse_loss(value[rated], batch["rating"][rated]) / 4.0
                continue
            p = value.clamp(1e-6, 1 - 1e-6)
            total = total + F.binary_cross_entropy(p[shown], batch[task][shown].float())
        return total
