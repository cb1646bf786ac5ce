"""Stop requests from signals: never lost, never cutting a storage write, never a finished trial.

A signal handler that raised in the middle of a database write could leave the write half done:
on SQLite an interrupted transaction can keep the file locked while the worker then tries to
mark its trial failed, and every writer waits out the busy timeout. Storage calls run inside
:func:`held`; a stop requested meanwhile is raised as soon as the call returns.

A stop is recorded before it is raised, because Python can swallow the exception: a signal
that lands while a weakref callback or a ``__del__`` runs ends as "Exception ignored in ...",
and the code that was running goes on. The worker loop and the objective call
:func:`raise_if_stopped` at safe points (between trials, after every epoch), which raises a
recorded stop that is still pending, so such a stop is late, never lost.

A trial whose training ended is recorded and told in full before a stop is raised
(:func:`finishing`): throwing away a finished trial because a signal landed while its results
were being written would waste the training and leave a failed trial with no reason.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from hpo.exceptions import Interrupted

__all__ = ["finishing", "held", "raise_if_stopped", "request_stop", "reset", "stop_requested"]


class _Hold:
    """The main thread's hold and the stop requested of this process.

    Attributes:
        depth: How deep in :func:`held` blocks the main thread is.
        pending: A stop that arrived in a held block, raised when the outermost one ends.
        requested: The stop requested (its signal), kept until :func:`reset`: a raise that
            was swallowed is raised again at the next safe point.
        finishing: A finished trial is being recorded: stops wait for the next safe point.
    """

    depth = 0
    pending: int | None = None
    requested: int | None = None
    finishing = False


# Signal handlers run in the main thread and know nothing but the process: one hold per process.
_HOLD = _Hold()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Run the block without being cut by a stop request; raise it when the block ends."""
    if not _main_thread():
        yield
        return
    _HOLD.depth += 1
    try:
        yield
    finally:
        _HOLD.depth -= 1
        if _HOLD.depth == 0 and _HOLD.pending is not None and not _HOLD.finishing:
            signum, _HOLD.pending = _HOLD.pending, None
            raise Interrupted(signum)


def request_stop(signum: int, *, now: bool = False) -> None:
    """From a signal handler: record the stop; raise :class:`Interrupted` now if it may be.

    It waits while a storage call is under way (:func:`held`: raised when the call returns)
    and, unless ``now``, while a finished trial is recorded (:func:`finishing`: raised at the
    next safe point).

    Args:
        signum: The signal.
        now: A second signal: do not wait for a finished trial to be recorded.
    """
    if _HOLD.requested is None or now:
        _HOLD.requested = signum
    if now:
        _HOLD.finishing = False
    if _HOLD.depth:
        _HOLD.pending = signum
        return
    if _HOLD.finishing:
        return
    raise Interrupted(signum)


def stop_requested() -> int | None:
    """The signal of the stop requested of this process, or None."""
    return _HOLD.requested


def finishing() -> None:
    """A trial's training ended: until the next safe point (:func:`raise_if_stopped`, which
    the worker loop calls once the trial was told), a stop waits, so the trial is recorded and
    told as it ended instead of thrown away. A second signal does not wait.
    """
    if _main_thread():
        _HOLD.finishing = True


def raise_if_stopped() -> None:
    """A safe point: raise :class:`Interrupted` if a stop was requested.

    Ends :func:`finishing`. Raises a stop whose first raise was swallowed (in a weakref
    callback or ``__del__``) or waited for a finished trial. Does nothing outside the main
    thread or inside a storage call.
    """
    if not _main_thread() or _HOLD.depth:
        return
    _HOLD.finishing = False
    if _HOLD.requested is not None:
        _HOLD.pending = None
        raise Interrupted(_HOLD.requested)


def reset() -> None:
    """Forget any stop: a command that installs the signal handlers starts (or ends) here."""
    _HOLD.pending = None
    _HOLD.requested = None
    _HOLD.finishing = False
