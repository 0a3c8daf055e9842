"""``python -m simulators.shop --out DIR [--seed S] [--users N] [--items M] [--sessions K]``:
generate the shop and write its logs (Parquet), ground truth and configuration."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simulators.core.cli import cli_entry
from simulators.shop.world import ShopConfig, write_shop


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``python -m simulators.shop --out DIR [--seed S] [--users N] [--items M] [--sessions K]``."""
    parser = argparse.ArgumentParser(prog="python -m simulators.shop", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=ShopConfig.seed)
    parser.add_argument("--users", type=int, default=ShopConfig.n_users)
    parser.add_argument("--items", type=int, default=ShopConfig.n_items)
    parser.add_argument("--sessions", type=int, default=ShopConfig.n_sessions)
    args = parser.parse_args(argv)
    config = ShopConfig(seed=args.seed, n_users=args.users, n_items=args.items, n_sessions=args.sessions)
    start = time.perf_counter()
    logs, _ = write_shop(config, args.out)
    summary = logs.summary() | {"seconds": round(time.perf_counter() - start, 2), "out": str(args.out)}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
