"""``python -m simulators.fit --data shop|movielens|PATH --out DIR [--report]``: fit a simulator
from logs and write ``simulator.npz``, ``dynamics.json``, ``fidelity.json`` and ``fidelity.md``."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from encoders.text import TEXT_ENCODERS
from simulators.core.cli import cli_entry
from simulators.datasets import load_logs
from simulators.fit.config import FitConfig, ResponseNetConfig
from simulators.fit.pipeline import fit_and_report
from simulators.fit.report import fidelity_markdown, write_outputs


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``python -m simulators.fit --data shop|movielens|PATH --out DIR [--report]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--report", action="store_true", help="print the fidelity table")
    parser.add_argument("--history-encoder", choices=["mean", "lstm"], default="mean")
    parser.add_argument("--text-encoder", choices=list(TEXT_ENCODERS), default="minilm")
    parser.add_argument("--epochs", type=int, default=ResponseNetConfig().optim.epochs)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logs = load_logs(args.data)
    base = ResponseNetConfig()
    net = replace(
        base,
        history_encoder=args.history_encoder,
        optim=replace(base.optim, epochs=args.epochs, seed=args.seed),
    )
    config = FitConfig(text_encoder=args.text_encoder, net=net, seed=args.seed)
    simulator, report = fit_and_report(logs, config)
    write_outputs(simulator, report, args.out)
    if args.report:
        print(fidelity_markdown(report))
    print(f"wrote {args.out / 'simulator.npz'} and {args.out / 'fidelity.json'}")


if __name__ == "__main__":
    main()
