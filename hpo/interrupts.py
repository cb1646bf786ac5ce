"""Stop requests from signals, held back while a storage call is under way.

A signal handler that raised in the middle of a database write could leave the write half done:
on SQLite an interrupted transaction can keep the file locked while the worker then tries to
mark its trial failed, and every writer waits out the busy timeout. Storage calls run inside
:func:`held`; a stop requested meanwhile is raised as soon as the call returns.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from hpo.exceptions import Interrupted

__all__ = ["held", "request_stop"]


class _Hold:
    """The main thread's hold: how deep in held blocks it is, and a stop waiting for the end."""

    depth = 0
    pending: int | None = None


# Signal handlers run in the main thread and know nothing but the process: one hold per process.
_HOLD = _Hold()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Run the block without being cut by a stop request; raise it when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _HOLD.depth += 1
    try:
        yield
    finally:
        _HOLD.depth -= 1
        if _HOLD.depth == 0 and _HOLD.pending is not None:
            signum, _HOLD.pending = _HOLD.pending, None
            raise Interrupted(signum)


def request_stop(signum: int) -> None:
    """From a signal handler: raise :class:`Interrupted` now, or when the held block ends."""
    if _HOLD.depth:
        _HOLD.pending = signum
        return
    raise Interrupted(signum)
