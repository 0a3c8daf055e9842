"""The CTR model's frozen towers as dense state for the environments' ``embedding``
observation: one user vector per history, one vector per catalog item."""

from __future__ import annotations

import numpy as np
import torch

from encoders.ctr.train import TrainedCTR


class CTREmbedder:
    """Dense state from the CTR model's frozen towers: the user vector (LSTM over the BERT
    item table + user features) and every catalog item's vector (projected BERT + id)."""

    def __init__(self, trained: TrainedCTR):
        self.model = trained.model.eval()
        self.device = next(self.model.parameters()).device
        self.user_features = trained.user_features
        with torch.no_grad():
            catalog = torch.arange(self.model.item_tower.n_items, device=self.device)
            self.item_vectors = self.model.item_vectors(catalog).cpu().numpy().astype(np.float32)
        self.dim = self.item_vectors.shape[1]

    def users(self, history: np.ndarray, users: np.ndarray) -> np.ndarray:
        """``(B, dim)`` float32 user vectors for ``history (B, H)`` (-1 pad) of ``users (B,)``."""
        with torch.no_grad():
            h = torch.from_numpy(history).to(self.device)
            f = torch.from_numpy(self.user_features[users]).to(self.device)
            return self.model.user_vectors(h, f).cpu().numpy().astype(np.float32)
