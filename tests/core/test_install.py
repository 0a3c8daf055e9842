"""Another distribution's top-level ``agents`` (openai-agents installs one) shadowing RecGym's:
the ``recgym`` script and the CLIs say so in one line, exit 2, before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.core.install import shadowed_packages
from tests.conftest import REPO


def test_this_checkout_is_what_the_names_resolve_to() -> None:
    assert shadowed_packages() == []


def _run(module_args: list[str], cwd: Path, pythonpath: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    return subprocess.run(
        [sys.executable, "-m", *module_args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "command", [["simulators.core.console", "train", "ppo"], ["simulators.fit", "--help"]]
)
def test_a_shadowing_distribution_is_one_clear_line(tmp_path: Path, command: list[str]) -> None:
    fake = tmp_path / "site" / "agents"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('"""Not RecGym."""\n')
    result = _run(command, tmp_path, os.pathsep.join([str(tmp_path / "site"), str(REPO)]))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "'agents'" in lines[0] and str(fake) in lines[0] and "virtual environment" in lines[0]


def test_the_console_script_runs_a_command(tmp_path: Path) -> None:
    result = _run(["simulators.core.console", "train", "--help"], tmp_path, str(REPO))
    assert result.returncode == 0, result.stderr
    assert "--fairness-lambda" in result.stdout and "agents.train" in result.stdout
    unknown = _run(["simulators.core.console", "nope"], tmp_path, str(REPO))
    assert unknown.returncode == 2 and "unknown command" in unknown.stderr
