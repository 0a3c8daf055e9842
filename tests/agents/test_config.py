"""agents.config: TrainConfig's validation, its nested EnvConfig and its JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.evaluation.fairness_scale import FAIRNESS_PRICE
from agents.training.config import TrainConfig, parse_train_config
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
        TrainConfig("ppo").fairness_price == FAIRNESS_PRICE
    )  # the main job is fair by default, priced per world
    assert parse_train_config(["ppo"])[0].fairness_price == FAIRNESS_PRICE
    fixed = parse_train_config(["ppo", "--fairness-lambda", "0"])[0]
    assert fixed.options.fairness_lambda == 0.0 and fixed.fairness_price is None  # a named weight stands
    assert TrainConfig("ppo", env_options={"fairness_lambda": 2.0}).fairness_price is None
    assert parse_train_config(["ppo", "--fairness-price", "1.5"])[0].fairness_price == 1.5
    with pytest.raises(ConfigError, match="pass one"):
        parse_train_config(["ppo", "--fairness-price", "1.5", "--fairness-lambda", "2"])
    with pytest.raises(ConfigError, match="fairness-price must be"):
        TrainConfig("ppo", fairness_price=-1.0)
    own = parse_train_config(["ppo", "--data", "my_logs/"])[0]
    assert own.options.data == "my_logs/" and own.fairness_price == FAIRNESS_PRICE
    config = TrainConfig("ppo", seed=3, env_options=EnvConfig(action_mode="weights", fairness_lambda=0.5))
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_json([1, 2])


def test_the_python_api_and_the_cli_default_to_the_same_env_options() -> None:
    from agents.training.config import TrainConfig, parse_train_config

    cli, _, _ = parse_train_config(["ppo"])
    assert TrainConfig("ppo").options == cli.options  # the main job's, both ways
    assert TrainConfig("ppo").fairness_price == cli.fairness_price == FAIRNESS_PRICE
    changed = TrainConfig("ppo", env_options={"max_steps": 30})
    assert changed.fairness_price == FAIRNESS_PRICE and changed.options.action_mode == "weights"
    assert changed.options.max_steps == 30
    cli_changed, _, _ = parse_train_config(["ppo", "--max-steps", "30"])
    assert cli_changed.options == changed.options and cli_changed.fairness_price == changed.fairness_price


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
        metrics = {"clicks_per_session": 26.4, "purchases_per_session": 4.0, "return_mean": return_mean,
                   "protected_exposure_share": 0.103, "protected_exposure_target": 0.429}  # fmt: skip
        fair = {"clicks_per_session": 31.9, "purchases_per_session": 0.0, "return_mean": 31.9}
        return {"policy": fair, "baselines": {"ctr": metrics, "tuned-weights": fair}}

    said = penalty_lines(report(-24.86))  # MovieLens at the shop's lambda: the penalty is 55.26
    assert len(said) == 1 and "costs ctr 55.26 of its 30.40 engagement" in said[0]
    assert "protected group 0.103 of the exposure against a target of 0.429" in said[0]
    assert penalty_lines(report(28.0)) == []  # a small share: nothing to say
    priced = {
        **report(28.0),
        "fairness_scale": {"price": 2.419, "engagement_per_step": 1.3792, "fairness_lambda": 3.3},
    }
    assert penalty_lines(priced) == [
        "fairness: fairness_lambda 3.3 = price 2.419 x 1.379 engagement per step of greedy CTR on these logs "
        "(--fairness-lambda fixes it instead)"
    ]


def test_hyperparameters_override_recgyms_and_are_checked() -> None:
    config = parse_train_config(["ppo", "--hyperparameters", "n_steps=16", "batch_size=1024", "n_epochs=2",
                                 "normalize_advantage=false", "learning_rate=1e-4"])[0]  # fmt: skip
    kwargs = config.algorithm_kwargs
    assert (kwargs["n_steps"], kwargs["batch_size"], kwargs["n_epochs"]) == (16, 1024, 2)
    assert kwargs["normalize_advantage"] is False and kwargs["learning_rate"] == 1e-4
    assert kwargs["gae_lambda"] == 0.9  # RecGym's own where not named
    again = TrainConfig.from_json(json.loads(json.dumps(config.to_json())))  # config.json's form: a list
    assert again.hyperparameters == config.hyperparameters and again.algorithm_kwargs == kwargs
    # the rollout check reads the overridden n_steps: 16 x 4 users = 64 steps
    TrainConfig("ppo", timesteps=64, n_envs=4, hyperparameters=("n_steps=16",))
    with pytest.raises(ConfigError, match="n_steps 16"):
        TrainConfig("ppo", timesteps=63, n_envs=4, hyperparameters=("n_steps=16",))
    for pairs, message in [
        (("n_steps",), "NAME=VALUE"),
        (("gamma=0.5",), "no argument 'gamma'"),
        (("buffer_size=10",), "no argument 'buffer_size'"),  # a DQN argument, not PPO's
        (("learning_starts=-",), "no argument 'learning_starts'"),
        (("n_steps=many",), "number or true/false"),
        (("learning_rate=nan",), "finite"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig("ppo", hyperparameters=pairs)
    assert TrainConfig("dqn", hyperparameters=("buffer_size=10",)).algorithm_kwargs["buffer_size"] == 10
    with pytest.raises(ConfigError, match="no argument 'optimize_memory_usage'"):  # n-step buffers refuse it
        TrainConfig("dqn", hyperparameters=("optimize_memory_usage=true",))
