"""The serving path measured: load at several concurrencies (ONNX against torch), SIGKILL under
load, and the closed loop from served logs back to OPE and a refit.

``python -m benchmarks.serving --json FILE [--run RUN_DIR] [--requests 3000]``

1. **Load.** For each backend, a server (``python -m agents.serve``, its own process on a free
   loopback port) answers ``POST /rank`` (temperature 1, so the sampling path is timed) from a
   bounded load generator on this machine: ``c`` keep-alive connections each sending its share of
   ``--requests`` back to back (``c`` = 1, 8, 32), stopping by itself. Latency is the client's,
   from the request's first byte to the response's last; throughput is requests over wall time.
   The generator shares the cores with the server, as a sidecar would.
2. **SIGKILL.** Rank and feedback at concurrency 8 while parts are flushed every 0.2 s, then
   ``kill -9``: every written part must read back whole, and a restarted server must append after them.
3. **The loop.** True-shop users (``agents.serve.traffic``) play ``--sessions`` sessions against
   the server at temperature 2; the log loads with ``load_logs``; ``agents.ope`` estimates the
   agent's Plackett-Luce form (a sharper policy than the one served) from the logged prefix
   propensities, against its true value in the same logged states (``agents.ope.truth``); and
   ``python -m simulators.fit --data LOG_DIR`` refits a simulator from the log.

Without ``--run`` a small PPO agent is trained first (the figures measure the serving path, not
the policy's quality). Writes the JSON and a PNG of the latency percentiles beside it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.policies.agent import run_files
from agents.serve import BACKENDS
from benchmarks.tables import report_markdown
from simulators.core.cli import ArgumentParser, cli_entry
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_file, write_text_atomic

CONCURRENCY = (1, 8, 32)
"""Connections of the load runs."""
SERVED_TEMPERATURE = 2.0
"""Temperature of the loop's served slates (the OPE target is the agent's form at 1)."""
TARGETS = {"p99_ms_at_8": 25.0, "requests_per_s_at_8": 300.0}
"""The issue's targets for the ONNX backend (N = 50, K = 5, 2 cores)."""


def _request(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """One request on a keep-alive connection: ``(status, body)``."""
    writer.write(raw)
    await writer.drain()
    first = await reader.readline()
    if not first:
        raise ConnectionError("the server closed the connection")
    status = int(first.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length) if length else b""


async def _connection(
    host: str, port: int, bodies: list[bytes], latencies: list[float], statuses: list[int], feedback: bool
) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        for body in bodies:
            start = time.perf_counter()
            status, answer = await _exchange(reader, writer, _request("/rank", body))
            latencies.append(time.perf_counter() - start)
            statuses.append(status)
            if feedback and status == 200:
                event = json.loads(answer)
                report = {
                    "event_id": event["event_id"],
                    "clicks": [int(i == 0) for i in range(len(event["slate"]))],
                }
                status, _ = await _exchange(
                    reader, writer, _request("/feedback", json.dumps(report).encode())
                )
                statuses.append(status)
    except (ConnectionError, asyncio.IncompleteReadError):
        statuses.append(-1)  # the server went away (the SIGKILL run)
    finally:
        writer.close()


def load(
    url: str, users: np.ndarray, requests: int, concurrency: int, seed: int, feedback: bool = False
) -> dict[str, Any]:
    """``requests`` ranking requests over ``concurrency`` connections: throughput, latency percentiles, statuses."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    rng = np.random.default_rng(seed)
    chosen = users[rng.integers(0, len(users), requests)]
    bodies = [json.dumps({"user_id": u.item(), "temperature": 1.0}).encode() for u in chosen]
    latencies: list[float] = []
    statuses: list[int] = []

    async def run() -> None:
        await asyncio.gather(
            *(
                _connection(host, int(port), bodies[c::concurrency], latencies, statuses, feedback)
                for c in range(concurrency)
            )
        )

    start = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1e3
    codes, numbers = np.unique(np.array(statuses, dtype=np.int64), return_counts=True)
    counts = {int(k): int(v) for k, v in zip(codes, numbers, strict=True)}
    return {
        "concurrency": concurrency, "requests": len(latencies), "wall_s": wall,
        "requests_per_s": len(latencies) / wall,
        **{f"p{q}_ms": float(np.percentile(ms, q)) for q in (50, 95, 99)},
        "statuses": {str(k): v for k, v in counts.items()},
        "server_errors": sum(v for k, v in counts.items() if k >= 500 or k < 0),
    }  # fmt: skip


def trained_run(work: Path) -> Path:
    """A small PPO agent on the shop, exported to ONNX (for a benchmark given no ``--run``)."""
    run = work / "ppo"
    for args in (
        [
            "agents.train",
            "ppo",
            "--timesteps",
            "8192",
            "--eval-episodes",
            "50",
            "--out",
            str(run),
            "--overwrite",
        ],
        ["agents.export", str(run), "--onnx", str(run / "policy.onnx")],
    ):
        done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, check=False)
        if done.returncode:
            raise ConfigError(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")
    return run


def kill_under_load(run: Path, work: Path, users: np.ndarray) -> dict[str, Any]:
    """SIGKILL a server mid-load; check its parts, restart it on the same log and check again."""
    from agents.serve.traffic import start_server
    from simulators.datasets import load_logs
    from simulators.datasets.tabular import table_parts

    log_dir = work / "killed"
    flags = ("--flush-rows", "100", "--flush-interval-s", "0.2")
    process, url = start_server(run, log_dir, *flags)
    timer = __import__("threading").Timer(3.0, lambda: process.send_signal(signal.SIGKILL))
    timer.start()
    result = load(url, users, 100_000, 8, seed=5, feedback=True)
    timer.join()
    process.wait()
    parts = table_parts(log_dir / "interactions")
    readable = 0
    for part in parts:
        pd.read_parquet(part)  # raises on a torn part
        readable += 1
    rows_before = len(load_logs(log_dir).interactions)
    process, url = start_server(run, log_dir, *flags)
    load(url, users, 200, 4, seed=6, feedback=True)
    process.terminate()
    process.wait(timeout=60)
    after = table_parts(log_dir / "interactions")
    return {
        "requests_before_kill": result["requests"], "parts_after_kill": len(parts), "parts_readable": readable,
        "rows_after_kill": rows_before, "parts_after_restart": len(after),
        "rows_after_restart": len(load_logs(log_dir).interactions),
        "appended_after": [p.name for p in after[len(parts) : len(parts) + 2]],
    }  # fmt: skip


def covers(value: float, ci95: list[float], truth: float, truth_se: float) -> bool:
    """Whether an estimate agrees with a truth that is itself estimated: ``|value - truth| <=
    1.96 sqrt(se^2 + truth_se^2)``, the estimate's ``se`` read off its normal 95% interval."""
    se = (ci95[1] - ci95[0]) / (2 * 1.96)
    return bool(abs(value - truth) <= 1.96 * float(np.hypot(se, truth_se)))


def closed_loop(run: Path, work: Path, sessions: int, seed: int) -> dict[str, Any]:
    """Simulated true-shop users against the server, then OPE and a refit on its log."""
    from agents.ope.own import evaluate_own, own_target
    from agents.ope.truth import true_step_value
    from agents.serve.traffic import simulate_users, start_server
    from simulators.data.steps import build_steps
    from simulators.datasets import load_logs, resolve_data

    log_dir = work / "loop"
    process, url = start_server(run, log_dir)
    start = time.perf_counter()
    traffic = simulate_users(url, run, sessions, seed, SERVED_TEMPERATURE)
    played = time.perf_counter() - start
    process.terminate()
    process.wait(timeout=60)
    logs = load_logs(log_dir)
    report = evaluate_own(str(log_dir), str(run), None, 200, 3, seed)
    target = own_target(str(run), logs, str(log_dir))
    world = resolve_data("shop").truth
    assert world is not None
    per_slot, truth_se = true_step_value(world, build_steps(logs), target, 256, np.random.default_rng(seed))
    truth = float(per_slot.sum())
    estimates = {
        name: {**entry, "covers_truth": covers(entry["value"], entry["ci95"], truth, truth_se)}
        for name, entry in dict(report["estimates"]).items()  # type: ignore[call-overload]
    }
    fit_dir = work / "refit"
    fitted = subprocess.run(
        [sys.executable, "-m", "simulators.fit", "--data", str(log_dir), "--out", str(fit_dir), "--report"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    fidelity = json.loads((fit_dir / "fidelity.json").read_text()) if fitted.returncode == 0 else None
    return {
        "sessions": traffic.sessions, "slates": traffic.steps, "failures": traffic.failures,
        "seconds": played, "served_temperature": SERVED_TEMPERATURE,
        "served_clicks_per_slate": traffic.clicks_per_step, "logged_rows": len(logs.interactions),
        "target": "the agent's Plackett-Luce form (agents.ope.targets.agent_policy, temperature 1)",
        "truth": truth, "truth_se": truth_se, "naive": report["naive"], "estimates": estimates,
        "unavailable": report.get("unavailable", {}),
        "refit": {"returncode": fitted.returncode, "fidelity": fidelity, "stderr_tail": fitted.stderr[-500:]},
    }  # fmt: skip


def plot(report: dict[str, Any], path: Path) -> None:
    """Latency percentiles per concurrency, one panel per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulators.core.plots import save_png

    figure, axes = plt.subplots(1, len(BACKENDS), figsize=(10, 3.6), sharey=True)
    for axis, backend in zip(axes, BACKENDS, strict=True):
        runs = report["load"][backend]
        x = np.arange(len(runs))
        for offset, q in zip((-0.25, 0, 0.25), (50, 95, 99), strict=True):
            axis.bar(x + offset, [r[f"p{q}_ms"] for r in runs], 0.25, label=f"p{q}")
        axis.set_xticks(x, [f"c={r['concurrency']}\n{r['requests_per_s']:.0f} req/s" for r in runs])
        axis.axhline(TARGETS["p99_ms_at_8"], color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"{backend}")
        axis.set_ylabel("latency (ms)")
        axis.legend(frameon=False)
    figure.suptitle("POST /rank on 2 cores (N = 50, K = 5, temperature 1)")
    save_png(figure, path, dpi=120)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Load, SIGKILL and the loop; write the JSON and the PNG."""
    parser = ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json", type=Path, required=True, help="where to write the results (JSON; a PNG beside it)"
    )
    parser.add_argument(
        "--run", type=Path, default=None, help="a run folder to serve (default: train a small PPO agent)"
    )
    parser.add_argument(
        "--requests", type=int, default=3000, help="ranking requests per load run (default: 3000)"
    )
    parser.add_argument(
        "--sessions", type=int, default=300, help="sessions of the closed loop (default: 300)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the load's users and the loop (default: 0)"
    )
    args = parser.parse_args(argv)
    check_output_file(
        args.json, "--json", inputs=run_files(args.run) if args.run else (), beside=(".md", ".png")
    )
    if args.requests < 100 or args.sessions < 10:
        raise ConfigError("--requests must be >= 100 and --sessions >= 10")
    if args.run is not None and not (args.run / "config.json").is_file():
        raise ConfigError(f"--run {args.run}: not a run folder of agents.train")
    from agents.serve.traffic import start_server
    from simulators.datasets import load_logs

    with tempfile.TemporaryDirectory(prefix="recgym-serving-") as scratch:
        work = Path(scratch)
        run = args.run if args.run is not None else trained_run(work)
        if not (run / "policy.onnx").is_file():
            raise ConfigError(
                f"--run {run}: no policy.onnx (python -m agents.export {run} --onnx {run / 'policy.onnx'})"
            )
        config = json.loads((run / "config.json").read_text())
        users = load_logs(config["env_options"].get("data", "shop")).users["user_id"].to_numpy()
        report: dict[str, Any] = {"targets": TARGETS, "load": {}}
        for backend in BACKENDS:
            process, url = start_server(run, work / f"load-{backend}", "--backend", backend)
            load(url, users, 200, 4, seed=99)  # warm up (first calls compile and fill caches)
            report["load"][backend] = [load(url, users, args.requests, c, args.seed) for c in CONCURRENCY]
            process.terminate()
            process.wait(timeout=60)
            for row in report["load"][backend]:
                print(f"{backend:5} c={row['concurrency']:<3} {row['requests_per_s']:7.0f} req/s  p50 {row['p50_ms']:.1f} ms  "
                      f"p95 {row['p95_ms']:.1f} ms  p99 {row['p99_ms']:.1f} ms  5xx {row['server_errors']}")  # fmt: skip
        at_8 = next(r for r in report["load"]["onnx"] if r["concurrency"] == 8)
        report["meets_targets"] = {
            "p99_ms_at_8": at_8["p99_ms"] <= TARGETS["p99_ms_at_8"],
            "requests_per_s_at_8": at_8["requests_per_s"] >= TARGETS["requests_per_s_at_8"],
            "no_5xx": all(r["server_errors"] == 0 for runs in report["load"].values() for r in runs),
        }
        report["sigkill"] = kill_under_load(run, work, users)
        print(f"sigkill: {report['sigkill']}")
        report["loop"] = closed_loop(run, work, args.sessions, args.seed)
        loop = report["loop"]
        print(
            f"loop: {loop['sessions']} sessions, truth {loop['truth']:.3f} ± {1.96 * loop['truth_se']:.3f}, naive {loop['naive']:.3f}"
        )
        for name, entry in loop["estimates"].items():
            print(
                f"  {name:11} {entry['value']:.3f} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}] agrees with the truth: {entry['covers_truth']}"
            )
    report["run"] = str(args.run) if args.run else "a small PPO agent trained by the benchmark (8192 steps)"
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(
        args.json.with_suffix(".md"),
        report_markdown("Serving: load, SIGKILL, the closed loop (benchmarks.serving)", report),
    )
    plot(report, args.json.with_suffix(".png"))
    print(f"wrote {args.json} and {args.json.with_suffix('.png')}")


if __name__ == "__main__":
    main()
