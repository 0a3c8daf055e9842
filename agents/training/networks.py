"""The policy network of RecGym's agents: an SB3 features extractor and a candidate scorer.

``RankingExtractor`` reads the env's ``ids`` observation. The user tower is the CTR model's:
an LSTM over the frozen BERT item table plus a projection of the user features. Each candidate
is encoded by the same item tower and scored by one MLP shared across candidates, so the scores
are permutation-equivariant (reorder the candidates and the scores follow). The extractor's
output is ``[scores (N), state (hidden)]``: the ``scores`` action mode reads the first N
columns as the action mean (:class:`RankingPolicy`), the ``weights`` mode and DQN's Q-values
read the whole vector through a small head.

Frozen towers (``frozen_towers=True``): the towers keep the weights the warm start gave them and
run without gradients; the catalog's item vectors and the history encoder's projected catalog
are computed once and looked up (recomputed whenever a tower's weights are loaded anew), so a
minibatch pays for the LSTM's forward pass alone, not for projecting every candidate and history
item forward and backward.

Warm start (:func:`load_ctr_towers`, :func:`start_at_greedy_ctr`): the CTR model's towers load
through ``state_dict`` and the action head starts at the greedy-pCTR ranking, so the untrained
policy *is* the static CTR baseline (deterministically) instead of a random ranker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from encoders.ctr.model import CTRModel
from encoders.towers import ItemTower, UserTower, copy_towers
from envs.config import DISCRETE_MODES, FEATURE_STD_FLOOR, FEATURES, STRATEGIES, WEIGHTS
from simulators.core.errors import ConfigError


def standardise_candidates(features: torch.Tensor) -> torch.Tensor:
    """``(B, N, F)`` z-scored across candidates, the spread floored at ``FEATURE_STD_FLOOR`` (the
    env's ``weights`` mode does the same)."""
    centred = features - features.mean(dim=1, keepdim=True)
    return centred / centred.std(dim=1, keepdim=True, unbiased=False).clamp(min=FEATURE_STD_FLOOR)


class RankingExtractor(BaseFeaturesExtractor):
    """User tower + item tower + shared candidate scorer over the ``ids`` observation.

    Args:
        observation_space: the env's Dict space (``obs_mode="ids"``).
        item_table: ``(n_items, text_dim)`` frozen BERT embeddings of the catalog.
        dim: size of user and item vectors (the CTR model's ``dim`` for a warm start).
        hidden: width of the candidate scorer and of the pooled state.
        frozen_towers: the user and item towers are not trained (their tables cached, above).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        item_table: np.ndarray,
        dim: int = 32,
        hidden: int = 64,
        frozen_towers: bool = False,
    ):
        boxes: dict[str, Any] = dict(observation_space.spaces)
        n_candidates, n_features = boxes["candidate_features"].shape
        super().__init__(observation_space, features_dim=n_candidates + hidden)
        table = torch.as_tensor(np.asarray(item_table, dtype=np.float32))
        n_items = int(boxes["candidates"].high.max()) + 1
        if table.ndim != 2 or table.shape[0] < n_items:
            raise ConfigError(
                f"item_table {tuple(table.shape)} does not cover the env's catalog ({n_items} items)"
            )
        n_user = boxes["user_features"].shape[0]
        n_context = boxes["context"].shape[0]
        self.n_candidates = n_candidates
        self.item_tower = ItemTower.build(table, None, dim, id_embedding=True)
        self.user_tower = UserTower(table, n_user, dim)
        width = 3 * dim + 2 * n_features + n_context
        self.candidate_mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.score_head = nn.Linear(hidden, 1)
        self.pctr_skip = nn.Parameter(torch.zeros(()))
        """Weight of a direct path from the standardised pCTR to the score (the warm start's 0.5)."""
        self.state_head = nn.Sequential(nn.Linear(hidden + dim + n_context, hidden), nn.ReLU())
        self.frozen_towers = frozen_towers
        if frozen_towers:
            self.item_tower.requires_grad_(False)
            self.user_tower.requires_grad_(False)
        self._tables: tuple[tuple[int, ...], torch.Tensor, torch.Tensor] | None = None

    def frozen_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen towers' catalog tables: every item's vector ``(n_items, dim)`` and the history
        encoder's projected catalog. Kept until a tower weight changes (a load writes in place,
        which bumps the tensor's version counter; a move to another device changes its storage)."""
        weights = [*self.item_tower.parameters(), *self.user_tower.parameters()]
        key = tuple(v for w in weights for v in (w.data_ptr(), w._version))
        if self._tables is None or self._tables[0] != key:
            with torch.no_grad():
                items = self.item_tower.catalog()
                projected = self.user_tower.history.projected_table()
            self._tables = (key, items, projected)
        return self._tables[1], self._tables[2]

    def _towers(self, observations: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim)`` user vectors and ``(B, N, dim)`` candidate vectors."""
        history = observations["history"].long()
        mask = observations["history_mask"] > 0.5
        candidates = observations["candidates"].long().clamp(0, self.item_tower.n_items - 1)
        if not self.frozen_towers:
            user = self.user_tower(history, mask, observations["user_features"])
            return user, self.item_tower(candidates)
        items, projected = self.frozen_tables()
        with torch.no_grad():
            user = self.user_tower(history, mask, observations["user_features"], projected)
        return user, items[candidates]

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, N + hidden)``: candidate scores then the pooled state."""
        user, item = self._towers(observations)
        features = observations["candidate_features"]
        raw = torch.clamp(features, -10.0, 10.0)
        context = observations["context"]
        u = user[:, None, :].expand_as(item)
        n = item.shape[1]
        z = standardise_candidates(features)
        x = torch.cat([u, item, u * item, z, raw, context[:, None, :].expand(-1, n, -1)], dim=-1)
        hidden = self.candidate_mlp(x)
        scores = self.score_head(hidden).squeeze(-1) + self.pctr_skip * z[..., FEATURES.index("pctr")]
        state = self.state_head(torch.cat([hidden.mean(dim=1), user, context], dim=-1))
        return torch.cat([scores, state], dim=-1)


class CandidateScores(nn.Module):
    """The ``scores`` action mean: the extractor's per-candidate scores squashed into (-1, 1)."""

    def __init__(self, n_candidates: int):
        super().__init__()
        self.n_candidates = n_candidates

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` from ``(B, N + hidden)``."""
        return torch.tanh(latent[:, : self.n_candidates])


class RankingPolicy(ActorCriticPolicy):
    """Actor-critic over :class:`RankingExtractor`. With a ``scores`` action space of N
    candidates, the action mean is the shared scorer's output (permutation-equivariant); any
    other action space reads the whole extractor output through SB3's linear head."""

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        extractor = self.features_extractor
        if (
            isinstance(extractor, RankingExtractor)
            and isinstance(self.action_space, spaces.Box)
            and self.action_space.shape == (extractor.n_candidates,)
        ):
            self.action_net = CandidateScores(extractor.n_candidates)
            self.optimizer = self.optimizer_class(
                self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
            )  # type: ignore[call-arg]


def load_ctr_towers(extractor: RankingExtractor, ctr: CTRModel) -> list[str]:
    """Copy the CTR model's user tower and its item tower's text projection (and id embedding,
    when the CTR model has one) into ``extractor`` by ``state_dict``; return what was copied."""
    return copy_towers(ctr.item_tower, ctr.user_tower, extractor.item_tower, extractor.user_tower)


def start_at_action(policy: Any, action_mode: str, action: Sequence[float] | int) -> None:
    """Set the action head so the deterministic policy plays ``action`` whatever the state (the
    head's input weights at 0): ``weights``: the mean is the weight vector ``action``;
    ``discrete`` (and DQN's ``menu``): the Q-values prefer action ``action`` by a margin of 1;
    PPO's and A2C's ``menu``: the logits draw action ``action`` with probability
    :data:`MENU_START_PROBABILITY`, the others evenly. Training then learns state-dependent
    departures from it."""
    with torch.no_grad():
        if action_mode == "weights":
            head = policy.action_net
            head.weight.zero_()
            head.bias.copy_(torch.as_tensor(np.asarray(action, dtype=np.float32), dtype=head.bias.dtype))
        elif action_mode == "menu" and hasattr(policy, "action_net"):
            head = policy.action_net
            head.weight.zero_()
            head.bias.zero_()
            others = head.bias.shape[0] - 1
            if others:
                odds = MENU_START_PROBABILITY / (1.0 - MENU_START_PROBABILITY)
                head.bias[int(action)] = float(np.log(odds * others))  # type: ignore[arg-type]
        elif action_mode in DISCRETE_MODES:
            head = policy.q_net.q_net[-1]
            head.weight.zero_()
            head.bias.zero_()
            head.bias[int(action)] = 1.0  # type: ignore[arg-type]
            policy.q_net_target.load_state_dict(policy.q_net.state_dict())
        else:
            raise ConfigError(f"no constant-action start for action_mode {action_mode!r}")


MENU_START_PROBABILITY = 0.5
"""A ``menu`` PPO or A2C agent started at one weight vector draws it with this probability (its
deterministic play is that vector): the rest is its exploration of the others."""


GREEDY_CTR_WEIGHTS = tuple(1.0 if name == "pctr" else 0.0 for name in WEIGHTS)
"""The ``weights`` action that ranks by pCTR alone, the diversify switch off (> 0 switches it on)."""


def start_at_greedy_ctr(policy: Any, action_mode: str) -> None:
    """Set the action head so the deterministic policy ranks by pCTR (the static baseline):
    ``weights``: :data:`GREEDY_CTR_WEIGHTS`; ``discrete``: ``greedy_ctr``; ``scores``: the mean is
    ``tanh(0.5 * z(pCTR))`` (the shared scorer's head at 0, its pCTR skip at 0.5)."""
    if action_mode != "scores":
        start = GREEDY_CTR_WEIGHTS if action_mode == "weights" else STRATEGIES.index("greedy_ctr")
        start_at_action(policy, action_mode, start)
        return
    with torch.no_grad():
        extractor = policy.features_extractor
        extractor.score_head.weight.zero_()
        extractor.score_head.bias.zero_()
        extractor.pctr_skip.fill_(0.5)
