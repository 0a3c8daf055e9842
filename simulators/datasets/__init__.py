"""One entry point for logged data: ``load_logs(name_or_path, **options) -> LoggedData``.

Names: ``shop``, ``movielens``, ``obd`` (also ``obd:POLICY/CAMPAIGN``, e.g. ``obd:bts/men``)
and ``tabular``. A path is read by the first loader that recognises it (a MovieLens or RecBole
folder, a shop folder, else the tabular schema). Only a dataset's own loader knows its name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.core.errors import DataError
from simulators.data.logs import LoggedData
from simulators.datasets import movielens, obd, shop, tabular

Loader = Callable[..., LoggedData]

LOADERS: dict[str, Loader] = {
    "shop": shop.load,
    "movielens": movielens.load,
    "obd": obd.load,
    "tabular": tabular.load,
}
"""Loader of each dataset name; each takes keyword options only."""

_PATH_READERS: tuple[tuple[Callable[[Path], bool], Loader], ...] = (
    (movielens.recognises, movielens.load),
    (shop.recognises, shop.load),
    (obd.recognises, obd.load),
    (tabular.recognises, tabular.load),
)


def load_logs(name_or_path: str | os.PathLike[str], **options: Any) -> LoggedData:
    """Load and validate logs by dataset name (``"shop"``, ``"obd:random/all"``) or path."""
    text = str(name_or_path)
    name, _, spec = text.partition(":")
    if name in LOADERS and not Path(text).exists():
        if spec:
            options = {**options, "spec": spec}
        return LOADERS[name](**options)
    path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join(sorted(LOADERS))
        raise DataError(f"unknown dataset {text!r}: not one of [{known}] and no such path")
    for recognises, loader in _PATH_READERS:
        if recognises(path):
            return loader(path=path, **options)
    raise DataError(f"{path}: no loader recognises this path (see the tabular schema in the README)")
