"""Simulated users of the true shop calling a running ranking server over HTTP: each session's
user asks ``/rank`` for every step, the true shop answers the served slate with clicks and
purchases, and those go back through ``/feedback``. The closed loop of the serving path, for
its test and ``benchmarks.serving``."""

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
from envs.config import EnvConfig
from envs.vector import RankingVectorEnv
from simulators.core.errors import ConfigError
from simulators.datasets import load_logs


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


def simulate_users(
    url: str, run_dir: str | Path, sessions: int, seed: int, temperature: float, parallel: int = 8
) -> Traffic:
    """Play ``sessions`` sessions of true-shop users against the server at ``url`` serving the run
    ``run_dir`` (its env options give the shop, the candidates and the slate size)."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    options = {k: v for k, v in config["env_options"].items() if k in EnvConfig.__dataclass_fields__}
    if options.get("data", "shop") != "shop":
        raise ConfigError(
            "simulated users come from the true shop: serve an agent trained on the shop's logs"
        )
    options |= {
        "simulator": "true",
        "action_mode": "scores",
        "fairness_lambda": 0.0,
        "user_fairness_lambda": 0.0,
    }
    options.pop("render_mode", None)
    env = RankingVectorEnv(num_envs=parallel, **options)
    logs = load_logs(options.get("data", "shop"))
    items = IdIndex(logs.items["item_id"].to_numpy())
    user_ids = logs.users["user_id"].to_numpy()
    env.reset(seed=seed)
    core, k = env.core, env.core.config.slate_size
    episode = np.zeros(parallel, dtype=np.int64)
    finished = steps = failures = 0
    clicks = 0.0
    with httpx.Client(base_url=url, timeout=30.0) as client:
        while finished < sessions:
            actions = np.full((parallel, core.config.n_candidates), -1.0, dtype=np.float32)
            events: list[str] = []
            for b in range(parallel):
                answer = client.post(
                    "/rank",
                    json={
                        "user_id": user_ids[core.user[b]].item(),
                        "session_id": f"sim-{seed}-{b}-{episode[b]}",
                        "temperature": temperature,
                    },
                )
                if answer.status_code != 200:
                    raise ConfigError(f"/rank answered {answer.status_code}: {answer.text[:300]}")
                body = answer.json()
                rows = [items.get(i) for i in body["slate"]]
                position = {int(item): j for j, item in enumerate(core.candidates[b])}
                if any(r is None or r not in position for r in rows):
                    raise ConfigError("the server showed items outside the shop's candidates for this user")
                actions[b, [position[r] for r in rows if r is not None]] = np.linspace(1.0, 0.5, k)
                events.append(body["event_id"])
            _, _, terminated, truncated, _ = env.step(actions)
            steps += parallel
            clicks += float(core.last_click.sum())
            for b, event in enumerate(events):
                answer = client.post(
                    "/feedback",
                    json={
                        "event_id": event,
                        "clicks": core.last_click[b].astype(int).tolist(),
                        "purchases": core.last_purchase[b].astype(int).tolist(),
                    },
                )
                failures += answer.status_code != 204
            done = terminated | truncated
            finished += int(done.sum())
            episode[done] += 1
    return Traffic(finished, steps, clicks, failures)


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
