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


def test_the_python_api_and_the_cli_default_to_the_same_env_options() -> None:
    from agents.training.config import TrainConfig, parse_train_config

    cli, _, _ = parse_train_config(["ppo"])
    assert TrainConfig("ppo").options == cli.options  # the main job's, both ways
    changed = TrainConfig("ppo", env_options={"max_steps": 30})
    assert (
        changed.options.fairness_lambda == DEFAULT_FAIRNESS_LAMBDA
        and changed.options.action_mode == "weights"
    )
    assert changed.options.max_steps == 30
    cli_changed, _, _ = parse_train_config(["ppo", "--max-steps", "30"])
    assert cli_changed.options == changed.options


def test_a_gain_reads_right_against_a_negative_baseline() -> None:
    from agents.evaluation.report import gain_line

    negative = {"return_mean": -24.86}
    line = gain_line("trained vs ctr", {"mean": 58.08, "ci95": [50.0, 66.0], "n": 500}, negative)
    assert "+58.08 [+50.00, +66.00] per session" in line and "of its return" not in line and "above 0" in line
    positive = gain_line("trained vs ctr", {"mean": 3.4, "ci95": [1.0, 5.8], "n": 500}, {"return_mean": 34.0})
    assert "+10.0% of its return" in positive


def test_the_table_says_when_the_fairness_penalty_dominates_the_reward() -> None:
    from agents.evaluation.report import penalty_lines

    def report(return_mean: float) -> dict[str, Any]:
        metrics = {"clicks_per_session": 26.4, "purchases_per_session": 4.0, "return_mean": return_mean}
        return {"baselines": {"ctr": metrics}}

    said = penalty_lines(report(-24.86), "ctr")  # MovieLens at the shop's lambda: the penalty is 55.26
    assert len(said) == 1 and "costs ctr 55.26 of its 30.40 engagement" in said[0]
    assert penalty_lines(report(28.0), "ctr") == []  # the shop: a small share
