"""agents.train: the network's contracts, a learning test with a known best policy, CLI smoke
runs of every algorithm, determinism, resume after a kill, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.networks import RankingExtractor, RankingPolicy
from agents.train import TrainConfig
from envs.config import FEATURES, EnvConfig
from envs.core import standardise
from simulators.core.errors import ConfigError
from tests.conftest import REPO, run_cli

N_ITEMS, N, H = 40, 8, 4
TINY = ["--timesteps", "512", "--n-envs", "4", "--eval-episodes", "16", "--eval-freq", "256"]


class HiddenSignalEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A one-step ranking bandit with the ``ids`` observation layout: reward 1 when the top
    item is the candidate with the highest ``similarity`` feature; ``pctr`` is pure noise.
    The best ``weights`` policy puts its weight on ``similarity`` (return 1); random ~1/N."""

    def __init__(self) -> None:
        feature_box = spaces.Box(-10, 10, (N, len(FEATURES)), np.float32)
        self.observation_space = spaces.Dict(
            {
                "history": spaces.Box(-1, N_ITEMS - 1, (H,), np.int64),
                "history_mask": spaces.Box(0, 1, (H,), np.int8),
                "candidates": spaces.Box(0, N_ITEMS - 1, (N,), np.int64),
                "candidate_features": feature_box,
                "user_features": spaces.Box(-10, 10, (2,), np.float32),
                "context": spaces.Box(-1, 5, (4,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1, 1, (len(FEATURES),), np.float32)
        self._obs: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        features = rng.normal(size=(N, len(FEATURES))).astype(np.float32)
        self._obs = {
            "history": rng.integers(0, N_ITEMS, H),
            "history_mask": np.ones(H, dtype=np.int8),
            "candidates": rng.choice(N_ITEMS, N, replace=False),
            "candidate_features": features,
            "user_features": np.zeros(2, dtype=np.float32),
            "context": np.zeros(4, dtype=np.float32),
        }
        return self._obs, {}

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        features = self._obs["candidate_features"][None]
        top = int(np.argmax(standardise(features)[0] @ action))
        best = int(np.argmax(features[0, :, FEATURES.index("similarity")]))
        return self._obs, float(top == best), True, False, {}


def _train_toy(learning_rate: float) -> float:
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    venv = DummyVecEnv([HiddenSignalEnv for _ in range(8)])
    venv.seed(0)
    model = PPO(
        RankingPolicy, venv, learning_rate=learning_rate, n_steps=64, batch_size=128, n_epochs=8, seed=0,
        device="cpu", policy_kwargs={"features_extractor_class": RankingExtractor,
        "features_extractor_kwargs": {"item_table": table, "dim": 8, "hidden": 16},
        "net_arch": {"pi": [], "vf": [16]}, "log_std_init": -0.5},
    )  # fmt: skip
    model.learn(6_000)
    env = HiddenSignalEnv()
    wins = []
    for episode in range(200):
        obs, _ = env.reset(seed=10_000 + episode)
        action, _ = model.predict(obs, deterministic=True)
        wins.append(env.step(action)[1])
    return float(np.mean(wins))


@pytest.mark.slow
def test_ppo_learns_the_hidden_signal_and_a_frozen_learner_does_not() -> None:
    assert _train_toy(3e-3) > 0.6  # random ranking: 1/8
    assert _train_toy(0.0) < 0.4  # the same pipeline with learning switched off


def test_candidate_scores_are_permutation_equivariant() -> None:
    env = HiddenSignalEnv()
    table = np.random.default_rng(0).normal(size=(N_ITEMS, 16)).astype(np.float32)
    extractor = RankingExtractor(env.observation_space, table, dim=8, hidden=16)
    obs, _ = env.reset(seed=0)
    batch = {k: torch.as_tensor(np.asarray(v)[None]).float() for k, v in obs.items()}
    order = torch.randperm(N, generator=torch.Generator().manual_seed(1))
    shuffled = dict(batch, candidates=batch["candidates"][:, order],
                    candidate_features=batch["candidate_features"][:, order])  # fmt: skip
    with torch.no_grad():
        scores, state = extractor(batch).split([N, 16], dim=1)
        scores2, state2 = extractor(shuffled).split([N, 16], dim=1)
    torch.testing.assert_close(scores2, scores[:, order])
    torch.testing.assert_close(state2, state)


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
    config = TrainConfig("ppo", seed=3, env_options=EnvConfig(action_mode="weights", fairness_lambda=0.5))
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_json([1, 2])


@pytest.mark.parametrize(
    "args",
    [["sac"], ["ppo", "--env", "nope-v0"], ["ppo", "--timesteps", "-1"], ["ppo", "--device", "tpu"]],
)
def test_train_cli_bad_input_is_one_line_exit_2(args: list[str], tmp_path: Path) -> None:
    result = run_cli("agents.train", *args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["ppo", "dqn", "a2c"])
def test_every_algorithm_trains_writes_the_run_folder_and_evaluates(algorithm: str, tmp_path: Path) -> None:
    out = tmp_path / algorithm
    result = run_cli("agents.train", algorithm, *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "static" in result.stdout and "trained policy vs static CTR" in result.stdout
    for name in ("config.json", "model.zip", "metrics.json", "learning_curve.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "metrics.json").read_text())
    assert set(report["baselines"]) == {"ctr", "popularity", "random"}
    assert report["policy"]["episodes"] == 16 and report["timesteps"] >= 512
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    evaluated = run_cli("agents.evaluate", "--policy", str(out), "--env", "ecommerce-v0", "--episodes", "16",
                        "--seed", str(10_000), "--json", str(tmp_path / "eval.json"))  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["return_mean"] == pytest.approx(report["policy"]["return_mean"])


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path: Path) -> None:
    reports = []
    for name in ("a", "b"):
        result = run_cli("agents.train", "ppo", *TINY, "--seed", "3", "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads((tmp_path / name / "metrics.json").read_text())
        for block in (report["policy"], report["initial_policy"]):
            block.pop("policy")
        reports.append(report)
    assert reports[0] == reports[1]


def test_evaluate_rejects_a_file_that_is_not_a_model(tmp_path: Path) -> None:
    fake = tmp_path / "model.zip"
    fake.write_text("not a model")
    result = run_cli(
        "agents.evaluate", "--policy", str(fake), "--env", "ecommerce-v0", "--json", str(tmp_path / "x.json")
    )
    assert result.returncode == 2 and "not a RecGym agent" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "agents.train", "ppo", "--timesteps", "200000", "--n-envs", "4",
               "--checkpoint-freq", "512", "--eval-freq", "100000", "--eval-episodes", "16", "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first = out / "checkpoints" / "rl_model_512_steps.zip"
    deadline = time.monotonic() + 500
    while not first.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # let the checkpoint's write finish
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.is_file() and not (out / "metrics.json").exists()
    for checkpoint in (out / "checkpoints").glob("rl_model_*_steps.zip"):  # none half-written
        assert zipfile.is_zipfile(checkpoint), checkpoint.name
    steps = max(int(p.name.split("_")[2]) for p in (out / "checkpoints").glob("rl_model_*_steps.zip"))
    result = run_cli("agents.train", "ppo", "--resume", str(out), "--timesteps", str(steps + 512))
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["resumed_from"] == f"rl_model_{steps}_steps.zip"
    assert json.loads((out / "metrics.json").read_text())["timesteps"] == steps + 512
    curve = np.load(out / "eval" / "evaluations.npz")["timesteps"]
    assert curve[0] == 0 and (np.diff(curve) > 0).all()  # the untrained point survived the kill


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_cuda_training(algorithm: str, tmp_path: Path) -> None:
    result = run_cli("agents.train", algorithm, *TINY, "--device", "cuda", "--out", str(tmp_path / algorithm))
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_a_plain_mlp_trains_on_the_embedding_observation(tmp_path: Path) -> None:
    out = tmp_path / "emb"
    result = run_cli("agents.train", "ppo", "--obs-mode", "embedding", *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["env_options"]["obs_mode"] == "embedding" and config["ctr_modules_loaded"] == []
    report = json.loads((out / "metrics.json").read_text())
    assert report["policy"]["episodes"] == 16
