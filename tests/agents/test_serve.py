"""agents.serve: the ranker acts as the agent does in the env, its propensities are the sampling
distribution's, and a real uvicorn process on a loopback port answers, refuses bad requests
without a 5xx, logs atomically through SIGKILL and restarts, and closes the loop to OPE and a refit."""

from __future__ import annotations

import json
import signal
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from agents.policies.agent import TrainedAgent
from agents.serve.ranker import Ranker
from agents.serve.traffic import simulate_users, start_server
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError
from simulators.datasets import load_logs
from simulators.datasets.tabular import table_parts
from tests.conftest import copy_run, run_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_ppo_run: Path) -> Path:
    """A tiny PPO agent on the shop, exported to ONNX."""
    folder = copy_run(tiny_ppo_run, tmp_path_factory.mktemp("serve") / "ppo")
    exported = run_cli("agents.export", str(folder), "--onnx", str(folder / "policy.onnx"), "--check", "64")
    assert exported.returncode == 0, exported.stderr[-2000:]
    return folder


@pytest.fixture()
def server(run: Path, tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    """The run served by its own uvicorn process on a free loopback port."""
    log_dir = tmp_path / "served"
    process, url = start_server(run, log_dir, "--flush-interval-s", "0.1", "--flush-rows", "50")
    yield process, url, log_dir
    if process.poll() is None:
        process.kill()
        process.wait()


# ----------------------------------------------------------------------------- in process
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_greedy_serving_shows_what_the_agent_shows_in_the_env(run: Path, backend: str) -> None:
    """A named session fed the env's clicks gets, step after step, the env's own slate."""
    ranker = Ranker(run, backend)
    agent = TrainedAgent.load(run, device="cpu")
    options = {k: v for k, v in agent.env_options.items() if k != "render_mode"}
    env = RankingVectorEnv(num_envs=1, **options)
    observation, _ = env.reset(seed=11)
    core, rng = env.core, np.random.default_rng(0)
    sessions, longest, length = 0, 0, 0
    for _ in range(40):  # several sessions: the ledger carries over between them on both sides
        user = ranker.user_ids[int(core.user[0])].item()
        ranked = ranker.rank(user, session_id=f"s{sessions}", temperature=0.0)
        observation, _, terminated, truncated, _ = env.step(agent.act(observation, rng))
        np.testing.assert_array_equal(ranked.items, core.last_slate[0])
        assert (ranked.slot_propensity == 1.0).all()
        ranker.feedback(ranked, core.last_click[0].astype(np.int64))
        length += 1
        if terminated[0] or truncated[0]:
            sessions, longest, length = sessions + 1, max(longest, length), 0
    assert sessions >= 2 and max(longest, length) >= 3


def test_sampled_slates_follow_their_logged_propensities(run: Path) -> None:
    """``E[1{slate = s} / p(slate)] = 1`` for every slate s with support (3 candidates, K = 2)."""
    ranker = Ranker(run, "onnx", seed=3)
    draws = [ranker.rank(5, candidates=[1, 2, 3], slate_size=2, temperature=3.0) for _ in range(3000)]
    weights: dict[tuple[int, ...], float] = {}
    for ranked in draws:
        key = tuple(ranker.item_ids[ranked.items].tolist())
        weights[key] = weights.get(key, 0.0) + 1.0 / ranked.propensity
        np.testing.assert_allclose(ranked.propensity, np.prod(ranked.slot_propensity))
    assert len(weights) == 6  # every ordered pair of the three
    for key, total in weights.items():
        assert abs(total / len(draws) - 1.0) < 0.25, (key, total / len(draws))


def test_the_ranker_names_the_field_of_a_bad_request(run: Path) -> None:
    from agents.serve.ranker import RequestError

    ranker = Ranker(run, "onnx")
    with pytest.raises(RequestError) as caught:
        ranker.rank(5, history=[1, 2, 10**9])
    assert caught.value.field_path == ("history", 2)


# ----------------------------------------------------------------------------- over HTTP
def test_rank_feedback_and_the_log_load_with_load_logs(server: tuple[Any, str, Path]) -> None:
    process, url, log_dir = server
    with httpx.Client(base_url=url) as client:
        first = client.post("/rank", json={"user_id": 7, "session_id": "a", "temperature": 1.0}).json()
        second = client.post(
            "/rank", json={"user_id": "7", "session_id": "a"}
        ).json()  # integer ids as text too
        unreported = client.post(
            "/rank", json={"user_id": 8, "candidates": [1, 2, 3, 4], "slate_size": 3}
        ).json()
        assert len(first["slate"]) == 5 and len(unreported["slate"]) == 3
        assert set(unreported["slate"]) <= {1, 2, 3, 4}
        assert second["propensity"] == 1.0 and 0 < first["propensity"] < 1
        np.testing.assert_allclose(np.prod(first["slot_propensities"]), first["propensity"])
        for event, clicks in ((first, [1, 0, 0, 0, 0]), (second, [0, 1, 1, 0, 0])):
            answer = client.post("/feedback", json={"event_id": event["event_id"], "clicks": clicks})
            assert answer.status_code == 204
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["pending"] == 1
        assert client.get("/docs").status_code == 200
        metrics = client.get("/metrics").text
        assert 'recgym_requests_total{endpoint="/rank",status="200"} 3.0' in metrics
        assert "recgym_request_seconds_bucket" in metrics
    process.terminate()  # SIGTERM: the unreported slate is written too, without clicks
    assert process.wait(timeout=60) == 0
    logs = load_logs(log_dir)
    table = logs.interactions
    assert len(table) == 13 and set(table["slate_id"]) == {
        first["event_id"],
        second["event_id"],
        unreported["event_id"],
    }
    by_event = table.set_index("slate_id")
    assert by_event.loc[first["event_id"], "click"].tolist() == [1, 0, 0, 0, 0]
    assert by_event.loc[unreported["event_id"], "feedback"].tolist() == [0, 0, 0]
    np.testing.assert_allclose(
        by_event.loc[first["event_id"], "prefix_propensity"], np.cumprod(first["slot_propensities"])
    )
    assert (table.loc[table["session_id"] == "a", "user_id"] == 7).all()


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("/rank", "missing user", {}, 422, "user_id"),
    ("/rank", "unknown user", {"user_id": 10**9}, 422, "user_id"),
    ("/rank", "user of the wrong type", {"user_id": [1]}, 422, "user_id"),
    ("/rank", "boolean user", {"user_id": True}, 422, "user_id"),
    ("/rank", "unknown history item", {"user_id": 1, "history": [1, "nope"]}, 422, "history"),
    ("/rank", "an id of two minus signs", {"user_id": "--5"}, 422, "user_id"),
    ("/rank", "an id of superscript digits", {"user_id": "\u00b2"}, 422, "user_id"),
    ("/rank", "an id of 5000 digits", {"user_id": "9" * 5000}, 422, "user_id"),
    ("/rank", "a temperature that underflows", {"user_id": 1, "temperature": 1e-320}, 422, "temperature"),
    ("/rank", "history too long", {"user_id": 1, "history": [1] * 1001}, 422, "history"),
    ("/rank", "unknown candidate", {"user_id": 1, "candidates": [1, 10**9]}, 422, "candidates"),
    ("/rank", "repeated candidate", {"user_id": 1, "candidates": [1, 1, 2]}, 422, "candidates"),
    (
        "/rank",
        "more candidates than the policy's N",
        {"user_id": 1, "candidates": list(range(51))},
        422,
        "candidates",
    ),
    ("/rank", "empty candidates", {"user_id": 1, "candidates": []}, 422, "candidates"),
    (
        "/rank",
        "slate larger than the candidates",
        {"user_id": 1, "candidates": [1, 2], "slate_size": 3},
        422,
        "slate_size",
    ),
    ("/rank", "zero slate", {"user_id": 1, "slate_size": 0}, 422, "slate_size"),
    ("/rank", "negative temperature", {"user_id": 1, "temperature": -1}, 422, "temperature"),
    ("/rank", "huge temperature", {"user_id": 1, "temperature": 1e9}, 422, "temperature"),
    ("/rank", "temperature as text", {"user_id": 1, "temperature": "hot"}, 422, "temperature"),
    ("/rank", "an unknown field", {"user_id": 1, "colour": "red"}, 422, "colour"),
    ("/rank", "empty session id", {"user_id": 1, "session_id": ""}, 422, "session_id"),
    ("/rank", "not JSON", "{user_id: 1", 422, "body"),
    ("/rank", "a list body", [1, 2], 422, "body"),
    ("/rank", "oversize body", {"user_id": 1, "history": [1] * 30_000}, 413, "body"),
    ("/feedback", "unknown event", {"event_id": "nope", "clicks": [0]}, 404, "event_id"),
    ("/feedback", "clicks not 0/1", {"event_id": "x", "clicks": [2]}, 422, "clicks"),
    ("/feedback", "missing clicks", {"event_id": "x"}, 422, "clicks"),
]
"""``(path, what, body, status, field)``: each bad request and the answer naming its field."""


def test_bad_requests_get_a_4xx_naming_the_field_never_a_5xx(server: tuple[Any, str, Path]) -> None:
    _, url, _ = server
    with httpx.Client(base_url=url) as client:
        for path, what, body, status, field in BAD_REQUESTS:
            content = body if isinstance(body, str) else json.dumps(body)
            answer = client.post(path, content=content, headers={"content-type": "application/json"})
            assert answer.status_code == status, (what, answer.status_code, answer.text[:300])
            assert field in json.dumps(answer.json()["detail"]), (what, answer.text[:300])
        event = client.post("/rank", json={"user_id": 3, "session_id": "mine"}).json()["event_id"]
        theirs = client.post("/rank", json={"user_id": 4, "session_id": "mine"})
        assert theirs.status_code == 422 and "another user" in theirs.text
        wrong = [
            ({"event_id": event, "clicks": [1, 0]}, 422, "clicks"),  # not one per slot
            ({"event_id": event, "clicks": [0] * 5, "purchases": [1, 0]}, 422, "purchases"),
        ]
        for body, status, field in wrong:
            answer = client.post("/feedback", json=body)
            assert answer.status_code == status and field in answer.text, answer.text
        # a purchase without a click is a click too (the loaders' rule, purchases_imply_clicks)
        bought = {"event_id": event, "clicks": [0] * 5, "purchases": [1, 0, 0, 0, 0]}
        assert client.post("/feedback", json=bought).status_code == 204
        again = client.post("/feedback", json={"event_id": event, "clicks": [0] * 5})
        assert again.status_code == 409 and "already" in again.text
        assert client.get("/rank").status_code == 405
        metrics = client.get("/metrics").text
        assert 'status="5' not in metrics
    assert len(BAD_REQUESTS) + len(wrong) + 3 >= 15


def _traffic(
    url: str, stop: threading.Event, answers: list[int], shown: list[str], reported: list[str]
) -> None:
    """Rank and report (every other slate) until ``stop`` or the server goes away."""
    rng = np.random.default_rng(len(shown))
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while not stop.is_set():
            try:
                event = client.post("/rank", json={"user_id": int(rng.integers(0, 500)), "temperature": 1.0})
                answers.append(event.status_code)
                event_id = event.json()["event_id"]
                shown.append(event_id)
                if rng.random() < 0.5:
                    continue  # left waiting for feedback when the server dies
                report = {"event_id": event_id, "clicks": [1, 0, 0, 0, 0]}
                answer = client.post("/feedback", json=report)
                answers.append(answer.status_code)
                if answer.status_code == 204:
                    reported.append(event_id)
            except (httpx.HTTPError, ValueError):
                return


@pytest.mark.slow
def test_sigkill_under_load_leaves_whole_parts_and_a_restart_appends(
    server: tuple[Any, str, Path], run: Path
) -> None:
    process, url, log_dir = server
    stop, answers, shown, reported = threading.Event(), [], [], []
    threads = [
        threading.Thread(target=_traffic, args=(url, stop, answers, shown, reported)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(table_parts(log_dir / "interactions")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    for thread in threads:
        thread.join()
    assert all(code in (200, 204) for code in answers)
    parts = table_parts(log_dir / "interactions")
    assert len(parts) >= 3
    rows = sum(len(pd.read_parquet(part)) for part in parts)  # each part reads back whole
    assert len(load_logs(log_dir).interactions) == rows
    assert (
        len({*shown} - {*map(str, load_logs(log_dir).interactions["slate_id"])}) > 0
    )  # some only journalled
    restarted, url = start_server(run, log_dir, "--flush-interval-s", "0.1")
    with httpx.Client(base_url=url) as client:
        event = client.post("/rank", json={"user_id": 1}).json()["event_id"]
        assert (
            client.post("/feedback", json={"event_id": event, "clicks": [0, 0, 1, 0, 0]}).status_code == 204
        )
    restarted.terminate()
    assert restarted.wait(timeout=60) == 0
    after = table_parts(log_dir / "interactions")
    assert [p.name for p in after[: len(parts)]] == [p.name for p in parts]  # a restart appends
    logged = load_logs(log_dir).interactions
    slates = logged.groupby("slate_id")["feedback"].max()
    logged_ids = set(map(str, slates.index))
    assert {*shown, event} <= logged_ids  # every slate answered is in the log, once
    # the journal is written before the answer: a request in flight at the kill may be logged but
    # never answered, at most one per connection
    assert len(logged_ids - {*shown, event}) <= len(threads)
    assert len(logged) == 5 * len(slates)
    assert (slates[list(reported)] == 1).all()  # the feedback taken before the kill is kept
    assert not list((log_dir / ".wal").glob("*.jsonl"))  # the journal is emptied once all is in parts


@pytest.mark.slow
def test_served_logs_close_the_loop_to_ope_and_a_refit(
    server: tuple[Any, str, Path], run: Path, tmp_path: Path
) -> None:
    """True-shop users over HTTP at temperature 2; OPE of the agent's sharper Plackett-Luce form
    from the logged propensities lands within its CI of the true value in the logged states."""
    from agents.ope.own import evaluate_own, own_target
    from agents.ope.truth import true_step_value
    from simulators.data.steps import build_steps
    from simulators.datasets.shop import shop_config_of
    from simulators.shop.world import ShopWorld

    process, url, log_dir = server
    traffic = simulate_users(url, run, 200, seed=4, temperature=2.0)
    assert traffic.failures == 0 and traffic.sessions >= 200
    process.terminate()
    assert process.wait(timeout=60) == 0
    logs = load_logs(log_dir)
    assert len(logs.interactions) == 5 * traffic.steps
    report = evaluate_own(str(log_dir), str(run), ["rips", "cascade_dr", "dm", "iips"], 100, 3, 0)
    assert report["propensities"] == "logged" and "iips" in report["unavailable"]
    world = ShopWorld(shop_config_of(load_logs("shop")))
    target = own_target(str(run), logs, str(log_dir))
    per_slot, _ = true_step_value(world, build_steps(logs), target, 256, np.random.default_rng(0))
    truth = float(per_slot.sum())
    for name in ("rips", "cascade_dr"):
        low, high = report["estimates"][name]["ci95"]
        assert low <= truth <= high, (name, low, high, truth)
    only_marginal = evaluate_own(str(log_dir), str(run), ["iips"], 10, 3, 0)
    assert only_marginal["estimates"] == {} and "iips" in only_marginal["unavailable"]
    refit = run_cli("simulators.fit", "--data", str(log_dir), "--out", str(tmp_path / "refit"))
    assert refit.returncode == 0, refit.stderr[-2000:]
    assert (tmp_path / "refit" / "simulator.npz").is_file()
    ope = run_cli(
        "agents.ope", "--data", str(log_dir), "--policy", str(run), "--json", str(tmp_path / "ope.json")
    )
    assert ope.returncode == 0, ope.stderr[-2000:]


# ----------------------------------------------------------------------------- the CLI
def test_serve_refuses_bad_input_before_any_work(run: Path, tmp_path: Path) -> None:
    missing = run_cli("agents.serve", str(tmp_path / "nothing"))
    assert (
        missing.returncode == 2 and "not a run folder" in missing.stderr and "Traceback" not in missing.stderr
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((run / "config.json").read_text())
    no_model = run_cli("agents.serve", str(bare))
    assert no_model.returncode == 2 and "not a RecGym agent" in no_model.stderr, no_model.stderr[-500:]
    for flags, message in ((["--port", "70000"], "--port"), (["--host", "example.com"], "--host"),
                           (["--flush-rows", "0"], "--flush-rows"), (["--backend", "tf"], "--backend")):  # fmt: skip
        bad = run_cli("agents.serve", str(run), *flags)
        assert bad.returncode == 2 and message in bad.stderr, (flags, bad.stderr[-500:])
    file_as_dir = tmp_path / "a-file"
    file_as_dir.write_text("x")
    assert run_cli("agents.serve", str(run), "--log-dir", str(file_as_dir)).returncode == 2


def test_a_freshly_trained_run_serves_exporting_itself_first(run: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("config.json", "model.zip"):
        (fresh / name).write_bytes((run / name).read_bytes())
    process, url = start_server(fresh, tmp_path / "log")
    try:
        assert httpx.post(f"{url}/rank", json={"user_id": 2}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=60)
    check = json.loads((fresh / "policy.check.json").read_text())
    assert (
        (fresh / "policy.onnx").is_file() and check["max_abs_difference"] <= 1e-3 and "model_digest" in check
    )


def test_a_taken_port_and_a_busy_log_folder_are_clear_errors(
    server: tuple[Any, str, Path], run: Path
) -> None:
    _, url, log_dir = server
    port = url.rsplit(":", 1)[1]
    taken = run_cli("agents.serve", str(run), "--port", port, "--log-dir", str(log_dir.parent / "other"))
    assert taken.returncode == 2 and "cannot listen" in taken.stderr
    busy = run_cli("agents.serve", str(run), "--log-dir", str(log_dir))
    assert busy.returncode == 2 and "another server" in busy.stderr


# ----------------------------------------------------------------------------- the log
def test_a_failed_write_keeps_its_rows_and_parts_number_past_six_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.serve.logbook import COLUMNS, Logbook
    from tests.conftest import tiny_logs

    logs = tiny_logs()
    (tmp_path / "interactions").mkdir()
    pd.DataFrame({c: [] for c in COLUMNS}).to_parquet(tmp_path / "interactions" / "part-1000000.parquet")
    (tmp_path / "interactions" / ".part-000001.parquet.x.tmp").write_text("torn")
    book = Logbook(tmp_path, logs, flush_rows=1, feedback_timeout_s=60.0)
    assert book.next_part == 1_000_001 and not list((tmp_path / "interactions").glob(".*.tmp"))
    rows = {c: [0] for c in COLUMNS} | {"user_id": [1], "item_id": [10], "session_id": ["s"], "slate_id": ["e"],
                                        "policy_version": ["v"], "timestamp": [1.0], "position": [1]}  # fmt: skip
    book.shown("e", rows, None)
    assert book.report("e", [1], [0]) is not None

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", refuse)
    with pytest.raises(OSError):
        book.flush()
    assert book.ready_rows == 1  # the rows wait for the next write
    monkeypatch.undo()
    assert book.flush() == tmp_path / "interactions" / "part-1000001.parquet"
    book.close()
    assert book.status("e") == "reported"


def test_an_empty_table_folder_is_no_table(tmp_path: Path) -> None:
    from simulators.datasets.tabular import find_table

    (tmp_path / "items").mkdir()
    (tmp_path / "items" / "cover.png").write_bytes(b"")
    assert find_table(tmp_path, "items") is None


def test_an_export_of_an_earlier_model_is_refused_not_served(run: Path, tmp_path: Path) -> None:
    from agents.policies.onnx import OnnxPolicy

    copy = tmp_path / "replaced"
    copy.mkdir()
    for name in ("config.json", "model.zip", "policy.onnx", "policy.check.json"):
        (copy / name).write_bytes((run / name).read_bytes())
    OnnxPolicy.load(copy)  # the export of this very model loads
    with zipfile.ZipFile(copy / "model.zip", "a") as archive:  # a later model (a resume, an --overwrite)
        archive.writestr("note.txt", "trained further")
    with pytest.raises(ConfigError, match="exported from an earlier model"):
        OnnxPolicy.load(copy)
