"""``python -m simulators.fit --data shop|movielens|PATH --out DIR [--report]``: fit a simulator
from logs and write ``simulator.npz``, ``dynamics.json``, ``fidelity.json`` and ``fidelity.md``."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from encoders.optimiser import OptimiserConfig
from encoders.text import TEXT_ENCODERS
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.storage import check_output_folder, input_files
from simulators.datasets import load_logs
from simulators.fit.cache import SIMULATOR_FILES
from simulators.fit.config import HISTORY_ENCODERS, FitConfig, ResponseNetConfig
from simulators.fit.pipeline import fit_and_report
from simulators.fit.report import fidelity_markdown, write_outputs


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Flags: ``--data``, ``--out``, ``--report``, then every field of :class:`FitConfig`, of its
    :class:`ResponseNetConfig` and of the network's optimiser (``--seed`` seeds the fit and the
    optimiser alike)."""
    parser = ArgumentParser(prog="python -m simulators.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--report", action="store_true", help="print the fidelity table")
    add_config_arguments(parser, FitConfig, choices={"text_encoder": TEXT_ENCODERS})
    net_flags = parser.add_argument_group("response network")
    add_config_arguments(
        net_flags, ResponseNetConfig, dest_prefix="net_", choices={"history_encoder": HISTORY_ENCODERS}
    )
    base = ResponseNetConfig()
    add_config_arguments(
        parser.add_argument_group("optimiser of the response network"), OptimiserConfig, skip=("seed",),
        dest_prefix="optim_", defaults=asdict(base.optim),
    )  # fmt: skip
    args = parser.parse_args(argv)
    check_output_folder(
        args.out, "--out", inputs=input_files(args.data), writes=SIMULATOR_FILES
    )  # before the work
    logs = load_logs(args.data)
    fit = config_kwargs(args, FitConfig)
    optim = replace(base.optim, **config_kwargs(args, OptimiserConfig, dest_prefix="optim_"))
    if "seed" in fit:
        optim = replace(optim, seed=fit["seed"])
    net = replace(base, **config_kwargs(args, ResponseNetConfig, dest_prefix="net_"), optim=optim)
    config = FitConfig(**fit, net=net)
    simulator, report = fit_and_report(logs, config)
    write_outputs(simulator, report, args.out)
    if args.report:
        print(fidelity_markdown(report))
    print(f"wrote {args.out / 'simulator.npz'} and {args.out / 'fidelity.json'}")


if __name__ == "__main__":
    main()
