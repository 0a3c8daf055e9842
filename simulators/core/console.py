"""The ``recgym`` console script, and the check that RecGym's package names are RecGym's.

``recgym train ppo --env ecommerce-v0`` runs ``python -m agents.train ppo --env ecommerce-v0``
(likewise ``evaluate``, ``ope``, ``fit``, ``shop``, ``ctr``, ``text``). Commands are run by module
name (:mod:`runpy`), so this bottom-layer module imports nothing of RecGym above it. Other
distributions install the same top-level names (``openai-agents`` installs ``agents``); when one
of them shadows RecGym's, every entry point says so in one line instead of a ``ModuleNotFoundError``.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence

from simulators.core.errors import EXIT_USER_ERROR
from simulators.core.install import ROOT, InstallationError, check_installation

COMMANDS = {
    "train": ("agents.train", "train an SB3 agent and compare it with the static baselines"),
    "distill": ("agents.distill", "distil a rollout planner into a fast policy"),
    "evaluate": ("agents.evaluate", "evaluate a policy online in a simulator"),
    "ope": ("agents.ope", "off-policy evaluation on logged data"),
    "export": ("agents.export", "export a trained policy to ONNX"),
    "serve": ("agents.serve", "serve a trained policy over HTTP, logging what it shows"),
    "adapt": ("agents.adapt", "keep optimising a policy week by week as the shop's tastes drift"),
    "fit": ("simulators.fit", "fit a user simulator from logs and report its fidelity"),
    "shop": ("simulators.shop", "generate the synthetic shop's logs and ground truth"),
    "ctr": ("encoders.ctr", "train or evaluate the multi-task CTR model"),
    "text": ("encoders.text", "encode item texts with BERT"),
}
"""Subcommand -> (module run as ``python -m``, what it does): RecGym's user commands, the one list
(``recgym --help``, the README's command table and ``tests/core/test_readme.py`` read it)."""


def usage() -> str:
    """The ``recgym --help`` text."""
    lines = [
        "usage: recgym COMMAND [ARGS...]   (recgym COMMAND --help for a command's flags)",
        "",
        "commands:",
    ]
    lines += [f"  {name:<9} {about}   (python -m {module})" for name, (module, about) in COMMANDS.items()]
    lines.append(f"  {'check':<9} print where RecGym's packages resolve (a shadowing distribution fails it)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Check the installation, then run the subcommand's module with the remaining arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        check_installation()
    except InstallationError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    if args[0] == "check":
        print(f"RecGym's packages resolve to {ROOT}")
        return
    if args[0] not in COMMANDS:
        print(f"error: unknown command {args[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
    module = COMMANDS[args[0]][0]
    sys.argv = [f"recgym {args[0]}", *args[1:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
