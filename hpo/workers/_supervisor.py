"""Worker processes of one machine: start them, turn their output into events, restart, stop.

Each child is an ordinary worker of the study (the same claims, heartbeats and study-wide
total) that writes :mod:`protocol <hpo.workers._protocol>` messages on its stdout. The
supervisor reads them, restarts a worker that died when asked, and forwards SIGINT or SIGTERM
to every child so that each marks its running trial failed before it exits.

A child that dies leaves its trial RUNNING; the supervisor fails it at once and hands it to the
storage's heartbeat retry callback, exactly what a stale heartbeat would do a grace period later
(workers on other machines still rely on the heartbeat).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TypeAlias

import optuna

from hpo.interrupts import raise_if_stopped
from hpo.study import fail_trials_of_worker
from hpo.tune import TuneSession
from hpo.workers._plan import WorkerPlan
from hpo.workers._protocol import Done, Message, TrialEnd, decode
from hpo.workers._request import WorkerRequest

__all__ = [
    "Exited",
    "Output",
    "Started",
    "Supervisor",
    "SupervisorResult",
    "WorkerEvent",
    "describe_exit",
    "supervise",
    "supervisor_session",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """The supervisor started the worker's process.

    Attributes:
        pid: Its process id.
        restart: 0 for the first start, then how often it was restarted.
    """

    pid: int
    restart: int


@dataclass(frozen=True)
class Output:
    """A line the worker wrote that is no message (a warning, an ``error: ...`` line)."""

    line: str


@dataclass(frozen=True)
class Exited:
    """The worker's process exited.

    Attributes:
        code: Its exit code (negative: the signal that killed it).
        restarting: Whether the supervisor starts it again.
        failed_trials: The trials it left running, failed and re-queued by the supervisor.
    """

    code: int
    restarting: bool
    failed_trials: tuple[int, ...] = ()


Event: TypeAlias = Message | Started | Output | Exited
"""What a worker said (a :data:`Message`), or what the supervisor saw of its process."""


@dataclass(frozen=True)
class WorkerEvent:
    """Something a worker did or said.

    Attributes:
        worker: Its plan.
        event: What.
    """

    worker: WorkerPlan
    event: Event


@dataclass
class SupervisorResult:
    """How the workers ended, by worker name.

    Attributes:
        exit_codes: The last exit code of each worker.
        restarts: How often each was restarted.
        errors: The last ``error: ...`` line each worker wrote (without the prefix): what a
            worker that exits 2 (a user error) says is wrong.
        stopped_by: Why each worker's loop ended, from its :class:`Done` message (``n_trials``,
            ``timeout``, ``exhausted``, ``failures``).
        trials_ended: Trials the workers finished, failed ones included.
    """

    exit_codes: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopped_by: dict[str, str] = field(default_factory=dict)
    trials_ended: int = 0


def describe_exit(code: int) -> str:
    """``exit 2``, or ``killed by SIGKILL`` for a negative return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def supervisor_session(
    request: WorkerRequest, *, advance: Callable[[int, int], None] | None = None
) -> TuneSession:
    """The supervisor's own session of ``request``, on the CPU: it trains nothing.

    Everything a user can get wrong fails here, once, before any worker starts and before any
    image is decoded (the study file, the data's file table, the stored fingerprint); then the
    data is decoded into the machine's shared cache once, and the workers open it warm. A study
    that already holds its total decodes nothing.

    Args:
        request: What the workers will run.
        advance: Told ``advance(done, total)`` while the images are decoded.
    """
    return replace(request, device="cpu", threads=None).open_session(advance=advance)


def supervise(
    request: WorkerRequest,
    plans: Sequence[WorkerPlan],
    *,
    session: TuneSession,
    on_event: Callable[[WorkerEvent], None],
    restart_dead: bool = False,
) -> SupervisorResult:
    """Run ``request`` in one child process per plan; return when all have exited.

    Args:
        request: What every worker runs; each child gets its plan's device and threads, and
            what is left of the timeout when it starts.
        plans: The workers.
        session: The supervisor's own session of the request (checked, study opened, data
            decoded into the machine's shared cache), whose storage the children open.
        on_event: Called in the calling thread with every :class:`WorkerEvent`.
        restart_dead: Start a worker again after it was killed or crashed.

    Raises:
        KeyboardInterrupt: (``hpo.exceptions.Interrupted`` for SIGTERM) after the same signal
            was forwarded to every worker and all have exited.
    """
    started = time.monotonic()
    parent = os.getpid()

    def command(plan: WorkerPlan) -> list[str]:
        timeout = request.timeout
        if timeout is not None:
            timeout = max(0.0, timeout - (time.monotonic() - started))
        child = replace(request, device=plan.device, threads=plan.threads, timeout=timeout)
        return child.command(parent=parent)

    supervisor = Supervisor(
        plans,
        command=command,
        on_event=on_event,
        # The resolved URL travels in the environment, never on a command line `ps` shows.
        env={**os.environ, "HPO_STORAGE": session.storage_url},
        study=session.study,
        restart_dead=restart_dead,
    )
    return supervisor.run()


@dataclass
class _Child:
    plan: WorkerPlan
    process: subprocess.Popen[bytes]
    readers: list[threading.Thread]


class Supervisor:
    """Runs worker processes, turns their output into events, restarts and stops them.

    Args:
        plans: The workers.
        command: ``plan -> argv`` of a worker process (called at every start, so a restarted
            worker can get the time left of a timeout).
        on_event: Called in the calling thread with every :class:`WorkerEvent`.
        env: Environment of the children (default: this process's); each child also gets
            ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to its thread count.
        study: The study, to fail the running trial of a worker that died at once.
        restart_dead: Start a worker again after it was killed or crashed (not after it
            finished, stopped on a signal, or stopped on a user error).
        max_restarts: Restarts per worker at most (a worker that keeps crashing is left dead).
        stop_grace: Seconds a stopped worker has to mark its trial failed before SIGKILL.
    """

    def __init__(
        self,
        plans: Sequence[WorkerPlan],
        *,
        command: Callable[[WorkerPlan], list[str]],
        on_event: Callable[[WorkerEvent], None],
        env: dict[str, str] | None = None,
        study: optuna.Study | None = None,
        restart_dead: bool = False,
        max_restarts: int = 5,
        stop_grace: float = 60.0,
    ) -> None:
        self.plans = list(plans)
        self.command = command
        self.on_event = on_event
        self.env = dict(os.environ if env is None else env)
        self.study = study
        self.restart_dead = restart_dead
        self.max_restarts = max_restarts
        self.stop_grace = stop_grace
        self._events: queue.Queue[tuple[str, WorkerPlan, Event]] = queue.Queue()
        self._children: dict[str, _Child] = {}
        self._result = SupervisorResult()
        self._host = socket.gethostname()

    def run(self) -> SupervisorResult:
        """Start every worker and return when all have exited.

        Raises:
            KeyboardInterrupt: (``hpo.exceptions.Interrupted`` for SIGTERM) after the same
                signal was forwarded to every worker and all have exited.
        """
        try:
            for plan in self.plans:
                self._start(plan)
            while self._children:
                self._pump(0.2)
                self._reap(stopping=False)
                raise_if_stopped()  # a stop whose raise Python swallowed (hpo.interrupts)
        except KeyboardInterrupt as exc:
            self.stop(getattr(exc, "signum", signal.SIGINT))
            raise
        return self._result

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to every worker, wait ``stop_grace`` seconds, then SIGKILL the rest.

        A worker killed this way has its running trial failed here, so none stays RUNNING. A
        second signal meanwhile stops the wait: the rest are killed (and their trials failed)
        at once.
        """
        for child in self._children.values():
            if child.process.poll() is None:
                child.process.send_signal(signum)
        deadline = time.monotonic() + self.stop_grace
        try:
            while self._children and time.monotonic() < deadline:
                self._pump(0.2)
                self._reap(stopping=True)
        except KeyboardInterrupt:
            logger.warning("stopping now: killing the workers still running")
        for child in list(self._children.values()):
            child.process.kill()
            child.process.wait()
            self._reap(stopping=True)

    # -- internals ------------------------------------------------------------------------

    def _start(self, plan: WorkerPlan) -> None:
        env = {
            **self.env,
            "OMP_NUM_THREADS": str(plan.threads),
            "MKL_NUM_THREADS": str(plan.threads),
            "PYTHONUNBUFFERED": "1",
        }
        process = subprocess.Popen(
            self.command(plan),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own session: a Ctrl-C on the terminal reaches the parent only, which forwards
            # it once; two SIGINTs could interrupt a child while it marks its trial failed.
            start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        readers = [
            threading.Thread(target=self._read, args=(plan, stream, messages), daemon=True)
            for stream, messages in ((process.stdout, True), (process.stderr, False))
        ]
        for reader in readers:
            reader.start()
        self._children[plan.name] = _Child(plan, process, readers)
        restarts = self._result.restarts.get(plan.name, 0)
        self.on_event(WorkerEvent(plan, Started(pid=process.pid, restart=restarts)))

    def _read(self, plan: WorkerPlan, stream: IO[bytes], messages: bool) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            message = decode(line) if messages else None
            if message is not None:
                self._events.put((plan.name, plan, message))
            elif line.strip():
                self._events.put((plan.name, plan, Output(line)))
        stream.close()

    def _pump(self, timeout: float) -> None:
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._dispatch(*item)
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return

    def _dispatch(self, name: str, plan: WorkerPlan, event: Event) -> None:
        if isinstance(event, TrialEnd):
            self._result.trials_ended += 1
        elif isinstance(event, Done):
            self._result.stopped_by[name] = event.stopped_by
        elif isinstance(event, Output) and event.line.startswith("error: "):
            self._result.errors[name] = event.line.removeprefix("error: ")
        self.on_event(WorkerEvent(plan, event))

    def _reap(self, *, stopping: bool) -> None:
        for name, child in list(self._children.items()):
            code = child.process.poll()
            if code is None:
                continue
            for reader in child.readers:
                reader.join(timeout=5)
            while not self._events.empty():
                self._dispatch(*self._events.get_nowait())
            del self._children[name]
            self._result.exit_codes[name] = code
            failed: list[int] = []
            if (code < 0 or code == 1) and self.study is not None:
                failed = fail_trials_of_worker(
                    self.study,
                    host=self._host,
                    pid=child.process.pid,
                    reason=f"worker {name} died ({describe_exit(code)})",
                )
            restarts = self._result.restarts.get(name, 0)
            restart = (
                not stopping
                and self.restart_dead
                and (code < 0 or code == 1)
                and restarts < self.max_restarts
            )
            self.on_event(WorkerEvent(child.plan, Exited(code, restart, tuple(failed))))
            if restart:
                self._result.restarts[name] = restarts + 1
                self._start(child.plan)
