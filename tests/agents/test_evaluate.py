"""agents.evaluate: every policy meets the same users, the metrics object and the evaluate CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agents.evaluation.evaluate import session_cap
from agents.evaluation.sessions import metrics, run_sessions
from agents.policies.baselines import make_baseline
from envs.config import EnvConfig
from simulators.core.errors import ConfigError
from tests.conftest import copy_run, run_cli

CONTRACT_KEYS = {
    "env", "policy", "seed", "episodes", "return_mean", "return_ci95", "clicks_per_session",
    "purchases_per_session", "ctr", "session_length", "fairness_penalty", "exposure_gini",
    "protected_exposure_share", "user_group_gap",
}  # fmt: skip


def test_every_policy_meets_the_same_users_and_ctr_beats_random() -> None:
    results = {
        name: run_sessions(make_baseline(name), EnvConfig(), 400, seed=3) for name in ("random", "ctr")
    }
    assert results["ctr"].returns.mean() > results["random"].returns.mean()
    again = run_sessions(make_baseline("ctr"), EnvConfig(), 400, seed=3)
    np.testing.assert_array_equal(again.returns, results["ctr"].returns)


def test_evaluate_cli_writes_the_contract(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    result = run_cli(
        "agents.evaluate",
        "--policy",
        "ctr",
        "--env",
        "ecommerce-v0",
        "--episodes",
        "40",
        "--seed",
        "1",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report) == CONTRACT_KEYS | {
        "protected_exposure_target",
        "provider_groups",
        "tail_exposure_share",
        "simulator",
    }
    assert report["provider_groups"] is True  # the shop has small and large sellers
    assert (
        report["episodes"] == 40
        and report["return_ci95"][0] <= report["return_mean"] <= report["return_ci95"][1]
    )
    assert 0 <= report["protected_exposure_share"] <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nowhere.zip", "--env", "ecommerce-v0"], "no such file"),
        (["--policy", "ctr", "--env", "cartpole-v9"], "unknown env"),
        (["--policy", "ctr", "--env", "ecommerce-v0", "--episodes", "-3"], "--episodes must lie in [1,"),
        (  # refused before planner:fitted is played, not after
            [
                "--policy",
                "planner:fitted",
                "planner:true",
                "--planner-ensemble",
                "2",
                "--env",
                "ecommerce-v0",
            ],
            "applies to planner:fitted only",
        ),
    ],
)
def test_evaluate_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("agents.evaluate", *args, "--json", str(tmp_path / "m.json"))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
    assert not (tmp_path / "m.json").exists()


def test_metrics_object_from_known_sessions() -> None:
    from agents.evaluation.sessions import EvaluationResult

    result = EvaluationResult(
        returns=np.array([1.0, 3.0]), clicks=np.array([1.0, 2.0]), purchases=np.array([0.0, 1.0]),
        lengths=np.array([2.0, 4.0]), penalties=np.array([0.0, 0.6]),
        fairness={"exposure_gini": 0.5, "protected_exposure_share": 0.3, "protected_exposure_target": 0.4,
                  "user_group_gap": 0.1, "tail_exposure_share": 0.2, "provider_groups": True},
    )  # fmt: skip
    report = metrics(result, "ecommerce-v0", "ctr", 0)
    assert report["return_mean"] == 2.0 and report["ctr"] == pytest.approx(3 / (6 * 5))
    assert report["fairness_penalty"] == pytest.approx(0.1) and report["session_length"] == 3.0
    assert report["protected_exposure_target"] == 0.4


def test_every_policy_meets_the_same_users_in_the_same_order() -> None:
    """Sessions come back ordered by slot and turn, so paired comparisons line up even though
    policies end sessions at different steps."""
    from agents.evaluation.sessions import run_sessions
    from agents.policies.baselines import make_baseline

    ctr = run_sessions(make_baseline("ctr"), EnvConfig(), 96, 5, progress=False)
    rand = run_sessions(make_baseline("random"), EnvConfig(), 96, 5, progress=False)
    assert ctr.users is not None and rand.users is not None
    np.testing.assert_array_equal(ctr.users, rand.users)
    assert not np.array_equal(ctr.lengths, rand.lengths)


@pytest.mark.slow
def test_several_policies_are_compared_paired_in_the_true_shop(tmp_path: Path) -> None:
    out = tmp_path / "several.json"
    result = run_cli(
        "agents.evaluate", "--policy", "ctr", "best-fixed", "planner:true", "--simulator", "true",
        "--episodes", "48", "--seed", "2", "--planner-rollouts", "4", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["simulator"] == "true" and set(report["policies"]) == {"ctr", "best-fixed", "planner:true"}
    reference = report["reference"]
    assert reference in ("ctr", "best-fixed")  # the best static one, never the planner
    assert set(report["paired"]) == set(report["policies"]) - {reference}
    for name, diff in report["paired"].items():  # the paired mean is the difference of the means
        expected = report["policies"][name]["return_mean"] - report["policies"][reference]["return_mean"]
        assert (
            diff["mean"] == pytest.approx(expected, abs=1e-9)
            and diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
        )
    planner = report["policies"]["planner:true"]["planner"]
    assert planner["decisions"] > 0 and planner["model"] == "true"
    assert "vs " + reference + " (paired)" in result.stdout and "decisions/s" in result.stdout


def test_every_policy_plays_at_the_agents_session_cap_and_agents_at_two_caps_are_refused() -> None:
    class Trained:  # what session_cap reads of a loaded run: the env options it trained with
        def __init__(self, options: dict[str, int]) -> None:
            self.env_options = options

    default = EnvConfig().max_steps
    assert session_cap("ecommerce-v0", {}) == {}  # static policies only: the env's own cap
    assert session_cap("ecommerce-v0", {"a": Trained({})}) == {"max_steps": default}
    both = {"a": Trained({"max_steps": 30}), "b": Trained({"max_steps": 30})}
    assert session_cap("ecommerce-v0", both) == {"max_steps": 30}  # so tuned-weights plays at 30 too
    with pytest.raises(ConfigError, match="a at 30, b at 20"):
        session_cap("ecommerce-v0", {"a": Trained({"max_steps": 30}), "b": Trained({})})


def test_a_static_policy_plays_beside_a_capped_agent_at_its_cap(tmp_path: Path, tiny_ppo_run: Path) -> None:
    capped = copy_run(tiny_ppo_run, tmp_path / "capped")
    config = json.loads((capped / "config.json").read_text())
    config["env_options"]["max_steps"] = 3  # as if it had trained in sessions of at most 3 steps
    (capped / "config.json").write_text(json.dumps(config))
    out = tmp_path / "eval.json"
    result = run_cli("agents.evaluate", "--policy", "tuned-weights", str(capped), "--simulator", "true",
                     "--episodes", "16", "--json", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lengths = {
        spec: report["session_length"] for spec, report in json.loads(out.read_text())["policies"].items()
    }
    assert max(lengths.values()) <= 3 and lengths["tuned-weights"] > 1, lengths
    other = copy_run(tiny_ppo_run, tmp_path / "other")  # the env's cap: not one session for both
    refused = run_cli(
        "agents.evaluate", "--policy", str(capped), str(other), "--json", str(tmp_path / "x.json")
    )
    assert refused.returncode == 2 and "capped at different lengths" in refused.stderr
