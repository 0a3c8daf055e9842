"""``python -m agents.serve RUN_DIR``: serve a trained policy over HTTP (uvicorn), logging every
shown slate with its propensities for off-policy evaluation and the next simulator fit."""

from __future__ import annotations

import ipaddress
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from agents.policies.agent import run_files
from agents.policies.distilled import is_distilled_run, read_record
from agents.serve import BACKENDS
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_folder

LOG_FILES = ("items.parquet", "users.parquet", "interactions")
"""What a serving log folder holds (``agents.serve.logbook``)."""


@dataclass(frozen=True)
class ServeConfig:
    """The server's options (the flags of ``python -m agents.serve``)."""

    host: str = "127.0.0.1"
    """Address to listen on (loopback by default; 0.0.0.0 for every interface)."""
    port: int = 8000
    """TCP port (0: any free one, printed at start)."""
    log_dir: str = ""
    """Folder of the serving log (tabular schema; load_logs reads it); empty = RUN_DIR/served."""
    backend: str = "onnx"
    """onnx (the exported graph by onnxruntime: RUN_DIR/policy.onnx, exported on the first serve of a run
    whose model has no current export) or torch; a distilled run's scorer runs in scikit-learn either way."""
    seed: int = 0
    """Seed of the slates sampled at temperature > 0."""
    flush_rows: int = 2_000
    """Rows held before a part is written (a part is also written every flush interval)."""
    flush_interval_s: float = 1.0
    """Seconds between the background writes of what is ready."""
    feedback_timeout_s: float = 300.0
    """Seconds a slate waits for its feedback before it is written without clicks."""
    max_body_bytes: int = 65_536
    """Largest request body accepted (413 beyond)."""
    max_sessions: int = 100_000
    """Named sessions whose state is kept (least recently used dropped first)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {BACKENDS}, got {self.backend!r}")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise ConfigError(f"--host {self.host!r}: not an IP address (or localhost)") from None
        if not 0 <= self.port <= 65_535:
            raise ConfigError(f"--port must lie in [0, 65535], got {self.port}")
        for name in ("flush_rows", "max_body_bytes", "max_sessions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("flush_interval_s", "feedback_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Check the options and the run, build the ranker, then serve until stopped (Ctrl-C / SIGTERM
    flush the log; SIGKILL loses only what was not flushed)."""
    parser = ArgumentParser(prog="python -m agents.serve", description=__doc__.splitlines()[0])
    parser.add_argument(
        "run_dir", type=Path, help="a run folder written by agents.train, or by agents.distill"
    )
    add_config_arguments(parser, ServeConfig, choices={"backend": BACKENDS})
    args = parser.parse_args(argv)
    config = ServeConfig(**config_kwargs(args, ServeConfig))
    log_dir = Path(config.log_dir) if config.log_dir else args.run_dir / "served"
    check_output_folder(log_dir, "--log-dir", inputs=run_files(args.run_dir), writes=LOG_FILES)
    distilled = is_distilled_run(args.run_dir)
    if distilled:
        read_record(args.run_dir)  # checked (its scorer's digest too) before any work
    elif not (args.run_dir / "config.json").is_file():
        raise ConfigError(
            f"{args.run_dir}: not a run folder of agents.train (no config.json) or agents.distill (no distilled.json)"
        )
    from agents.serve.export import export_is_current, export_run
    from agents.serve.logbook import Logbook, claim

    onnx = args.run_dir / "policy.onnx"
    if config.backend == "onnx" and not distilled and not export_is_current(args.run_dir, onnx):
        why = "from an earlier model" if onnx.is_file() else "none yet"
        check = export_run(args.run_dir, onnx)
        print(
            f"exported {onnx} ({why}); ONNX and torch agree to {check['max_abs_difference']:.1e}",
            file=sys.stderr,
        )

    claimed = claim(log_dir)  # a busy log folder or a taken port: errors before the ranker loads
    listener = _listen(config.host, config.port)
    import uvicorn

    from agents.serve.app import Limits, create_app
    from agents.serve.ranker import Ranker
    from simulators.datasets.tabular import read_table, table_parts

    restarts = len(table_parts(log_dir / "interactions")) if (log_dir / "interactions").is_dir() else 0
    ranker = Ranker(args.run_dir, config.backend, config.seed, config.max_sessions, stream=restarts)
    logbook = Logbook(log_dir, ranker.logs, config.flush_rows, config.feedback_timeout_s, claimed)
    recalled = ""
    if ranker.config.horizon_days > 0 and table_parts(log_dir / "interactions"):
        # a retention agent reads each user's visits: a restart recalls them from the log so far
        slates = ranker.recall(read_table(log_dir / "interactions"))
        recalled = f"; users' visits recalled from its {slates:,} slates"
    limits = Limits(config.max_body_bytes, config.flush_interval_s, config.feedback_timeout_s)
    app = create_app(ranker, logbook, limits)
    host, port = listener.getsockname()[:2]
    print(
        f"serving {args.run_dir} ({ranker.backend}, policy {ranker.version}) on http://{host}:{port} "
        f"(docs: /docs); logging to {log_dir}{recalled}",
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    # uvicorn shuts down gracefully on SIGTERM / SIGINT (the log flushed), then raises the signal
    # again under the handlers it found: these make that a clean exit (code 0).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    server.run(sockets=[listener])


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _listen(host: str, port: int) -> socket.socket:
    """A bound, listening socket on ``host:port`` (port 0: a free one); :class:`ConfigError` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: a response's header and body writes go out at once, not
    # one delayed-ACK period (40 ms) apart.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


if __name__ == "__main__":
    main()
