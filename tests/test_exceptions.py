"""The exception tree: user errors are HPOErrors; an interrupt is a KeyboardInterrupt."""

from __future__ import annotations

import signal

import pytest

from hpo.exceptions import (
    ConfigError,
    DataError,
    HPOError,
    Interrupted,
    StorageError,
    TrainingError,
)


@pytest.mark.parametrize("error", [ConfigError, DataError, StorageError, TrainingError])
def test_every_user_error_is_an_hpo_error(error: type[HPOError]) -> None:
    with pytest.raises(HPOError, match=r"^data/x\.yaml: bad key$"):
        raise error("data/x.yaml: bad key")


def test_an_interrupt_stops_what_ctrl_c_stops() -> None:
    with pytest.raises(KeyboardInterrupt):
        raise Interrupted(signal.SIGTERM)
    assert not issubclass(Interrupted, HPOError)


@pytest.mark.parametrize(
    ("signum", "name", "reason", "code"),
    [
        (signal.SIGINT, "SIGINT", "interrupted (Ctrl-C)", 130),
        (signal.SIGTERM, "SIGTERM", "interrupted (SIGTERM)", 143),
    ],
)
def test_an_interrupt_names_its_signal(signum: int, name: str, reason: str, code: int) -> None:
    stop = Interrupted(signum)
    assert (stop.signum, stop.signame, stop.reason, stop.exit_code) == (signum, name, reason, code)
