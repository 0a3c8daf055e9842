"""Shared fixtures: a private cache folder per test session and small, hand-made logs."""

from __future__ import annotations

import os

from agents.studies.backend import THREAD_VARIABLES, TRIAL_THREADS  # loads neither torch nor numba

if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers (make test): one thread each, as Ray trials
    # set before torch and numba load; the CLIs the tests start inherit them
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(TRIAL_THREADS)))
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

import envs
from simulators.data.logs import LoggedData
from simulators.shop.config import ShopConfig

REPO = Path(__file__).resolve().parents[1]
settings.register_profile("recgym", deadline=None, database=None)
settings.load_profile("recgym")  # no per-example deadline: a busy machine (or a parallel worker) is not a bug
SMALL_SHOP = ShopConfig(seed=3, n_users=300, n_items=200, n_sellers=30, n_sessions=600)
"""A shop small enough for unit tests (about a second to generate)."""


def _point_cache_at(folder: Path) -> Iterator[Path]:
    previous = os.environ.get("RECGYM_CACHE")
    os.environ["RECGYM_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("RECGYM_CACHE", None)
    else:
        os.environ["RECGYM_CACHE"] = previous


# ``make test`` hands whole files to two workers in this order (``--dist loadfile
# --no-loadscope-reorder``), each taking the next file as it finishes one; the rest follow in
# collection order. The longest first, so that the two workers end together (seconds from
# ``pytest --durations=0`` on two workers, the registered worlds built first).
FILE_ORDER = (
    "tests/benchmarks/test_benchmarks.py",  # 263 s
    "tests/agents/test_distill.py",  # 213 s
    "tests/envs/test_ranking.py",  # 140 s
    "tests/agents/test_train.py",  # 137 s
    "tests/agents/test_serve.py",  # 115 s
    "tests/agents/test_adapt.py",  # 91 s
    "tests/fit/test_sessions.py",  # 84 s
    "tests/agents/test_backend.py",  # 78 s
    "tests/fit/test_fit.py",  # 63 s
    "tests/envs/test_retention.py",  # 58 s
    "tests/reliability/test_second_round.py",  # 54 s
    "tests/agents/ope/test_trained_target.py",  # 41 s
    "tests/agents/test_own_logs_howto.py",  # 36 s
    "tests/agents/test_evaluate.py",  # 35 s
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--build-worlds",
        action="store_true",
        help="build the registered envs' worlds (fits, CTR models, candidates) in the test cache before "
        "the first test, split between two xdist workers (make test passes it)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the files of :data:`FILE_ORDER` first, in its order (a stable sort: tests within a file
    keep theirs)."""
    rank = {name: i for i, name in enumerate(FILE_ORDER)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``$RECGYM_CACHE`` at a fresh folder so tests never read a user's cache. Parallel
    workers (``pytest -n``) share one: an entry two of them ask for at once is built once (the
    cache's lock), as it is for Ray trials."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = tmp_path_factory.getbasetemp().parent / "recgym-cache"  # the run's, above each worker's
        shared.mkdir(exist_ok=True)
        yield from _point_cache_at(shared)
    else:
        yield from _point_cache_at(tmp_path_factory.mktemp("recgym-cache"))


@pytest.fixture(scope="session", autouse=True)
def registered_worlds(request: pytest.FixtureRequest, private_cache: Path) -> None:
    """With ``--build-worlds``, build what ``ecommerce-v0`` and ``movielens-v0`` read before the first
    test. Most files need one of them, and one worker building an entry while the other waits on its
    lock idles a core for minutes; here the embedded shop's fit (on one worker) and its CTR model (on
    the other) are built at once, then MovieLens' world beside the shop's candidates."""
    if not request.config.getoption("--build-worlds"):
        return
    # imported here: they load torch, which a run without the flag need not pay for at start
    from encoders.ctr.train import load_or_train_ctr
    from encoders.text import catalog_vectors
    from envs.config import EnvConfig
    from envs.world import build_world, data_source
    from simulators.datasets.movielens import installed_recbole_folder
    from simulators.fit.config import FitConfig

    shop = EnvConfig(data=envs.env_data("ecommerce-v0"))
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        build_world(shop)  # the fit first, then the candidates from the other worker's CTR model
    else:  # the CTR model reads only the catalog's text vectors (the fit's item table), not the fit
        logs = data_source(shop).logs
        load_or_train_ctr(logs, embeddings=catalog_vectors(logs, FitConfig().text_encoder, progress=False))
        if installed_recbole_folder() is not None:
            build_world(EnvConfig(data=envs.env_data("movielens-v0")))


@pytest.fixture(scope="session", autouse=True)
def sb3_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """SB3 models built with no ``tensorboard_log`` log to ``$SB3_LOGDIR``, else a new folder in the
    system's temp directory per ``learn``: point it at the session's temp folder instead."""
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if previous is None:
        os.environ.pop("SB3_LOGDIR", None)
    else:
        os.environ["SB3_LOGDIR"] = previous


@pytest.fixture(scope="module")
def own_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache of the module's own, for tests that damage entries on purpose: no other test
    reads what they break."""
    yield from _point_cache_at(tmp_path_factory.mktemp("own-cache"))


def tiny_logs() -> LoggedData:
    """Two users, three items, two sessions of two slates of two slots."""
    interactions = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2],
            "item_id": [10, 11, 12, 10, 11, 12],
            "timestamp": [100, 100, 130, 130, 500, 500],
            "session_id": [7, 7, 7, 7, 8, 8],
            "position": [1, 2, 1, 2, 1, 2],
            "click": [1, 0, 0, 1, 0, 0],
            "purchase": [0, 0, 0, 1, 0, 0],
            "propensity": [0.5, 0.5, 0.25, 0.25, 1.0, 1.0],
            "slate_id": [0, 0, 1, 1, 2, 2],
        }
    )
    items = pd.DataFrame(
        {"item_id": [10, 11, 12], "text": ["red shoe", "blue shoe", "lamp"], "provider": ["a", "a", "b"]}
    )
    users = pd.DataFrame({"user_id": [1, 2], "gender": ["f", "m"]})
    return LoggedData(interactions, items, users, sensitive_attributes=("gender",))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ...`` in the repo with the test cache; capture text output."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        check=False,
    )


MENU = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0,  # greedy pCTR
        1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 1.0,  # pCTR and pCVR, one item per topic first
        0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0)  # fmt: skip  # popularity
"""A three-entry ``action_menu`` (weight vectors over ``envs.config.WEIGHTS``) for ``menu`` envs in tests."""


def mode_options(mode: str) -> dict[str, object]:
    """Env options of ``action_mode=mode`` (a ``menu`` env gets :data:`MENU`)."""
    return {"action_mode": mode, **({"action_menu": MENU} if mode == "menu" else {})}


TINY = ["--timesteps", "512", "--n-envs", "4", "--eval-episodes", "16", "--curve-episodes", "16", "--eval-freq", "256",
        "--tuning-sessions", "8", "--tuning-generations", "1"]  # fmt: skip
"""The smallest training budget that runs every stage of ``agents.train`` (smoke runs)."""


@pytest.fixture(scope="session")
def tiny_ppo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny PPO run on the shop (:data:`TINY`, a checkpoint at 512 steps), trained once per
    test session. Never change it: take a private copy (:func:`copy_run`)."""
    folder = tmp_path_factory.mktemp("tiny-ppo") / "ppo"
    trained = run_cli("agents.train", "ppo", *TINY, "--checkpoint-freq", "512", "--out", str(folder))
    assert trained.returncode == 0, trained.stderr[-2000:]
    return folder


def copy_run(run: Path, folder: Path) -> Path:
    """A private copy of the run folder ``run`` at ``folder`` (a run folder may be moved whole)."""
    shutil.copytree(run, folder)
    return folder
