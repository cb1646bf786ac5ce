"""The one exception tree of hpo: user errors the CLI turns into a single line and exit code 2."""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "HPOError", "StorageError", "TrainingError"]


class HPOError(Exception):
    """Base class of every error caused by user input (files, flags, data, storage).

    The CLI prints ``error: <message>`` for these and exits with code 2, without a traceback.
    Messages name the file, key or value at fault and what would be accepted.
    """


class ConfigError(HPOError):
    """A study file, training config or command-line override is invalid."""


class DataError(HPOError):
    """A data set is missing, malformed or holds an unreadable image."""


class StorageError(HPOError):
    """The study storage cannot be reached or does not hold what was asked for."""


class TrainingError(HPOError):
    """Training cannot go on (for example the loss became NaN or infinite)."""
