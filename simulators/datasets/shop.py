"""Loader of the synthetic shop: generated on first use, then read from the cache."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from simulators.core.errors import DataError
from simulators.core.storage import MANIFEST, cache_dir, load_or_build
from simulators.data.logs import LoggedData
from simulators.shop.config import ShopConfig, ShopDrift, ShopReturns, UserVariety
from simulators.shop.files import read_shop_config, write_shop
from simulators.shop.world import ShopWorld

SHOP_FILES = ("interactions.parquet", "items.parquet", "users.parquet", "ground_truth.npz", "config.json")
"""What :func:`~simulators.shop.world.write_shop` writes (its cache entry's manifest covers them)."""


def recognises(path: Path) -> bool:
    """A folder written by ``python -m simulators.shop``."""
    return path.is_dir() and (path / "config.json").is_file() and (path / "interactions.parquet").is_file()


def shop_folder(config: ShopConfig) -> Path:
    """The cache folder of a shop configuration, generated there if absent."""
    folder = cache_dir("shop", config.fingerprint())

    def build() -> Path:
        if sys.stderr.isatty():  # progress for a person; a captured stderr stays the errors' alone
            print(
                f"generating the shop ({config.n_items:,} items, {config.n_users:,} users, "
                f"{config.n_sessions:,} logged sessions) into {folder}",
                file=sys.stderr,
                flush=True,
            )
        write_shop(config, folder)
        return folder

    files = [folder / name for name in SHOP_FILES]
    return load_or_build("shop", folder / MANIFEST, files, lambda: folder, build)


def read_folder(folder: Path) -> LoggedData:
    """Read a shop folder into validated logs."""
    import pandas as pd

    config = read_shop_config(folder)
    try:
        tables = {
            name: pd.read_parquet(folder / f"{name}.parquet") for name in ("interactions", "items", "users")
        }
    except (OSError, ValueError) as err:
        raise DataError(f"{folder}: unreadable shop table ({err})") from None
    logs = LoggedData(
        tables["interactions"],
        tables["items"],
        tables["users"],
        sensitive_attributes=("gender", "age_group"),
        source=f"shop(seed={config.seed})",
        origin=folder,
    )
    return logs.validate()


def shop_config_of(logs: LoggedData) -> ShopConfig:
    """The configuration of shop logs read from a shop folder."""
    if logs.origin is None or not recognises(logs.origin):
        raise DataError(f"{logs.source}: not read from a shop folder, so its ground truth is unknown")
    return read_shop_config(logs.origin)


def truth_of(logs: LoggedData) -> ShopWorld | None:
    """The shop that wrote ``logs`` (read from a shop folder), or ``None`` for any other logs."""
    if logs.origin is None or not recognises(logs.origin):
        return None
    return ShopWorld(read_shop_config(logs.origin))


def load(
    path: str | Path | None = None,
    config: ShopConfig | None = None,
    seed: int | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
    n_sessions: int | None = None,
    spec: str | None = None,
) -> LoggedData:
    """The shop's logs: from ``path`` (a shop folder), or generated from ``config``
    (default :class:`ShopConfig`, overridden by ``seed``/``n_users``/``n_items``/``n_sessions``)
    and cached under ``$RECGYM_CACHE/shop/``. ``spec="homogeneous"`` (``load_logs("shop:homogeneous")``)
    gives every user the population mean (``UserVariety(enabled=False)``); ``spec="drift"`` turns on
    the drift of tastes over the logged days (:class:`~simulators.shop.world.ShopDrift`);
    ``spec="returns"`` makes users come back after gaps that depend on their last session
    (:class:`~simulators.shop.config.ShopReturns`)."""
    if path is not None:
        return read_folder(Path(path))
    if spec not in (None, "", "homogeneous", "drift", "returns"):
        raise DataError(
            f"shop takes only the ':homogeneous', ':drift' or ':returns' suffix, got ':{spec}'; "
            "pass seed=... or a folder"
        )
    config = config or ShopConfig()
    if spec == "homogeneous":  # every user at the population mean: the shop before users differed
        config = replace(config, variety=UserVariety(enabled=False))
    if spec == "drift":
        config = replace(config, drift=ShopDrift(enabled=True))
    if spec == "returns":
        config = replace(config, returns=ShopReturns(enabled=True))
    config = replace(
        config,
        seed=config.seed if seed is None else seed,
        n_users=config.n_users if n_users is None else n_users,
        n_items=config.n_items if n_items is None else n_items,
        n_sessions=config.n_sessions if n_sessions is None else n_sessions,
    )
    return read_folder(shop_folder(config))
