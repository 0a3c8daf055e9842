"""agents.config: TrainConfig's validation, its nested EnvConfig and its JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.training.config import DEFAULT_FAIRNESS_LAMBDA, TrainConfig, parse_train_config
from envs.config import EnvConfig
from simulators.core.errors import ConfigError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "sac"}, "unknown algorithm"),
        ({"algorithm": "ppo", "env": "nope-v0"}, "unknown env"),
        ({"algorithm": "ppo", "timesteps": -5}, "timesteps must be >= 1"),
        ({"algorithm": "dqn", "env_options": {"action_mode": "scores"}}, "dqn needs action_mode 'discrete'"),
        ({"algorithm": "ppo", "env_options": {"action_mode": "discrete"}}, "not 'discrete'"),
        ({"algorithm": "ppo", "warm_start": "magic"}, "warm start"),
        ({"algorithm": "ppo", "env_options": {"fairness_lambda": float("nan")}}, "fairness_lambda must be"),
    ],
)
def test_train_config_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        env = options.pop("env_options", None)
        TrainConfig(**options, env_options=None if env is None else EnvConfig(**env))


def test_train_config_nests_the_env_options_and_round_trips() -> None:
    """One source of env options: the nested EnvConfig, with the algorithm's default action mode."""
    assert TrainConfig("dqn").options.action_mode == "discrete"
    assert TrainConfig("ppo").options.action_mode == "weights"
    assert TrainConfig("ppo", env="movielens-v0").options.data == "movielens"
    assert (
        TrainConfig("ppo").options.fairness_lambda == DEFAULT_FAIRNESS_LAMBDA
    )  # the main job is fair by default
    assert parse_train_config(["ppo"])[0].options.fairness_lambda == DEFAULT_FAIRNESS_LAMBDA
    assert parse_train_config(["ppo", "--fairness-lambda", "0"])[0].options.fairness_lambda == 0.0
    own = parse_train_config(["ppo", "--data", "my_logs/"])[0]
    assert own.options.data == "my_logs/" and own.options.fairness_lambda == DEFAULT_FAIRNESS_LAMBDA
    config = TrainConfig("ppo", seed=3, env_options=EnvConfig(action_mode="weights", fairness_lambda=0.5))
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_json([1, 2])
