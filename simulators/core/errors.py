"""The errors a user can cause (a path, an option, a data file), as opposed to bugs.

Every CLI turns them into one line on stderr and exit code 2 (:func:`simulators.core.cli.cli_entry`).
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class RecGymError(Exception):
    """Base class of errors caused by input (a path, an option, a data file), not by a bug."""


class DataError(RecGymError, ValueError):
    """Logged data that break the schema: the message names the table, column and a row."""


class ConfigError(RecGymError, ValueError):
    """An option or configuration value outside its allowed range."""
