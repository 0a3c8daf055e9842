"""One entry point for logged data: ``load_logs(name_or_path, **options) -> LoggedData``.

Names: ``shop``, ``movielens``, ``obd`` (also ``obd:POLICY/CAMPAIGN``, e.g. ``obd:bts/men``)
and ``tabular``. A path is read by the first loader that recognises it (a MovieLens or RecBole
folder, a shop folder, else the tabular schema). Only a dataset's own loader knows its name.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.core.errors import ConfigError, DataError
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
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ConfigError(f"logs must be a dataset name or a path, got {name_or_path!r}")
    text = str(name_or_path)
    if not text.strip():
        raise DataError(f"unknown dataset {text!r}: an empty name (pass a dataset name or a path)")
    name, _, spec = text.partition(":")
    if name in LOADERS and not Path(text).exists():
        if spec:
            options = {**options, "spec": spec}
        return _call(LOADERS[name], name, options)
    path = Path(text).expanduser()
    if not path.exists():
        known = ", ".join(sorted(LOADERS))
        raise DataError(f"unknown dataset {text!r}: not one of [{known}] and no such path")
    if "path" in options:
        raise ConfigError(f"path given twice: {text!r} and path={options['path']!r}")
    for recognises, loader in _PATH_READERS:
        if recognises(path):
            return _call(loader, loader.__module__.rpartition(".")[2], {**options, "path": path})
    raise DataError(f"{path}: no loader recognises this path (see the tabular schema in the README)")


def _call(loader: Loader, name: str, options: dict[str, Any]) -> LoggedData:
    """``loader(**options)``, with an option it does not take one :class:`ConfigError` naming it."""
    parameters = inspect.signature(loader).parameters
    accepted = set(parameters)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if not takes_any and (unknown := sorted(set(options) - accepted)):
        raise ConfigError(
            f"unknown option(s) {unknown} for the {name} logs; options: {sorted(accepted - {'spec'})}"
        )
    if "path" in options and not isinstance(options["path"], (str, os.PathLike, type(None))):
        raise ConfigError(f"path must be a folder or file path, got {options['path']!r}")
    return loader(**options)
