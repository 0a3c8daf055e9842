"""Warm starts of a new agent from the CTR model: its towers by ``state_dict`` and an action
head that starts at the best static re-ranker (``static``: the agent begins where the static
baselines end and learns what adapting adds) or at the greedy-pCTR ranking (``ctr``),
optionally followed by behaviour cloning of the CTR baseline on the states it visits (``bc``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.baselines import StaticReranker, make_baseline
from agents.config import TrainConfig
from agents.networks import load_ctr_towers, start_at_greedy_ctr
from agents.tuning import TuningBudget, load_or_tune
from encoders.ctr.train import load_or_train_ctr
from envs.config import FEATURES, STRATEGIES, WEIGHTS
from envs.vector import RankingVectorEnv
from envs.world import RankingWorld
from simulators.datasets import load_logs


def warm_start(model: BaseAlgorithm, config: TrainConfig, world: RankingWorld) -> dict[str, Any]:
    """Apply ``config.warm_start``; return what was done (for ``config.json``)."""
    if config.warm_start == "none":
        return {"warm_start": "none"}
    ctr = world.ctr
    if ctr is None:
        ctr = load_or_train_ctr(load_logs(config.options.data), embeddings=world.item_table)
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
        start_at_static(policy, config.options.action_mode, reranker)
        done["start_action"] = {"reranker": name, **reranker.knobs}
        return done
    start_at_greedy_ctr(policy, config.options.action_mode)
    if config.warm_start == "bc":
        done["bc_loss"] = behaviour_clone(model, config)
    return done


def start_at_static(policy: Any, action_mode: str, reranker: StaticReranker) -> None:
    """Set the action head so the deterministic policy plays ``reranker``'s action whatever the
    state (the head's input weights at 0): ``weights``: mean = the tuned weights; ``discrete``:
    Q-values prefer the tuned strategy by a margin of 1. Training then learns state-dependent
    departures from it."""
    with torch.no_grad():
        if action_mode == "weights":
            head = policy.action_net
            head.weight.zero_()
            head.bias.copy_(torch.as_tensor(reranker.weights, dtype=head.bias.dtype))
        else:
            head = policy.q_net.q_net[-1]
            head.weight.zero_()
            head.bias.zero_()
            head.bias[reranker.strategy] = 1.0
            policy.q_net_target.load_state_dict(policy.q_net.state_dict())


def behaviour_clone(
    model: BaseAlgorithm, config: TrainConfig, steps: int = 300, states: int = 4_096
) -> list[float]:
    """Pre-train the policy head toward the static CTR ranking on states the CTR baseline visits:
    the mean action (PPO/A2C: MSE to the CTR action) or the Q-values (DQN: cross-entropy toward
    ``greedy_ctr``). Returns the loss at the start and the end."""
    baseline = make_baseline("ctr")
    venv = RankingVectorEnv(num_envs=64, **config.env_kwargs(action_mode="scores"))
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
        target = torch.zeros((n, len(WEIGHTS)), device=policy.device)
        target[:, FEATURES.index("pctr")] = 1.0
        target[:, WEIGHTS.index("diversify")] = 0.0
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
