"""SIGINT and SIGTERM stop a command cleanly: they raise ``Interrupted`` in the main thread."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from hpo.interrupts import request_stop

__all__ = ["stop_on_signals"]

_log = logging.getLogger("hpo")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into ``Interrupted``; later ones are logged and ignored.

    Installed even where SIGINT arrives ignored (a worker started with ``nohup ... &`` by a
    non-interactive shell inherits SIG_IGN, and ``kill -INT`` would do nothing), and for SIGTERM,
    which by default kills Python without cleanup (``docker compose down``, cluster schedulers).
    One signal is enough: a second one while the running trial is being marked failed would
    leave it RUNNING, so it is only logged. The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            _log.warning(
                "%s again: already stopping, waiting for the running trials to be marked failed",
                signal.Signals(signum).name,
            )
            return
        received.append(signum)
        request_stop(signum)  # at once, or when the storage call under way returns

    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    for sig in _SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
