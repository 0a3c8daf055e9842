"""The layer contracts in ``pyproject.toml`` hold, and they can fail: a copy of the packages with
a cycle hidden in a function body, or torch imported in the data layer, breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("simulators", "encoders", "envs", "agents", "benchmarks")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages under ``root`` (with the repository's contracts)."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("lint-imports")),
            "--config",
            str(REPO / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)},
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.csv*")
        )
    return root


def test_the_repository_keeps_its_contracts() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a cycle hidden in a function body: the runtime simulator would import the pipeline
        (
            "simulators/fit/simulator.py",
            "def _late():\n    from simulators.fit.pipeline import fit_simulator\n",
            "No cycles",
        ),
        ("simulators/data/logs.py", "import torch\n", "Core and data layers"),  # torch in the data layer
        ("simulators/core/metrics.py", "from simulators.data import logs\n", "Layers"),  # core reaching up
        ("envs/core.py", "import torch\n", "environments import no torch"),
        ("agents/ope/estimators.py", "from agents.ope import targets\n", "OPE estimators"),
        # a policy reaching up into the room that trains policies
        ("agents/policies/baselines.py", "from agents.training import train\n", "Rooms of agents"),
        (
            "agents/evaluation/sessions.py",
            "def _late():\n    from agents.studies import backend\n",
            "Rooms of agents",
        ),
    ],
)
def test_a_broken_contract_fails_the_lint(copy_root: Path, module: str, line: str, broken: str) -> None:
    path = copy_root / module
    original = path.read_text()
    try:
        path.write_text(original + "\n\n" + line)
        result = lint_imports(copy_root)
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert any(broken in row and "BROKEN" in row for row in result.stdout.splitlines()), result.stdout[-3000:]
