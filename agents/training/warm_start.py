"""Warm starts of a new agent from the CTR model: its towers by ``state_dict`` and an action
head that starts at the best static re-ranker (``static``: the agent begins where the static
baselines end and learns what adapting adds) or at the greedy-pCTR ranking (``ctr``),
optionally followed by behaviour cloning of the CTR baseline on the states it visits (``bc``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.evaluation.tuning import TuningBudget, load_or_tune
from agents.policies.baselines import make_baseline
from agents.training.config import TrainConfig
from agents.training.networks import (
    GREEDY_CTR_WEIGHTS,
    load_ctr_towers,
    start_at_action,
    start_at_greedy_ctr,
)
from encoders.ctr.train import load_or_train_ctr
from envs.config import STRATEGIES
from envs.factory import make_vector_env
from envs.world import RankingWorld


def warm_start(model: BaseAlgorithm, config: TrainConfig, world: RankingWorld) -> dict[str, Any]:
    """Apply ``config.warm_start``; return what was done (for ``config.json``)."""
    if config.warm_start == "none":
        return {"warm_start": "none"}
    ctr = world.ctr
    if ctr is None:  # popularity candidates: the towers still start from the logs' CTR model
        ctr = load_or_train_ctr(world.logs, embeddings=world.item_table)
    policy: Any = model.policy
    loaded: list[str] = []
    if (
        config.options.obs_mode == "ids"
    ):  # (in ``embedding`` mode the features already are the CTR model's vectors)
        extractors = (
            [policy.q_net.features_extractor, policy.q_net_target.features_extractor]
            if config.algorithm == "dqn"
            else [policy.features_extractor]
        )
        loaded = [name for extractor in extractors for name in load_ctr_towers(extractor, ctr.model)]
    done: dict[str, Any] = {"warm_start": config.warm_start, "ctr_modules_loaded": loaded}
    if config.warm_start == "static":
        name = "tuned-weights" if config.options.action_mode == "weights" else "best-fixed"
        budget = TuningBudget(sessions=config.tuning_sessions, cem_generations=config.tuning_generations)
        reranker = load_or_tune(name, config.options, budget)
        action = reranker.weights if config.options.action_mode == "weights" else reranker.strategy
        start_at_action(policy, config.options.action_mode, action)
        done["start_action"] = {"reranker": name, **reranker.knobs}
        return done
    start_at_greedy_ctr(policy, config.options.action_mode)
    if config.warm_start == "bc":
        done["bc_loss"] = behaviour_clone(model, config)
    return done


def behaviour_clone(
    model: BaseAlgorithm, config: TrainConfig, steps: int = 300, states: int = 4_096
) -> list[float]:
    """Pre-train the policy head toward the static CTR ranking on states the CTR baseline visits:
    the mean action (PPO/A2C: MSE to the CTR action) or the Q-values (DQN: cross-entropy toward
    ``greedy_ctr``). Returns the loss at the start and the end."""
    baseline = make_baseline("ctr")
    venv = make_vector_env(replace(config.options, action_mode="scores"), 64)
    obs, _ = venv.reset(seed=config.seed + 20_000)
    rng = np.random.default_rng(config.seed)
    observed, ctr_actions = [], []
    for _ in range(states // 64):
        action = baseline.act(venv.core.observe_ids(), rng)  # the baseline reads ids in any obs_mode
        observed.append(obs.copy() if isinstance(obs, np.ndarray) else {k: v.copy() for k, v in obs.items()})
        ctr_actions.append(action)
        obs, *_ = venv.step(action)
    data: Any = (
        np.concatenate(observed)  # type: ignore[arg-type]
        if isinstance(observed[0], np.ndarray)
        else {k: np.concatenate([b[k] for b in observed]) for k in observed[0]}
    )
    n = len(ctr_actions) * 64
    mode = config.options.action_mode
    policy: Any = model.policy
    tensors, _ = policy.obs_to_tensor(data)
    if mode == "scores":
        target = torch.as_tensor(np.concatenate(ctr_actions), device=policy.device)
    elif mode == "weights":
        target = torch.tensor(GREEDY_CTR_WEIGHTS, device=policy.device).repeat(n, 1)
    else:
        target = torch.full((n,), STRATEGIES.index("greedy_ctr"), device=policy.device)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, len(target), (256,), generator=generator).to(policy.device)
        batch = (
            tensors[index] if isinstance(tensors, torch.Tensor) else {k: v[index] for k, v in tensors.items()}
        )
        if mode == "discrete":
            loss = torch.nn.functional.cross_entropy(policy.q_net(batch), target[index])
        else:
            mean = policy.get_distribution(batch).distribution.mean
            loss = torch.nn.functional.mse_loss(mean, target[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    if mode == "discrete":
        policy.q_net_target.load_state_dict(policy.q_net.state_dict())
    return [round(losses[0], 5), round(losses[-1], 5)]
