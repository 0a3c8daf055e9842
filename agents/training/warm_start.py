"""Warm starts of a new agent from the CTR model: its towers by ``state_dict`` and an action
head that starts at the best static re-ranker (``static``: the agent begins where the static
baselines end and learns what adapting adds) or at the greedy-pCTR ranking (``ctr``),
optionally followed by behaviour cloning of the CTR baseline on the states it visits (``bc``), or
of a distilled planner's choices (``teacher``: :mod:`agents.training.distill`; expert iteration's
apprentice starts at the expert's distilled policy, then learns by RL)."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.evaluation.load import load_distilled_run
from agents.evaluation.paired import paired_difference
from agents.evaluation.sessions import run_sessions
from agents.evaluation.tuning import load_or_tune
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import make_baseline
from agents.policies.distilled import DistilledPlanner
from agents.training.config import TrainConfig
from agents.training.networks import (
    GREEDY_CTR_WEIGHTS,
    load_ctr_towers,
    start_at_action,
    start_at_greedy_ctr,
)
from encoders.ctr.train import load_or_train_ctr
from envs.config import DISCRETE_MODES, STRATEGIES
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
    if config.warm_start in ("static", "teacher"):
        mode = config.options.action_mode
        budget = config.tuning_budget
        if mode == "menu":  # its first weight vector (agents.training.menu's: tuned-weights)
            start_at_action(policy, mode, 0)
            done["start_action"] = {"menu_entry": 0}
        else:
            name = "tuned-weights" if mode == "weights" else "best-fixed"
            reranker = load_or_tune(name, config.options, budget)
            start_at_action(policy, mode, reranker.weights if mode == "weights" else reranker.strategy)
            done["start_action"] = {"reranker": name, **reranker.knobs}
        if config.warm_start == "teacher":
            done["teacher_clone"] = clone_teacher(
                model, config, load_distilled_run(config.teacher, config.options, budget)
            )
        return done
    start_at_greedy_ctr(policy, config.options.action_mode)
    if config.warm_start == "bc":
        done["bc_loss"] = behaviour_clone(model, config)["loss"]
    return done


def clone_teacher(model: BaseAlgorithm, config: TrainConfig, teacher: DistilledPlanner) -> dict[str, Any]:
    """Clone ``teacher`` into the head (:func:`behaviour_clone`), then keep the clone only if it
    earns at least the static start on ``curve_episodes`` sessions no evaluation uses (paired):
    a clone can lose what its teacher earns (a Gaussian head's mean between two weight vectors
    the teacher switches among is neither), and a run must not begin below the static start."""
    policy: Any = model.policy
    static = {name: value.clone() for name, value in policy.state_dict().items()}
    agent = TrainedAgent(
        model, config.algorithm, config.env, asdict(config.options)
    )  # the model as it stands
    seed, episodes = config.seed + CLONE_CHECK_SEED, config.curve_episodes
    before = run_sessions(agent, config.options, episodes, seed, progress=False)
    cloned = behaviour_clone(model, config, teacher, steps=config.teacher_steps, states=config.teacher_states)
    after = run_sessions(agent, config.options, episodes, seed, progress=False)
    difference = paired_difference(after, before)
    kept = bool(difference.mean >= 0.0)
    if not kept:
        policy.load_state_dict(static)
    return {**cloned,
            "check": {"sessions": episodes, "seed": seed, "clone_minus_static": difference.as_json(), "kept": kept}}  # fmt: skip


CLONE_CHECK_SEED = 40_000
"""The clone is checked against the static start on the sessions of seed ``seed + CLONE_CHECK_SEED``."""


def behaviour_clone(
    model: BaseAlgorithm, config: TrainConfig, teacher: DistilledPlanner | None = None, steps: int = 300,
    states: int = 4_096,
) -> dict[str, Any]:  # fmt: skip
    """Pre-train the policy head toward a teacher on the states the teacher visits: the static CTR
    ranking (``teacher`` None: PPO/A2C's mean action by MSE to its action, DQN's Q-values by
    cross-entropy toward ``greedy_ctr``) or a distilled planner (PPO/A2C in ``weights``: MSE to
    the action of the candidate it chose; in ``menu``: cross-entropy of the logits toward its
    choice; DQN: MSE of each action's Q-value to the teacher's predicted gain of it,
    :func:`_teacher_targets`; PPO/A2C's critic, beside, MSE to the teacher's discounted returns
    to go on the same states, scaled by their variance, so that the first advantages after the
    clone are not a fresh critic's noise). Measured on 16,384 states, where this clone agreed with its teacher
    on 0.66 of held-out states: Q-values on the scale of returns were learnt worse (the teacher's
    session's discounted return to go plus the gains: 0.42; the gains plus the mean return to go
    by step: 0.57), and a clone by cross-entropy toward the teacher's choices ended 0.3 per session
    below ``best-fixed`` in the fitted shop, this one 0.6 above, on the same 500 sessions). Returns
    the loss at the start and the end and, with a teacher, how close the agent's deterministic
    action is to the teacher's on the last eighth of the states (held out) before and after."""
    ctr = make_baseline("ctr")
    mode = config.options.action_mode
    venv = make_vector_env(replace(config.options, action_mode="scores"), 64)
    if teacher is not None:
        teacher.bind(venv.core)
    obs, _ = venv.reset(seed=config.seed + 20_000)
    rng = np.random.default_rng(config.seed)
    observed, targets, rewards, ended = [], [], [], []
    for _ in range(states // 64):
        observed.append(obs.copy() if isinstance(obs, np.ndarray) else {k: v.copy() for k, v in obs.items()})
        if teacher is None:
            action = ctr.act(venv.core.observe_ids(), rng)  # the baseline reads ids in any obs_mode
            targets.append(action if mode == "scores" else _greedy_ctr_targets(mode, len(action)))
        else:
            action = teacher.act(venv.core.observe_ids(), rng)
            targets.append(_teacher_targets(teacher, mode, config.algorithm))
        obs, reward, terminated, truncated, _ = venv.step(action)
        rewards.append(reward)
        ended.append(terminated | truncated)
    data: Any = (
        np.concatenate(observed)  # type: ignore[arg-type]
        if isinstance(observed[0], np.ndarray)
        else {k: np.concatenate([b[k] for b in observed]) for k in observed[0]}
    )
    policy: Any = model.policy
    tensors, _ = policy.obs_to_tensor(data)
    target = torch.as_tensor(np.concatenate(targets), device=policy.device)
    target = target.long() if target.dtype == torch.int64 else target.float()
    held = len(target) // 8 if teacher is not None else 0  # the last states, to say how well it learnt
    fit = len(target) - held
    before = _agreement(policy, tensors, target, fit, mode) if held else None
    critic = teacher is not None and hasattr(policy, "predict_values")  # an actor-critic's critic
    if critic:  # where whole episodes lie in the states (both parts)
        returns, complete = _returns_to_go(np.stack(rewards), np.stack(ended), model.gamma)  # type: ignore[attr-defined]
        critic = (
            complete.ravel()[:fit].sum() >= 2 and complete.ravel()[fit:].sum() >= 2
            and np.var(returns.ravel()[complete.ravel()]) > 0
        )  # fmt: skip
    if critic:
        value_target = torch.as_tensor(returns.ravel(), dtype=torch.float32, device=policy.device)
        value_mask = torch.as_tensor(complete.ravel(), device=policy.device)
        value_scale = float(value_target[value_mask].var())
        value_before = _explained(policy, tensors, value_target, value_mask, fit)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    for _ in range(steps):
        index = torch.randint(0, fit, (256,), generator=generator).to(policy.device)
        batch = _rows(tensors, index)
        loss = _clone_loss(policy, batch, target[index], mode)
        if critic:  # the critic learns the teacher's values, so PPO's first advantages are not noise
            values = policy.predict_values(batch).squeeze(-1)
            error = (values - value_target[index]) ** 2 * value_mask[index]
            loss = loss + error.sum() / max(int(value_mask[index].sum()), 1) / value_scale
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    if hasattr(policy, "q_net_target"):
        policy.q_net_target.load_state_dict(policy.q_net.state_dict())
    done: dict[str, Any] = {"loss": [round(losses[0], 5), round(losses[-1], 5)]}
    if held:
        done["held_out"] = {
            "states": held, "measure": "agreement" if mode in DISCRETE_MODES else "minus_mse",
            "before": before, "after": _agreement(policy, tensors, target, fit, mode),
            "teacher_deviation_rate": teacher.report()["deviation_rate"] if teacher else None,
        }  # fmt: skip
    if critic:
        done["held_out"]["value_explained"] = {
            "before": value_before, "after": _explained(policy, tensors, value_target, value_mask, fit),
        }  # fmt: skip
    return done


def _returns_to_go(rewards: np.ndarray, ended: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T, B)`` each state's discounted return to its episode's end under the policy that played
    ``rewards (T, B)`` (``ended (T, B)``: the episode ended with that step), and whether that end
    lies within the ``T`` steps (the last episodes' returns are cut short: not targets). The
    session cap ends a return as leaving does (nothing is earned after it), where SB3's PPO adds
    ``gamma * V(final_obs)`` at a ``TimeLimit.truncated`` step: the two differ near the cap."""
    returns, complete = np.zeros(rewards.shape), np.zeros(rewards.shape, dtype=np.bool_)
    following, seen = np.zeros(rewards.shape[1]), np.zeros(rewards.shape[1], dtype=np.bool_)
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following * ~ended[t]
        seen = ended[t] | seen
        returns[t], complete[t] = following, seen
    return returns, complete


def _explained(policy: Any, tensors: Any, target: torch.Tensor, mask: torch.Tensor, start: int) -> float:
    """The share of the returns' variance the critic explains on the rows from ``start`` on
    (``1 - MSE / Var``: a biased critic explains less, where SB3's ``explained_variance`` would
    ignore a constant offset)."""
    index = torch.arange(start, len(target), device=policy.device)[mask[start:]]
    with torch.no_grad():
        values = policy.predict_values(_rows(tensors, index)).squeeze(-1)
    wanted = target[index]
    variance = float(wanted.var())
    return round(1.0 - float(((values - wanted) ** 2).mean()) / variance, 4) if variance > 0 else 0.0


def _agreement(policy: Any, tensors: Any, target: torch.Tensor, start: int, mode: str) -> float:
    """How close the policy's deterministic action is to ``target`` on the rows from ``start`` on:
    the share of equal actions (``discrete``, ``menu``) or minus the mean squared error."""
    index = torch.arange(start, len(target), device=policy.device)
    with torch.no_grad():
        batch = _rows(tensors, index)
        if mode in DISCRETE_MODES:
            wanted = target[index] if target.dtype == torch.int64 else target[index].argmax(dim=1)
            return round(float((_preferences(policy, batch).argmax(dim=1) == wanted).float().mean()), 4)
        mean = policy.get_distribution(batch).distribution.mean
        return round(-float(torch.nn.functional.mse_loss(mean, target[index])), 5)


def _rows(tensors: Any, index: torch.Tensor) -> Any:
    return tensors[index] if isinstance(tensors, torch.Tensor) else {k: v[index] for k, v in tensors.items()}


def _teacher_targets(teacher: DistilledPlanner, mode: str, algorithm: str) -> np.ndarray:
    """The teacher's last decision as the agent's targets: for DQN each action's predicted gain
    over the base's ``(B, A)`` (the base's own: the threshold, or its candidate's gain if
    higher), whose argmax is the teacher's choice, so the Q-values learn how much each choice
    matters, not only which wins (``discrete``: per strategy; ``menu``: per candidate, which is
    the menu's entry); for PPO and A2C in ``menu`` mode the candidate it chose (the logits learn
    it by cross-entropy); otherwise the chosen candidate's action."""
    assert teacher.last_choice is not None and teacher.last_gains is not None
    if mode == "menu" and algorithm != "dqn":
        return teacher.last_choice.astype(np.int64)
    if mode == "menu":
        gains = teacher.last_gains.astype(np.float32).copy()
        gains[:, 0] = np.maximum(gains[:, 0], teacher.threshold)
        return gains
    if mode != "discrete":
        return np.stack([teacher.last_actions[c][1][b] for b, c in enumerate(teacher.last_choice)])
    base = teacher.last_actions[0][1].astype(np.int64)  # the base's strategy (best-fixed)
    strategies = np.stack([action for _, action in teacher.last_actions[1:]], axis=1)  # (B, S)
    gains = np.full((len(base), len(STRATEGIES)), -np.inf)
    rows = np.arange(len(base))[:, None]
    np.maximum.at(gains, (np.broadcast_to(rows, strategies.shape), strategies), teacher.last_gains[:, 1:])
    gains[np.arange(len(base)), base] = np.maximum(gains[np.arange(len(base)), base], teacher.threshold)
    return gains.astype(np.float32)


def _greedy_ctr_targets(mode: str, n: int) -> np.ndarray:
    if mode == "weights":
        return np.tile(np.asarray(GREEDY_CTR_WEIGHTS, dtype=np.float32), (n, 1))
    return np.full(n, STRATEGIES.index("greedy_ctr"), dtype=np.int64)


def _preferences(policy: Any, batch: Any) -> torch.Tensor:
    """``(B, A)`` a discrete-action policy's Q-values (DQN) or logits (PPO, A2C)."""
    if hasattr(policy, "q_net"):
        return policy.q_net(batch)
    return policy.get_distribution(batch).distribution.logits


def _clone_loss(policy: Any, batch: Any, target: torch.Tensor, mode: str) -> torch.Tensor:
    if mode in DISCRETE_MODES and target.dtype == torch.int64:  # an action to prefer
        return torch.nn.functional.cross_entropy(_preferences(policy, batch), target)
    if mode in DISCRETE_MODES:  # each action's value
        return torch.nn.functional.mse_loss(_preferences(policy, batch), target)
    mean = policy.get_distribution(batch).distribution.mean
    return torch.nn.functional.mse_loss(mean, target)
