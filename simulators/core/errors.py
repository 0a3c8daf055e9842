"""The errors a user can cause (a path, an option, a data file), as opposed to bugs.

Every CLI turns them into one line on stderr and exit code 2 (:func:`simulators.core.cli.cli_entry`).
"""

from __future__ import annotations

from dataclasses import fields

EXIT_USER_ERROR = 2


class RecGymError(Exception):
    """Base class of errors caused by input (a path, an option, a data file), not by a bug."""


class DataError(RecGymError, ValueError):
    """Logged data that break the schema: the message names the table, column and a row."""


class ConfigError(RecGymError, ValueError):
    """An option or configuration value outside its allowed range."""


class DataWarning(UserWarning):
    """Logs that load, but only after the loader derived or filled in something (a missing
    column and what stands for it): said once, and kept in ``LoggedData.notes`` for reports."""


MAX_SEED = 2**31 - 100_000
"""Largest seed a config accepts: runs derive further seeds from it (``seed + 30_000`` and the
like) that must stay below the tuning users' seeds (from ``2**31``)."""


def check_seed(name: str, value: object) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer seed in ``[0, MAX_SEED]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{name} must be an integer in [0, {MAX_SEED}], got {value!r}")


def check_at_least_one(config: object, names: tuple[str, ...], prefix: str = "") -> None:
    """Raise :class:`ConfigError` for the first of ``config``'s fields ``names`` below 1, naming
    it as ``prefix + name`` (``"--"`` and dashes for a CLI's flags, ``"ShopConfig."`` for a class)."""
    for name in names:
        value = getattr(config, name)
        if value < 1:
            shown = name.replace("_", "-") if prefix == "--" else name
            raise ConfigError(f"{prefix}{shown} must be >= 1, got {value}")


_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,)}


def check_field_types(config: object) -> None:
    """Raise :class:`ConfigError` for an option of the wrong type (a string ``"0.5"`` for a number,
    ``2.5`` for a count, ``1`` for a switch): each dataclass field's annotation, ``int``, ``float``,
    ``str`` or ``bool``, or ``X | None``; an int given for a float is stored as that float."""
    for f in fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        expected, optional = str(f.type).removesuffix(" | None"), str(f.type).endswith("| None")
        if value is None and optional:
            continue
        if expected == "bool":
            if not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true or false, got {value!r} ({type(value).__name__})")
            continue
        allowed = _TYPES.get(expected)
        if allowed is None:
            continue
        if isinstance(value, bool) or not isinstance(value, allowed):
            kind = f"{expected} or None" if optional else expected
            raise ConfigError(f"{f.name} must be {kind}, got {value!r} ({type(value).__name__})")
        if expected == "float" and isinstance(value, int):  # an int for a float: checked as a float
            try:
                object.__setattr__(config, f.name, float(value))
            except OverflowError:
                raise ConfigError(f"{f.name} must be a finite float, got {value!r}") from None
