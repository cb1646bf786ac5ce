"""The main loop of a worker process a supervisor started: run trials, tell it what happens."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from optuna.trial import FrozenTrial

from hpo.study import WorkerResult
from hpo.workers._protocol import Done, Epoch, Message, Ready, TrialEnd, TrialStart, Wait, encode
from hpo.workers._request import WorkerRequest

__all__ = ["run_child", "watch_parent"]

logger = logging.getLogger(__name__)


def watch_parent(parent_pid: int, *, interval: float = 1.0) -> None:
    """SIGTERM this process when ``parent_pid`` is gone (the supervisor was killed).

    Children run in their own session, so a Ctrl-C on the terminal reaches only the parent;
    without this a parent killed by SIGKILL would leave its workers running unsupervised.
    """

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                logger.warning("supervisor (pid %d) is gone: stopping", parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="hpo-watch-parent", daemon=True).start()


def run_child(
    request: WorkerRequest,
    *,
    parent: int,
    out: IO[str],
    trial_line: Callable[[FrozenTrial], str],
) -> WorkerResult:
    """Run ``request`` as a child of supervisor ``parent``: one message per line on ``out``.

    ``out`` gets :class:`Ready` once the study is open, :class:`TrialStart`, one :class:`Epoch`
    per epoch and :class:`TrialEnd` for every trial, :class:`Wait` while the study has no free
    slot, and :class:`Done` when the loop ends. Nothing else is written there.

    Args:
        request: What to run.
        parent: The supervisor's pid: this process stops (SIGTERM) when it is gone.
        out: Where the messages go (the process's stdout).
        trial_line: What the worker's front end says about a finished trial (sent with it).

    Raises:
        HPOError: The request cannot run (before :class:`Ready`), or the worker stopped after
            too many failed trials in a row (after :class:`Done`).
    """
    watch_parent(parent)

    def send(message: Message) -> None:
        out.write(encode(message) + "\n")
        out.flush()

    session = request.open_session(warn=False)  # the supervisor has warned once
    session.objective.on_event = lambda event: send(_message(event))
    worker = session.objective.worker
    send(Ready(host=worker["host"], pid=worker["pid"], device=worker["device"]))
    result = session.run(
        n_trials=request.n_trials,
        timeout=request.timeout,
        on_trial_end=lambda t: send(
            TrialEnd(trial=t.number, state=t.state.name, line=trial_line(t))
        ),
        on_wait=lambda running: send(Wait(running=running)),
    )
    send(Done(ran=len(result.ran), stopped_by=result.stopped_by))
    session.raise_for_failures(result)
    return result


def _message(event: dict[str, Any]) -> Message:
    """The message for an event of the objective (``hpo.objective.Objective.on_event``).

    The objective reports with plain dicts; this is the one place that reads them.
    """
    if event["event"] == "trial_start":
        return TrialStart(trial=event["trial"])
    return Epoch(trial=event["trial"], fold=event["fold"], epoch=event["epoch"], f1=event["f1"])
