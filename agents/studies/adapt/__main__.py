"""``python -m agents.adapt`` (also ``python -m agents.studies.adapt``): check the options, then
run (or resume) the weekly loop of :mod:`agents.studies.adapt`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agents.studies.adapt import __doc__ as ADAPT_DOC
from agents.studies.adapt.config import AdaptConfig
from agents.studies.adapt.loop import adapt
from agents.studies.adapt.report import markdown, pooled_markdown
from agents.studies.backend import add_backend_arguments, backend_of
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError
from simulators.core.storage import check_output_folder


def resumed(given: dict[str, Any]) -> AdaptConfig:
    """The configuration of the run ``--resume`` continues: its own ``config.json`` (the flags
    given must agree with it; one error names those that do not)."""
    folder = Path(given["out"])
    file = folder / "config.json"
    if not file.is_file():
        raise ConfigError(f"--resume {folder}: nothing to resume (no adapt run there: no config.json)")
    try:
        saved = AdaptConfig(**json.loads(file.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"--resume {folder}: its config.json is not an adapt run's ({err})") from None
    differ = sorted(
        f"--{k.replace('_', '-')}" for k, v in given.items() if k != "out" and getattr(saved, k) != v
    )
    if differ:
        raise ConfigError(
            f"--resume {folder}: the run's config.json sets {', '.join(differ)} otherwise; a resumed run keeps its own"
        )
    return saved


def parser() -> ArgumentParser:
    """The flags of ``python -m agents.adapt``: every :class:`AdaptConfig` field, ``--resume`` and
    the backend's."""
    flags = ArgumentParser(
        prog="python -m agents.adapt", description=(ADAPT_DOC or "").strip().splitlines()[0]
    )
    add_config_arguments(flags, AdaptConfig)
    flags.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last finished week"
    )
    add_backend_arguments(flags)
    return flags


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Check the options, then run (or resume) the weekly loop."""
    args = parser().parse_args(argv)
    given = config_kwargs(args, AdaptConfig)
    config = resumed(given) if args.resume else AdaptConfig(**given)
    backend = backend_of(args)
    check_output_folder(config.out, "--out")
    report = adapt(config, resume=args.resume, backend=backend)
    pooled = report.get("pooled")
    print(pooled_markdown(pooled) if pooled else markdown(report["weeks"], report["recovery"]))


if __name__ == "__main__":
    main()
