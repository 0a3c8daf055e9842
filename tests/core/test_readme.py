"""The README keeps working: every ``python -m`` or ``recgym`` command in its code blocks parses
with that command's own parser (its flags and choices exist), and its command table lists the
console's commands (the one list). Its Python snippets: ``test_readme_snippets.py``."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from typing import Any
from unittest import mock

import pytest

from simulators.core.console import COMMANDS
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def commands() -> list[list[str]]:
    """Each ``python -m MODULE ...`` or ``recgym NAME ...`` line of the README's bash blocks, as
    ``[module, args...]``."""
    found = []
    for language, body in BLOCKS:
        if language != "bash":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #")[0], comments=False) if line.strip() else []
            if words[:2] == ["python", "-m"]:
                found.append(words[2:])
            elif words[:1] == ["recgym"] and len(words) > 1 and words[1] in COMMANDS:
                found.append([COMMANDS[words[1]][0], *words[2:]])
    return found


class Parsed(Exception):
    """Raised in place of the work, once a command's flags parsed."""


def parse_only(module_name: str, argv: list[str]) -> None:
    """Run the command's ``main`` up to its parser: the flags must parse, nothing else runs."""
    module = importlib.import_module(module_name)
    main = getattr(module, "main", None) or importlib.import_module(f"{module_name}.__main__").main
    real = argparse.ArgumentParser.parse_args

    def parse(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        real(self, args, namespace)
        raise Parsed

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse), pytest.raises(Parsed):
        main(argv)


@pytest.mark.parametrize("command", commands(), ids=lambda c: " ".join(c)[:60])
def test_every_readme_command_parses(command: list[str]) -> None:
    parse_only(command[0], command[1:])


def test_the_readme_shows_its_commands() -> None:
    modules = {c[0] for c in commands()}
    assert {
        "agents.train",
        "agents.evaluate",
        "agents.ope",
        "agents.export",
        "agents.serve",
        "agents.adapt",
    } <= modules


def test_the_command_table_is_the_consoles() -> None:
    table = README[README.index("### Commands") :]
    for name, (module, _) in COMMANDS.items():
        assert f"`python -m {module}" in table, (
            f"{name} ({module}) is missing from the README's command table"
        )
    assert "recgym check" in table
