"""The command line of a benchmark run by a plan dataclass: ``--json FILE``, ``--quick``, one
flag per plan field and the backend's (``--backend serial|ray``, ``--address``, ``--cpus``)
(``policies``, ``fairness``, ``ray_scaling``, ``headroom``, ``counterfactual``, ``distill``,
``td_signal``), and how a benchmark writes its report."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from agents.studies.backend import add_backend_arguments, backend_of
from simulators.core.cli import ArgumentParser, add_config_arguments, config_kwargs
from simulators.core.storage import check_output_file, write_text_atomic

P = TypeVar("P")


def parse_plan(
    prog: str, description: str, plan: type[P], quick: Mapping[str, Any], argv: list[str] | None
) -> tuple[argparse.Namespace, P]:
    """The parsed flags and the plan: ``quick``'s values under ``--quick``, then the flags given;
    ``--json`` is checked before any work."""
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "--json",
        type=Path,
        required=True,
        help="where to write the results (JSON; FILE.md and FILE.png beside it)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smaller default plan ({dict(quick)}); flags given still apply",
    )
    add_config_arguments(parser, plan)
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    check_output_file(args.json, "--json", beside=(".md", ".png"))
    return args, plan(**{**(quick if args.quick else {}), **config_kwargs(args, plan)})


def write_outputs(
    path: Path, report: dict[str, Any], markdown: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], None],
) -> None:  # fmt: skip
    """Write a benchmark's ``report`` as JSON at ``path``, its tables beside it (``.md``) and its
    figure (``.png``), each atomically; print the tables."""
    write_text_atomic(path, json.dumps(report, indent=1) + "\n")
    write_text_atomic(path.with_suffix(".md"), markdown(report) + "\n")
    plot(report, path.with_suffix(".png"))
    print(markdown(report))


def run_in_process(
    prog: str, doc: str | None, plan: type[P], quick: Mapping[str, Any], argv: list[str] | None,
    measure: Callable[[P], dict[str, Any]], markdown: Callable[[dict[str, Any]], str],
    plot: Callable[[dict[str, Any], Path], None],
) -> None:  # fmt: skip
    """A benchmark that runs in this one process (batched): parse its plan (the backend's flags
    checked, not used), ``measure`` it and write the report (the plan, what ``measure`` returns,
    the seconds it took) with :func:`write_outputs`."""
    args, chosen = parse_plan(prog, (doc or "").splitlines()[0], plan, quick, argv)
    backend_of(args)
    started = time.perf_counter()
    report = {"plan": asdict(chosen), **measure(chosen)}  # type: ignore[call-overload]
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_outputs(args.json, report, markdown, plot)
