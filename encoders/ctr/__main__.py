"""``python -m encoders.ctr train --data shop --out DIR`` and
``python -m encoders.ctr eval --model DIR --data shop --json FILE``: train the multi-task CTR
model, or score a saved one on the test split next to single-task models trained the same way."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from encoders.ctr.config import ARCHITECTURES, CTRConfig
from encoders.ctr.train import CTR_FILES, evaluate_ctr, load_ctr, train_ctr
from encoders.device import DEVICE_CHOICES
from encoders.optimiser import OptimiserConfig
from encoders.text import TEXT_ENCODERS
from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.metrics import roc_auc
from simulators.core.storage import check_output_file, check_output_folder, input_files, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.data.steps import build_steps
from simulators.datasets import load_logs
from simulators.datasets.shop import truth_of
from simulators.rollout import replay_probabilities
from simulators.shop.world import ShopWorld


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``train`` and ``eval`` subcommands (see the module docstring)."""
    parser = ArgumentParser(prog="python -m encoders.ctr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, help="train a model, or evaluate one")
    train = commands.add_parser("train", help="train on logs and save the model")
    train.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    train.add_argument("--out", type=Path, required=True, help="folder for the trained model")
    choices = {"architecture": ARCHITECTURES, "text_encoder": TEXT_ENCODERS, "device": DEVICE_CHOICES}
    add_config_arguments(train, CTRConfig, choices=choices)
    add_config_arguments(
        train.add_argument_group("optimiser"),
        OptimiserConfig,
        dest_prefix="optim_",
        defaults=asdict(CTRConfig().optim),
    )
    evaluate = commands.add_parser("eval", help="score a saved model on the test split")
    evaluate.add_argument("--model", type=Path, required=True, help="a folder written by `train`")
    evaluate.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    evaluate.add_argument("--json", type=Path, required=True, help="where to write the scores")
    evaluate.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    if args.command == "train":
        check_output_folder(args.out, "--out", inputs=input_files(args.data), writes=CTR_FILES)
    else:
        check_output_file(args.json, "--json", inputs=input_files(args.model, args.data))
    logs = load_logs(args.data)
    if args.command == "train":
        optim = replace(CTRConfig().optim, **config_kwargs(args, OptimiserConfig, dest_prefix="optim_"))
        config = CTRConfig(**config_kwargs(args, CTRConfig), optim=optim)
        trained = train_ctr(logs, config)
        trained.save(args.out)
        print(json.dumps({"tasks": list(trained.tasks), **trained.history}, indent=2))
        return
    trained = load_ctr(args.model, logs, args.device)
    scores = evaluate_ctr(trained, logs)
    single = {}
    for task in trained.tasks:
        alone = train_ctr(logs, replace(trained.config, tasks=(task,)))
        single[task] = evaluate_ctr(alone, logs)[task]
    report: dict[str, Any] = {"tasks": {}}
    for task, figures in scores.items():
        entry = dict(figures)
        key = "auc" if "auc" in figures else "rmse"
        entry[f"{key}_single_task"] = single[task][key]
        report["tasks"][task] = entry
    truth = truth_of(logs)
    if truth is not None:
        report["ground_truth_click_auc"] = _shop_ground_truth_auc(logs, truth)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _shop_ground_truth_auc(logs: LoggedData, world: ShopWorld) -> float:
    """Click AUC of the shop's true model on the same test rows."""
    test = build_steps(logs.split_by_time(0.1, 0.1).test, 20, history_from=logs)
    truth, _ = replay_probabilities(test, world)
    return roc_auc(test.clicks[test.slot_mask], truth[test.slot_mask])


if __name__ == "__main__":
    main()
