"""Simulated users of the true shop calling a ranking server (over HTTP, or in process): each
session's user asks ``/rank`` for every step, the true shop answers the served slate with clicks
and purchases, and those go back through ``/feedback``. The closed loop of the serving path, for
its test, ``benchmarks.serving`` and ``agents.adapt``; and ``start_server``, a real server process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from agents.serve.ranker import IdIndex
from envs.config import known_options
from simulators.core.errors import ConfigError
from simulators.datasets import resolve_data
from simulators.rollout import rollout


@dataclass(frozen=True)
class Traffic:
    """What the simulated users did."""

    sessions: int
    """Sessions finished."""
    steps: int
    """Slates served (``/rank`` calls)."""
    clicks: float
    """Clicks on them, in the true shop."""
    failures: int
    """Answers other than 200 (rank) and 204 (feedback)."""

    @property
    def clicks_per_step(self) -> float:
        """Mean clicks per served slate."""
        return self.clicks / max(self.steps, 1)


class LocalClient:
    """The API's ``/rank`` and ``/feedback`` on a :class:`~agents.serve.service.Service` in this
    process: the serving path's ranking and logging without HTTP (``agents.adapt``'s deployments)."""

    def __init__(self, service: Any):
        self.service = service

    def post(self, path: str, json: dict[str, Any]) -> Answer:
        """``/rank`` or ``/feedback`` with the request's JSON body."""
        from agents.serve.ranker import RequestError

        if path == "/rank":
            try:
                return Answer(200, self.service.rank(**json))
            except RequestError as err:
                return Answer(422, {"detail": [{"loc": ["body", *err.field_path], "msg": str(err)}]})
        refused = self.service.feedback(**json)
        if refused is None:
            return Answer(204, None)
        return Answer(refused.status, {"detail": [{"loc": ["body", *refused.loc], "msg": refused.message}]})

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclass(frozen=True)
class Answer:
    """What :class:`LocalClient` answers, shaped like an ``httpx.Response``."""

    status_code: int
    body: Any

    def json(self) -> Any:
        """The answer's JSON body."""
        return self.body

    @property
    def text(self) -> str:
        """The body as text."""
        return json.dumps(self.body)


def simulate_users(
    server: str | LocalClient, run_dir: str | Path, sessions: int, seed: int, temperature: float,
    shop: str | None = None, true_day: float | None = None,
) -> Traffic:  # fmt: skip
    """Play ``sessions`` sessions of true-shop users against ``server`` (a running server's URL or
    a :class:`LocalClient`) serving the run ``run_dir``: users drawn by their activity, each
    step's slate asked of ``/rank`` (session ``sim-SEED-I``), answered by the true shop's users
    (:func:`~simulators.rollout.rollout`, the shop's own response and dynamics, so any item can be
    shown) and reported to ``/feedback``. ``shop``: the shop's logs (default: the run's);
    ``true_day``: the day of a drifting shop (default: the logs' last)."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    options = known_options(config["env_options"])
    spec = shop or str(options.get("data", "shop"))
    source = resolve_data(spec)
    logs, truth = source.logs, source.truth
    if truth is None:
        raise ConfigError(
            f"simulated users come from the true shop: {spec!r} is not a shop (pass the shop the run's logs came from)"
        )
    world = truth.at(truth.config.days if true_day is None else true_day)
    items = IdIndex(logs.items["item_id"].to_numpy())
    user_ids = logs.users["user_id"].to_numpy()
    rng = np.random.default_rng(seed)
    users = rng.choice(len(user_ids), size=sessions, p=world.user_activity / world.user_activity.sum())
    events: list[str] = []
    failures, slates, clicks = 0, 0, 0.0
    client_of = httpx.Client(base_url=server, timeout=30.0) if isinstance(server, str) else server
    with client_of as client:

        def choose(active: np.ndarray, g: np.random.Generator) -> np.ndarray:
            del g
            shown = []
            events.clear()
            for i in active:
                body = {
                    "user_id": user_ids[users[i]].item(),
                    "session_id": f"sim-{seed}-{i}",
                    "temperature": temperature,
                }
                answer = client.post("/rank", json=body)
                if answer.status_code != 200:
                    raise ConfigError(f"/rank answered {answer.status_code}: {answer.text[:300]}")
                shown.append([items.get(item) for item in answer.json()["slate"]])
                events.append(answer.json()["event_id"])
            return np.array(shown, dtype=np.int64)

        max_steps = int(options.get("max_steps", 20))
        for step in rollout(world, users, choose, max_steps, rng, world.config.n_categories):
            slates += len(step.active)
            clicks += float(step.response.click.sum())
            for j, event in enumerate(events):
                report = {"event_id": event, "clicks": step.response.click[j].astype(int).tolist(),
                          "purchases": step.response.purchase[j].astype(int).tolist()}  # fmt: skip
                failures += client.post("/feedback", json=report).status_code != 204
    return Traffic(sessions, slates, clicks, failures)


def start_server(
    run_dir: str | Path, log_dir: str | Path, *flags: str, timeout_s: float = 300.0
) -> tuple[Any, str]:
    """``python -m agents.serve RUN_DIR`` on a free loopback port, as its own process: ``(process, url)``
    once it answers ``/healthz``. Stop it with ``process.terminate()`` (flushes) or ``.kill()``."""
    command = [
        sys.executable,
        "-m",
        "agents.serve",
        str(run_dir),
        "--port",
        "0",
        "--log-dir",
        str(log_dir),
        *flags,
    ]
    errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: progress bars never fill it up
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()  # "serving ... on http://HOST:PORT ..." once the socket is bound
    match = re.search(r"on (http://[^ ]+)", line)
    if match is None:
        process.kill()
        process.wait()
        errors.seek(0)
        raise ConfigError(f"agents.serve did not start: {(line + errors.read()).strip()[-2000:]}")
    url = match.group(1)
    wait_until_up(url, timeout_s, process)
    return process, url


def wait_until_up(url: str, timeout_s: float = 300.0, process: Any = None) -> None:
    """Poll ``url/healthz`` until the server answers (or ``process`` exits, or the time is up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ConfigError(f"the server exited with code {process.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ConfigError(f"no answer from {url}/healthz within {timeout_s:.0f} s")
