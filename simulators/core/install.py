"""Whether RecGym's top-level package names resolve to this installation.

Other distributions install the same names (``openai-agents`` installs a top-level ``agents``);
when one shadows RecGym's, ``make``, the ``recgym`` script and every CLI say so in one line
instead of failing later with ``No module named agents.train``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from simulators.core.errors import RecGymError

PACKAGES = ("simulators", "encoders", "envs", "agents")
"""RecGym's installed top-level packages."""
ROOT = Path(__file__).resolve().parents[2]
"""The folder holding this installation's packages."""


class InstallationError(RecGymError):
    """A RecGym package name resolves to another distribution's files."""


def shadowed_packages() -> list[tuple[str, str]]:
    """``(name, where it resolves)`` for each RecGym package that is not this installation's."""
    wrong = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        locations = list(spec.submodule_search_locations or []) if spec is not None else []
        if not locations:
            wrong.append((name, "nowhere" if spec is None else str(spec.origin)))
        elif Path(locations[0]).resolve() != ROOT / name:
            wrong.append((name, locations[0]))
    return wrong


def check_installation() -> None:
    """Raise :class:`InstallationError` naming the first package that another distribution shadows."""
    for name, where in shadowed_packages():
        raise InstallationError(
            f"the module {name!r} resolves to {where}, not to RecGym ({ROOT / name}): another installed "
            f"distribution provides a top-level {name!r} (openai-agents installs 'agents'); install RecGym "
            "in a dedicated virtual environment (`make install` makes .venv)"
        )
