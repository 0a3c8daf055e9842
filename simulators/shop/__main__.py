"""``python -m simulators.shop --out DIR [--seed S] [--users N] [--items M] [--sessions K]``:
generate the shop and write its logs (Parquet), ground truth and configuration."""

from __future__ import annotations

import json
import time
from pathlib import Path

from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.storage import check_output_folder
from simulators.dynamics import DynamicsParams
from simulators.shop.config import ShopConfig
from simulators.shop.files import write_shop

SIZE_FLAGS = {"n_users": "--users", "n_items": "--items", "n_sessions": "--sessions"}
"""Short flags of the sizes (the names the README has always used)."""


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """Every :class:`ShopConfig` field is a flag (``--users``, ``--items`` and ``--sessions`` for the
    sizes), the true dynamics' fields too (``--dynamics-...``)."""
    parser = ArgumentParser(prog="python -m simulators.shop", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_config_arguments(parser, ShopConfig, flags=SIZE_FLAGS)
    group = parser.add_argument_group("true dynamics", "the within-session dynamics of the shop's users")
    add_config_arguments(group, DynamicsParams, flag_prefix="dynamics-", dest_prefix="dynamics_")
    args = parser.parse_args(argv)
    check_output_folder(args.out, "--out")
    dynamics = DynamicsParams(**config_kwargs(args, DynamicsParams, dest_prefix="dynamics_"))
    config = ShopConfig(**config_kwargs(args, ShopConfig), dynamics=dynamics)
    start = time.perf_counter()
    logs, _ = write_shop(config, args.out)
    summary = logs.summary() | {"seconds": round(time.perf_counter() - start, 2), "out": str(args.out)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
