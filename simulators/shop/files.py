"""The shop on disk: ``python -m simulators.shop --out DIR`` writes its logs (Parquet), the
ground truth (``ground_truth.npz``) and its configuration (``config.json``); the shop loader and
cache read them back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from simulators.core.errors import DataError
from simulators.core.storage import atomic_path, write_text_atomic
from simulators.data.logs import LoggedData
from simulators.shop.config import ShopConfig
from simulators.shop.world import ShopWorld


def write_shop(config: ShopConfig, out: Path) -> tuple[LoggedData, ShopWorld]:
    """Generate the shop and write ``interactions/items/users.parquet``, ``ground_truth.npz``
    and ``config.json`` into ``out`` (each file atomically)."""
    world = ShopWorld(config)
    logs = world.simulate_logs()
    out.mkdir(parents=True, exist_ok=True)
    for name, table in (("interactions", logs.interactions), ("items", logs.items), ("users", logs.users)):
        with atomic_path(out / f"{name}.parquet") as tmp:
            table.to_parquet(tmp, index=False)
    with atomic_path(out / "ground_truth.npz") as tmp, tmp.open("wb") as handle:
        arrays: dict[str, Any] = world.ground_truth_arrays()
        np.savez(handle, **arrays)
    write_text_atomic(out / "config.json", json.dumps(json.loads(config.to_json()), indent=2) + "\n")
    return logs, world


def read_shop_config(folder: Path) -> ShopConfig:
    """The :class:`ShopConfig` stored in a folder written by :func:`write_shop`."""
    path = folder / "config.json"
    if not path.is_file():
        raise DataError(f"{folder}: not a shop folder (no config.json)")
    return ShopConfig.from_json(path.read_text(encoding="utf-8"))
