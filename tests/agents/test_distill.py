"""Distilling the planner: its rows describe each candidate against the base's; a learner that
predicts no gain anywhere plays the base policy's sessions exactly (DAgger's round plays the
learner, the planner only labels); a planted gain is learnt and played, and a threshold above it
keeps the base; the same seed labels the same rows; the run folder round-trips through
``--policy FOLDER``, serves (the env's slates, behind its own uvicorn process) and is a target of
OPE (against the shop's truth), refuses a changed scorer and never replaces another run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from agents.evaluation.load import load_distilled_run, load_policy, make_planner
from agents.evaluation.sessions import PARALLEL_SESSIONS, run_sessions
from agents.evaluation.tuning import TuningBudget
from agents.policies.agent import TrainedAgent
from agents.policies.baselines import make_baseline, scores_action
from agents.policies.distilled import SCORER_FILE, DistilledPlanner, candidate_design
from agents.policies.onnx import OnnxPolicy
from agents.policies.planner import PlannerConfig, candidate_actions
from agents.serve.export import record_observations
from agents.serve.ranker import Ranker, RequestError
from agents.serve.traffic import start_server
from agents.training import distill as distill_module
from agents.training.config import TrainConfig
from agents.training.distill import DistillConfig, Labeller, fit_scorer, learn
from agents.training.menu import with_menu
from envs import engine
from envs.config import EnvConfig
from envs.factory import make_vector_env
from simulators.core.errors import ConfigError
from simulators.datasets import load_logs
from simulators.datasets.shop import shop_folder
from tests.conftest import SMALL_SHOP, TINY, run_cli

TINY_TEACHER = [
    "--sessions",
    "16",
    "--rounds",
    "1",
    "--planner-rollouts",
    "4",
    "--max-iter",
    "40",
    "--eval-episodes",
    "0",
]
"""The smallest distillation a teacher warm start can take (its flags beside the candidates and --out)."""
TINY_CLONE = ["--teacher-states", "4096", "--teacher-steps", "400"]
"""A clone of a teacher over weights that still learns its choices (the default's 65,536 states take
minutes: 244 s of a tiny run against 24 s)."""
DQN_CLONE = ["--teacher-states", "16384", "--teacher-steps", "2000"]
"""A DQN clone of a teacher over strategies that agrees with it on held-out states by over 0.1 more
than before (0.28 -> 0.43 here; 4,096 states and 1,500 steps: 0.38): 50 s against the default's 138 s."""
PLANNER = PlannerConfig(rollouts=4)


@pytest.fixture(scope="module")
def data() -> str:
    return str(shop_folder(SMALL_SHOP))


def config_of(data: str, **changes: object) -> DistillConfig:
    fields = {"data": data, "sessions": 24, "rounds": 2, "eval_episodes": 0, "planner": PLANNER,
              "max_iter": 40, **changes}  # fmt: skip
    return DistillConfig(**fields)  # type: ignore[arg-type]


class Constant:
    """A scorer that predicts ``value`` for every row."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.full(len(x), self.value)


def test_a_row_describes_its_candidate_against_the_base_slate() -> None:
    rng = np.random.default_rng(0)
    observation = {"candidate_features": rng.random((2, 6, 3)), "context": rng.random((2, 4))}
    slates = np.array([[[0, 1], [1, 0], [2, 3]], [[5, 4], [5, 4], [0, 2]]])
    topics = np.array([[0, 0, 1, 2, 0, 0], [0, 1, 1, 0, 0, 1]])
    x = candidate_design(observation, slates, topics)
    assert x.shape == (2, 3, 4 + 3 * 3 + 1 + 3)
    np.testing.assert_array_equal(x[:, :, :4], np.repeat(observation["context"][:, None], 3, axis=1))
    np.testing.assert_array_equal(x[:, 0, 4:-3], 0.0)  # the base against itself
    np.testing.assert_array_equal(x[1, 1, 4:-3], 0.0)  # the same slate as the base's
    np.testing.assert_array_equal(x[:, :, -3:], np.broadcast_to(np.eye(3), (2, 3, 3)))
    assert x[0, 2, 4 + 9] == 1.0  # topics 1 and 2 against the base's one topic
    np.testing.assert_allclose(
        x[0, 1, 4:7], 0.0, atol=1e-12
    )  # the same items in another order: the same mean
    assert np.abs(x[0, 1, 7:10]).max() > 0  # but another discounted sum


def test_a_learner_that_predicts_no_gain_plays_the_base_policy_while_the_planner_labels(data: str) -> None:
    env = replace_env(data)
    planner = make_planner("planner:true", env, PLANNER)
    learner = DistilledPlanner(planner.base, PLANNER, Constant(0.0))
    labeller = Labeller(planner, learner)
    labelled = run_sessions(labeller, env, 32, 11, progress=False)
    alone = run_sessions(planner.base, env, 32, 11, progress=False)
    np.testing.assert_array_equal(labelled.returns, alone.returns)
    assert learner.deviations == 0 and planner.deviations > 0  # the planner would have deviated
    assert planner.decisions >= labelled.lengths.sum()  # a slot past its quota still plays (uncounted)
    assert sum(len(y) for y in labeller.labels) == planner.decisions * planner.last_slates.shape[1]  # type: ignore[union-attr]
    assert all(np.isfinite(y).all() for y in labeller.labels)


def test_a_run_s_session_cap_reaches_the_env_options_evaluate_plays_it_with(data: str) -> None:
    assert config_of(data).options.max_steps == EnvConfig().max_steps  # the env's own by default
    capped = config_of(data, max_steps=30).options
    assert capped.max_steps == 30
    learner = DistilledPlanner(make_baseline("ctr"), PLANNER, Constant(0.0), env_config=capped)
    # agents.evaluate plays a run with its data, fairness weight and cap (the context it reads)
    assert learner.env_options == {"data": data, "fairness_lambda": 0.0, "max_steps": 30}


def replace_env(data: str) -> EnvConfig:
    return EnvConfig(data=data, simulator="true", candidates="popularity", max_steps=12)


def test_a_planted_gain_is_learnt_and_played_and_a_higher_threshold_keeps_the_base(data: str) -> None:
    env = replace_env(data)
    planner = make_planner("planner:true", env, PLANNER)
    labeller = Labeller(planner, None)
    run_sessions(labeller, env, 24, 3, progress=False)
    x = np.concatenate(labeller.rows)
    n_candidates = planner.last_slates.shape[1]  # type: ignore[union-attr]
    which = x[:, -n_candidates:].argmax(axis=1)
    planted = np.where(which == 5, 1.0, 0.0)  # candidate 5 earns one more per session, the rest nothing
    scorer = fit_scorer(x, planted, config_of(data))
    learner = DistilledPlanner(planner.base, PLANNER, scorer, threshold=0.5)
    labeller = Labeller(planner, learner)
    run_sessions(labeller, env, 16, 4, progress=False)
    assert learner.decisions > 0 and learner.deviations == learner.decisions  # always candidate 5
    cautious = DistilledPlanner(planner.base, PLANNER, scorer, threshold=2.0)
    run_sessions(cautious, env, 16, 4, progress=False)
    assert cautious.decisions > 0 and cautious.deviations == 0


def test_the_same_seed_labels_the_same_rows_and_dagger_plays_the_learner(data: str) -> None:
    first, second = learn(config_of(data), progress=False), learn(config_of(data), progress=False)
    np.testing.assert_array_equal(first.rows, second.rows)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert [h["played_by"] for h in first.history] == ["planner", "distilled"]
    assert set(np.unique(first.rounds)) == {0, 1}


def top_k(action: np.ndarray, k: int) -> np.ndarray:
    """The env's greedy ranking of a ``scores`` action (its own kernel, no one-per-topic rule)."""
    out = np.zeros((len(action), k), dtype=np.int64)
    topics = np.zeros(action.shape, dtype=np.int32)
    engine.rank_kernel(np.ascontiguousarray(action), topics, k, np.zeros(len(action), dtype=np.bool_), 1, out)
    return out


@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.sampled_from([0.0, 5.0, 1e4]), st.booleans())
@settings(max_examples=60, deadline=None)
@example(seed=0, k=6, offset=5.0, constant=True)
def test_a_slate_s_scores_action_ranks_it_first_and_keeps_the_scores_that_chose_it(
    seed: int, k: int, offset: float, constant: bool
) -> None:
    rng = np.random.default_rng(seed)
    scores = (np.zeros((3, 12)) if constant else rng.normal(size=(3, 12))) + offset
    slates = np.stack([rng.permutation(12)[:k] for _ in range(3)])
    action = scores_action(slates, 12, scores.astype(np.float32))
    assert action.dtype == np.float32 and np.abs(action).max() <= 1.0
    np.testing.assert_array_equal(top_k(action, k), slates)  # the env shows the slate, in its order
    for row in range(3):  # the rest keep the scores that chose the slate, up to scale and shift
        rest = np.setdiff1d(np.arange(12), slates[row])
        if len(rest) > 2 and not constant:
            assert np.corrcoef(action[row, rest], scores[row, rest])[0, 1] > 1 - 1e-5
    # a greedy slate of (untied) scores keeps them all: the action is the scores, centred and scaled
    spaced = np.stack([rng.permutation(12) for _ in range(3)]).astype(np.float64) + offset
    greedy = np.argsort(-spaced, axis=1, kind="stable")[:, :k]
    kept = scores_action(greedy, 12, spaced)
    for row in range(3):
        assert np.corrcoef(kept[row], spaced[row])[0, 1] > 1 - 1e-5
    # rank-spaced scores (no scores given) rank the slate first too
    np.testing.assert_array_equal(top_k(scores_action(slates, 12), k), slates)


def test_the_cli_writes_a_run_that_plays_as_it_was_learnt_and_guards_it(data: str, tmp_path: Path) -> None:
    out = tmp_path / "distilled"
    flags = ["--data", data, "--model", "true", "--sessions", "24", "--rounds", "1", "--planner-rollouts", "4",
             "--max-iter", "40", "--eval-episodes", "32"]  # fmt: skip
    result = run_cli("agents.distill", *flags, "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["evaluation"]["episodes"] == 32 and "paired" in metrics["evaluation"]
    assert "distilled:true" in result.stdout
    # the folder plays where any policy is taken, as the run learnt it (the same labels, the same scorer)
    learnt = learn(config_of(data, model="true", rounds=1), progress=False)
    env = EnvConfig(data=data, simulator="true")
    assert (
        learnt.policy.env_config == config_of(data, model="true").options
    )  # where OPE rebuilds its candidates
    loaded = load_policy(str(out), env=env)
    assert isinstance(loaded, DistilledPlanner) and loaded.env_options["data"] == data
    np.testing.assert_array_equal(
        run_sessions(loaded, env, 32, 9, progress=False).returns,
        run_sessions(learnt.policy, env, 32, 9, progress=False).returns,
    )
    evaluated = run_cli("agents.evaluate", "--policy", str(out), "tuned-weights", "--simulator", "true",
                        "--episodes", "16", "--json", str(tmp_path / "eval.json"))  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "a distilled planner" in evaluated.stdout
    # it serves: a named session fed the env's clicks gets, step after step, the slate it plays there
    ranker = Ranker(out)
    record = json.loads((out / "distilled.json").read_text())
    assert (
        ranker.backend == "scikit-learn"
        and ranker.version == f"{record['run_id']}-{record['scorer_sha256'][:8]}"
    )
    played = load_distilled_run(out)
    venv = make_vector_env(ranker.config, 1)
    observation, _ = venv.reset(seed=11)
    played.bind(venv.core)
    rng, sessions = np.random.default_rng(0), 0
    for _ in range(30):
        ranked = ranker.rank(ranker.user_ids[int(venv.core.user[0])].item(), session_id=f"s{sessions}")
        observation, _, terminated, truncated, _ = venv.step(played.act(observation, rng))
        np.testing.assert_array_equal(ranked.items, venv.core.last_slate[0])
        ranker.feedback(ranked, venv.core.last_click[0].astype(np.int64))
        sessions += int(terminated[0] or truncated[0])
    assert (
        sessions >= 1
    )  # (its candidates are weight vectors: the env's session keys, not the ranker's, never matter)
    with pytest.raises(RequestError, match="a distilled run chooses among slates of all"):
        ranker.rank(3, candidates=ranker.item_ids[ranker.world.candidates[2][:3]].tolist())
    # ... and behind its own uvicorn process, which logs what it shows with the policy's version
    process, url = start_server(out, tmp_path / "served", "--flush-interval-s", "0.1")
    try:
        with httpx.Client(base_url=url) as client:
            answer = client.post("/rank", json={"user_id": 3, "temperature": 1.0}).json()
            assert len(answer["slate"]) == 5 and 0 < answer["propensity"] < 1
            health = client.get("/healthz").json()
            assert health["backend"] == "scikit-learn" and health["policy_version"] == ranker.version
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
    assert load_logs(tmp_path / "served").interactions["propensity"].between(0, 1).all()
    # OPE takes it as a target: on an independent log of the shop, the estimators that weight each
    # slot agree with the truth within the two uncertainties together (3 sigma: fails 0.3% by chance)
    ope = run_cli("agents.ope", "--policy", str(out), "--data", data, "--bootstrap", "30", "--truth-sessions",
                  "3000", "--json", str(tmp_path / "ope.json"))  # fmt: skip
    assert ope.returncode == 0, ope.stderr[-2000:]
    report = json.loads((tmp_path / "ope.json").read_text())
    for name in ("iips", "pbm_ips", "pbm_dr"):
        entry = report["estimates"][name]
        se = (entry["ci95"][1] - entry["ci95"][0]) / (2 * 1.96)
        z = (entry["value"] - report["ground_truth"]) / np.hypot(se, report["ground_truth_se"])
        assert abs(z) < 3.0, (name, entry["value"], report["ground_truth"], z)
    # another run never lands on it, nor an output on its files
    again = run_cli("agents.distill", *flags, "--out", str(out))
    assert again.returncode == 2 and "holds another run" in again.stderr and "--resume" not in again.stderr
    over = run_cli("agents.evaluate", "--policy", str(out), "--json", str(out / "metrics.json"))
    assert over.returncode == 2 and "one of the command's inputs" in over.stderr
    # a scorer changed after the run is refused before it is read
    (out / SCORER_FILE).write_bytes((out / SCORER_FILE).read_bytes() + b"\0")
    with pytest.raises(ConfigError, match="changed since the run wrote it"):
        load_policy(str(out), env=env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--eval-seed", "5040"], "overlap the labelling's"),
        (["--model", "dreamt"], "invalid choice"),
        (["--sessions", "0"], "--sessions must lie in"),
        (["--max-steps", "0"], "--max-steps must lie in"),
        (["--model", "true", "--planner-ensemble", "2"], "needs --model fitted"),
        (["--model", "true", "--data", "movielens"], "has none: distil planner:fitted"),
    ],
)
def test_bad_input_is_one_line_before_any_work(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("agents.distill", *args, "--out", str(tmp_path / "d"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "d").exists()


def test_dqn_starts_from_a_teacher_over_its_own_strategies_and_refuses_one_over_weights(
    tmp_path: Path,
) -> None:
    teacher = tmp_path / "teacher"
    flags = TINY_TEACHER
    made = run_cli("agents.distill", *flags, "--planner-base", "best-fixed", "--planner-candidates", "strategies",
                   "--out", str(teacher))  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    run = tmp_path / "dqn"
    trained = run_cli(
        "agents.train", "dqn", *TINY, "--checkpoint-freq", "256", "--warm-start", "teacher", "--teacher", str(teacher),
        *DQN_CLONE, "--out", str(run),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    assert config["env_options"]["fairness_lambda"] == 0.0  # the teacher's reward, not the priced one
    assert config["teacher"] == str(teacher)
    cloned = config["teacher_clone"]
    held = cloned[
        "held_out"
    ]  # on states the clone did not learn from, it plays the teacher's strategy more often
    assert cloned["loss"][1] < cloned["loss"][0] and held["after"] > held["before"] + 0.1
    assert config["start_action"]["reranker"] == "best-fixed"
    check = cloned["check"]  # the clone stays only if it earns at least the static start, paired
    assert isinstance(check["kept"], bool) and check["kept"] == (check["clone_minus_static"]["mean"] >= 0)
    # a teacher whose candidates are weights cannot teach discrete actions; nor a teacher without its warm start
    weights = tmp_path / "weights"
    assert (
        run_cli("agents.distill", *flags, "--planner-candidates", "greedy", "--out", str(weights)).returncode
        == 0
    )
    for args, message in (
        (["--warm-start", "teacher", "--teacher", str(weights)], "its candidate actions are ['weights']"),
        (["--teacher", str(teacher)], "go together"),
        (
            ["--warm-start", "teacher", "--teacher", str(teacher), "--fairness-lambda", "2"],
            "distilled with fairness_lambda 0.0",
        ),
        (["--warm-start", "teacher", "--teacher", str(teacher), "--teacher-states", "8"], "at least 64"),
    ):
        refused = run_cli("agents.train", "dqn", *TINY, *args, "--out", str(tmp_path / "refused"))
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert not (tmp_path / "refused").exists()
    # the clone is done: a resumed run does not need its teacher where it was
    teacher.rename(tmp_path / "moved")
    more = run_cli("agents.train", "dqn", "--resume", str(run), "--timesteps", "768")
    assert more.returncode == 0, more.stderr[-2000:]
    resumed = json.loads((run / "config.json").read_text())
    assert resumed["resumed_from"] and resumed["teacher"] == str(teacher)
    assert resumed["teacher_clone"] == cloned and resumed["start_action"] == config["start_action"]


def test_each_round_meets_other_users(data: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seeds: list[int] = []
    played = distill_module.run_sessions

    def recording(*args: Any, **kwargs: Any) -> Any:
        seeds.append(args[3])
        return played(*args, **kwargs)

    monkeypatch.setattr(distill_module, "run_sessions", recording)
    learn(config_of(data, rounds=3, sessions=8), progress=False)
    # slot i of a vector env draws its users from seed + i: the rounds' slot streams never meet
    streams = [set(range(seed, seed + PARALLEL_SESSIONS)) for seed in seeds]
    assert len(seeds) == 3 and all(not (a & b) for i, a in enumerate(streams) for b in streams[i + 1 :])


@pytest.mark.slow
def test_ppo_over_a_menu_clones_a_teacher_over_weights_exports_serves_and_takes_ope(tmp_path: Path) -> None:
    """A weights teacher's choices index its candidate weight vectors: a ``menu`` PPO agent picks
    among the same vectors in the same order, learns the choices by cross-entropy, and its run
    exports (ONNX agrees with torch), serves (the env's slate at temperature 0) and takes OPE."""
    teacher = tmp_path / "teacher"
    flags = TINY_TEACHER
    made = run_cli("agents.distill", *flags, "--planner-candidates", "perturb", "diversify", "greedy",
                   "--out", str(teacher))  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    run = tmp_path / "ppo"
    trained = run_cli("agents.train", "ppo", *TINY, "--action-mode", "menu", "--warm-start", "teacher",
                      "--teacher", str(teacher), *TINY_CLONE, "--out", str(run))  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    config = json.loads((run / "config.json").read_text())
    options = EnvConfig(**{k: v for k, v in config["env_options"].items() if k != "render_mode"})
    distilled = load_distilled_run(
        str(teacher), options, TuningBudget(sessions=8, cem_generations=1)
    )  # TINY's
    env = make_vector_env(replace(options, action_mode="scores"), 2)
    observation, _ = env.reset(seed=0)
    candidates = candidate_actions(distilled.base, distilled.planner, observation, np.random.default_rng(0))
    assert all(mode == "weights" for mode, _ in candidates)
    np.testing.assert_array_equal(options.menu, np.stack([action[0] for _, action in candidates]))
    # a resumed run reads its menu back (the Python API's resume too); a menu beside a teacher is refused
    saved = TrainConfig.from_json(config)
    bare = replace(saved, env_options=replace(saved.options, action_menu=()))
    assert with_menu(bare, run / "config.json").options.action_menu == options.action_menu
    refused = run_cli("agents.train", "ppo", *TINY, "--action-mode", "menu", "--warm-start", "teacher", "--teacher",
                      str(teacher), "--action-menu", *["0"] * 7, "--out", str(tmp_path / "refused"))  # fmt: skip
    assert refused.returncode == 2 and "leave --action-menu out" in refused.stderr, refused.stderr
    assert not (tmp_path / "refused").exists()
    cloned = config["teacher_clone"]
    assert cloned["loss"][1] < cloned["loss"][0] and cloned["held_out"]["measure"] == "agreement"
    assert cloned["held_out"]["after"] > cloned["held_out"]["before"]
    # the export acts as the torch agent
    exported = run_cli("agents.export", str(run), "--onnx", str(run / "policy.onnx"))
    assert exported.returncode == 0, exported.stderr[-2000:]
    agent, onnx = TrainedAgent.load(run, device="cpu"), OnnxPolicy.load(run)
    seen = record_observations(agent, 200, seed=7)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(onnx.act(seen, rng), agent.act(seen, rng))
    # played where the env options name no menu (the counterfactual study's bare config), it brings its own
    played = run_sessions(agent, EnvConfig(data="shop"), 8, 0, progress=False)
    assert played.returns.shape == (8,)
    # served greedily, a session fed the env's clicks gets the env's slate
    ranker = Ranker(run, "onnx")
    served = make_vector_env(agent.env_config, 1)
    observation, _ = served.reset(seed=11)
    core = served.core
    for _ in range(12):
        ranked = ranker.rank(ranker.user_ids[int(core.user[0])].item(), session_id="s", temperature=0.0)
        observation, _, terminated, truncated, _ = served.step(agent.act(observation, rng))
        np.testing.assert_array_equal(ranked.items, core.last_slate[0])
        ranker.feedback(ranked, core.last_click[0].astype(np.int64))
        if terminated[0] or truncated[0]:
            break
    # OPE takes it as a target: its weight vector's scores in Plackett-Luce form, against the truth
    ope = run_cli("agents.ope", "--policy", str(run), "--data", "shop", "--bootstrap", "5", "--truth-sessions", "300",
                  "--json", str(tmp_path / "ope.json"))  # fmt: skip
    assert ope.returncode == 0, ope.stderr[-2000:]
    report = json.loads((tmp_path / "ope.json").read_text())
    assert np.isfinite(report["ground_truth"]) and np.isfinite(report["estimates"]["pbm_dr"]["value"])
