"""One entry point for logged data: ``load_logs(name_or_path, **options) -> LoggedData``, and
:func:`resolve_data`, the same logs as one :class:`DataSource` per process.

Names: ``shop``, ``movielens``, ``obd`` (also ``obd:POLICY/CAMPAIGN``, e.g. ``obd:bts/men``)
and ``tabular``. A path is read by the first loader that recognises it (a MovieLens or RecBole
folder, a shop folder, else the tabular schema). Only a dataset's own loader knows its name:
what depends on the kind of logs asks the :class:`DataSource` (``truth``, ``bandit_rounds``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from simulators.core.errors import ConfigError, DataError
from simulators.data.logs import LoggedData
from simulators.datasets import movielens, obd, shop, tabular
from simulators.shop.world import ShopWorld

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


@dataclass(frozen=True, eq=False)
class DataSource:
    """Logs named once (a dataset name or a folder) and loaded once per process, with what every
    consumer derives from them: their fingerprint (each cache key's first part) and, for the
    shop, the ground truth that wrote them. Build it with :func:`resolve_data`."""

    spec: str
    """What the logs were named by: a dataset name (``shop:drift``) or a path."""
    path: str | None
    """The folder a named dataset was read from (MovieLens), or ``None``."""
    logs: LoggedData
    """The validated logs."""

    @property
    def fingerprint(self) -> str:
        """The logs' content hash (:attr:`LoggedData.fingerprint`, computed once)."""
        return self.logs.fingerprint

    @cached_property
    def truth(self) -> ShopWorld | None:
        """The ground truth that wrote these logs (the shop's), or ``None`` where none is known."""
        return shop.truth_of(self.logs)

    @property
    def bandit_rounds(self) -> bool:
        """Whether the logs are OBD's bandit rounds (one item per impression, two logging policies)."""
        return obd.recognises_logs(self.logs)


_SOURCES: dict[tuple[str, str | None, tuple[Any, ...]], DataSource] = {}


def _stamp(spec: str, path: str | None) -> tuple[Any, ...]:
    """What a folder's files are now (names, sizes, modification times): a folder rewritten in
    this process is read again, never served from the memo."""
    folder = Path(path or spec).expanduser()
    if not folder.exists():
        return ()
    files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)


def resolve_data(spec: str, path: str | None = None) -> DataSource:
    """The :class:`DataSource` of ``spec`` (what :func:`load_logs` takes) and, for a named
    dataset that needs one, its folder ``path``: loaded on first use, then the same object for
    the rest of the process (:func:`forget_data` drops them)."""
    key = (str(spec), path, _stamp(str(spec), path))
    if key not in _SOURCES:
        logs = load_logs(spec, **({"path": path} if path else {}))
        _SOURCES[key] = DataSource(str(spec), path, logs)
    return _SOURCES[key]


def forget_data() -> None:
    """Drop the logs :func:`resolve_data` keeps (a long loop that moves on to other logs)."""
    _SOURCES.clear()
