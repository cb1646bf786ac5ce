"""The one exception tree of hpo: user errors the CLI turns into a single line and exit code 2."""

from __future__ import annotations

import signal

__all__ = [
    "ConfigError",
    "DataError",
    "HPOError",
    "Interrupted",
    "StorageError",
    "TrainingError",
]


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


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM asked the process to stop.

    A ``KeyboardInterrupt``, so everything that already stops cleanly on Ctrl-C (Optuna marking
    the running trial failed, the objective recording why) does the same for SIGTERM.

    Attributes:
        signum: The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def reason(self) -> str:
        """What a trial stopped by this signal records as its ``fail_reason``."""
        if self.signum == signal.SIGINT:
            return "interrupted (Ctrl-C)"
        return f"interrupted ({self.signame})"

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum
