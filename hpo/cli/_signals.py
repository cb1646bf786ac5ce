"""SIGINT and SIGTERM stop a command cleanly: they raise ``Interrupted`` in the main thread."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from hpo.interrupts import request_stop, reset

__all__ = ["stop_on_signals"]

_log = logging.getLogger("hpo")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SECOND_SIGNAL_GRACE = 5.0
"""Seconds a second signal gives the process to stop before the signal's default action ends
it (marking the running trial failed takes well under a second)."""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``Interrupted``; the second one stops without waiting.

    Installed even where SIGINT arrives ignored (a worker started with ``nohup ... &`` by a
    non-interactive shell inherits SIG_IGN, and ``kill -INT`` would do nothing), and for SIGTERM,
    which by default kills Python without cleanup (``docker compose down``, cluster schedulers).

    The first signal is recorded, then raised (once the storage call under way returns; once a
    finished trial is recorded): if Python swallows the raise (in a weakref callback or
    ``__del__``), the worker raises it at its next safe point (:mod:`hpo.interrupts`). A second
    signal raises at once (still never inside a storage write) and gives both signals back to
    the system: a third one ends the process on the spot, and so does the second itself if the
    process has not stopped after :data:`SECOND_SIGNAL_GRACE` seconds. The previous handlers
    come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    fallback: list[threading.Timer] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:
            _log.warning(
                "%s again: stopping now (one more ends the process at once)",
                signal.Signals(signum).name,
            )
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # Should this raise be swallowed too, the signal comes back with its default
            # action: the process ends even if nothing here can stop it.
            timer = threading.Timer(SECOND_SIGNAL_GRACE, os.kill, (os.getpid(), signum))
            timer.daemon = True
            timer.start()
            fallback.append(timer)
            request_stop(signum, now=True)
            return
        received.append(signum)
        request_stop(signum)  # at once, or when the storage call under way returns

    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    reset()
    for sig in _SIGNALS:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for timer in fallback:
            timer.cancel()
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        reset()
