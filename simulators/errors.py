"""Errors a user can cause, and the one way every CLI reports them.

User errors end a command with one line on stderr and exit code 2; bugs still raise.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

EXIT_USER_ERROR = 2


class RecGymError(Exception):
    """Base class of errors caused by input (a path, an option, a data file), not by a bug."""


class DataError(RecGymError, ValueError):
    """Logged data that break the schema: the message names the table, column and a row."""


class ConfigError(RecGymError, ValueError):
    """An option or configuration value outside its allowed range."""


F = TypeVar("F", bound=Callable[..., object])


def cli_entry(main: F) -> F:
    """Wrap a CLI ``main`` so a :class:`RecGymError` prints one line and exits with code 2."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return main(*args, **kwargs)
        except RecGymError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
