"""Where a study's trials run (the benchmarks' seeds and lambdas, ``agents.adapt``'s A/B arms):
one after another in this process (``serial``, the default), or each as a Ray task (``ray``: a
local Ray started with the CPUs given, or the cluster at ``--address``).

A trial is a module-level function and its arguments (a seed, an algorithm, a lambda): Ray
pickles it by reference, so its workers import RecGym from this checkout (``PYTHONPATH``) and
share ``$RECGYM_CACHE``. Every trial runs with one thread (torch, numba, the BLAS) under both
backends, so the same seeds give the same numbers bit for bit: a thread count changes the
order of float sums in torch's CPU kernels. By default the first trial runs in this process before
the rest are spread, so the caches every trial reads (the shop, the fit, the CTR model, the tuned
baselines) are built once, not raced for. Ray starts once per :meth:`Backend.map`, or once for a
whole study inside ``with backend.running():``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from simulators.core.errors import ConfigError

BACKENDS = ("serial", "ray")
"""How trials run."""
TRIAL_THREADS = 1
"""Torch threads of every trial (both backends alike: see the module docstring)."""
REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
"""Set to :data:`TRIAL_THREADS` in every Ray worker: trials side by side with a thread pool each
of the machine's size oversubscribe the cores, and spinning pools then make each trial several
times slower than alone (measured: 4x for two PPO trials on 2 cores)."""


def in_trial_threads(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` with torch, numba and the BLAS at :data:`TRIAL_THREADS` threads (restored afterwards)."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(TRIAL_THREADS)
    numba.set_num_threads(min(TRIAL_THREADS, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        with threadpool_limits(TRIAL_THREADS):
            return function(*args)
    finally:
        torch.set_num_threads(previous[0])
        numba.set_num_threads(previous[1])


@dataclass(frozen=True)
class Backend:
    """A backend and, for Ray, where it runs."""

    name: str = "serial"
    """``serial`` or ``ray``."""
    address: str | None = None
    """A running Ray cluster's address (``ray``); ``None`` starts a local one."""
    cpus: int | None = None
    """CPUs of the local Ray (one trial each); ``None`` = this machine's."""

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(f"--backend must be one of {BACKENDS}, got {self.name!r}")
        if self.address is not None and self.name != "ray":
            raise ConfigError("--address names a Ray cluster: it needs --backend ray")
        if self.cpus is not None and self.cpus < 1:
            raise ConfigError(f"--cpus must be >= 1, got {self.cpus}")
        if self.name == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                raise ConfigError("--backend ray needs Ray: pip install 'recgym[ray]'") from None

    def map(
        self, function: Callable[..., T], trials: Sequence[tuple[Any, ...]], first_here: bool = True
    ) -> list[T]:
        """``[function(*trial) for trial in trials]``, in order, on this backend. ``first_here``:
        run the first trial in this process before spreading the rest (it builds the caches they
        read); pass ``False`` when those caches exist already."""
        if self.name == "serial" or len(trials) <= 1:
            return [in_trial_threads(function, *trial) for trial in trials]
        import ray

        first = [in_trial_threads(function, *trials[0])] if first_here else []
        with self.running():
            task = ray.remote(num_cpus=1)(in_trial_threads)
            futures = [task.remote(function, *trial) for trial in trials[len(first) :]]
            waiting = list(futures)
            with tqdm(
                total=len(trials),
                initial=len(first),
                desc=f"trials on ray ({function.__name__})",
                unit="trial",
            ) as bar:
                while waiting:
                    done, waiting = ray.wait(waiting, num_returns=1)
                    bar.update(len(done))
            return [*first, *ray.get(futures)]

    @contextmanager
    def running(self) -> Iterator[Backend]:
        """Ray up for the block (started here unless it already runs; shut down after only if so)."""
        if self.name != "ray":
            yield self
            return
        import ray

        if ray.is_initialized():
            yield self
            return
        env_vars = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        env_vars |= {name: str(TRIAL_THREADS) for name in THREAD_VARIABLES}
        if "RECGYM_CACHE" in os.environ:
            env_vars["RECGYM_CACHE"] = os.environ["RECGYM_CACHE"]
        ray.init(
            address=self.address, num_cpus=None if self.address else (self.cpus or os.cpu_count()),
            include_dashboard=False, logging_level=logging.ERROR, runtime_env={"env_vars": env_vars},
            log_to_driver=False,  # the trials' progress bars, forwarded, cost more than the trials
        )  # fmt: skip
        try:
            yield self
        finally:
            ray.shutdown()


def add_backend_arguments(parser: Any) -> None:
    """``--backend``, ``--address`` and ``--cpus`` on a study's parser."""
    parser.add_argument(
        "--backend", choices=BACKENDS, default="serial", help="where trials run (default: serial)"
    )
    parser.add_argument(
        "--address", default=None, help="a running Ray cluster's address (with --backend ray)"
    )
    parser.add_argument(
        "--cpus", type=int, default=None, help="CPUs of a local Ray (default: this machine's)"
    )


def backend_of(args: Any) -> Backend:
    """The :class:`Backend` the parsed flags name."""
    return Backend(args.backend, args.address, args.cpus)
