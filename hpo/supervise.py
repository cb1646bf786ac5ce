"""Several workers of one study on one machine: plan devices and threads, run and supervise them.

``hpo run --devices cuda:0,cuda:1 --workers-per-device M`` (or ``--workers N`` on the CPU)
starts one process per worker. Each child is an ordinary worker of the study (the same claims,
heartbeats and study-wide total) that writes JSON lines on its stdout: ``trial_start``,
``epoch`` (fold, epoch, validation F1), ``trial_end``, ``wait``, ``done``. The parent reads them,
restarts a worker that died when asked, and forwards SIGINT or SIGTERM to every child so that
each marks its running trial failed before it exits.

A child that dies leaves its trial RUNNING; the supervisor fails it at once and hands it to the
storage's heartbeat retry callback, exactly what a stale heartbeat would do a grace period later
(workers on other machines still rely on the heartbeat).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import optuna
from optuna.trial import TrialState

from hpo.exceptions import ConfigError

__all__ = [
    "Supervisor",
    "SupervisorResult",
    "WorkerEvent",
    "WorkerPlan",
    "available_cores",
    "describe_exit",
    "fail_trials_of_worker",
    "plan_workers",
    "watch_parent",
]

logger = logging.getLogger(__name__)

_CUDA = re.compile(r"cuda:(\d+)")


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process to run.

    Attributes:
        name: ``w1``, ``w2``, ... (prefix of its lines, row of the live view).
        device: ``cpu`` or ``cuda:K``.
        threads: Torch CPU threads of the process (its share of the cores).
    """

    name: str
    device: str
    threads: int


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _available(count: int) -> str:
    if count == 0:
        return "no CUDA devices on this machine; for CPU workers use --workers N"
    return "available: " + ("cuda:0" if count == 1 else f"cuda:0..cuda:{count - 1}")


def _parse_devices(spec: str, count: int) -> list[str]:
    value = spec.strip().lower()
    if value == "all":
        if count == 0:
            raise ConfigError(f"--devices {spec!r}: {_available(count)}")
        return [f"cuda:{i}" for i in range(count)]
    devices: list[str] = []
    for token in (t.strip() for t in value.split(",")):
        match = _CUDA.fullmatch(token)
        if match is None:
            raise ConfigError(
                f"--devices {spec!r}: expected all or cuda:K[,cuda:K...], got {token!r} "
                f"({_available(count)})"
            )
        if int(match.group(1)) >= count:
            raise ConfigError(f"--devices {spec!r}: no device {token} ({_available(count)})")
        if token in devices:
            raise ConfigError(
                f"--devices {spec!r}: {token} listed twice; use --workers-per-device M for "
                "several workers on one device"
            )
        devices.append(token)
    return devices


def plan_workers(
    *,
    devices: str | None,
    workers_per_device: int | None,
    workers: int | None,
    cuda_count: int | None = None,
    cores: int | None = None,
) -> list[WorkerPlan] | None:
    """The worker processes ``--devices/--workers-per-device`` or ``--workers`` ask for.

    Every worker gets ``max(1, cores // number of workers)`` torch threads, so workers do not
    fight over the cores.

    Args:
        devices: ``all`` or ``cuda:0,cuda:1``; None for CPU workers.
        workers_per_device: Workers per listed device (default 1).
        workers: Number of CPU workers (without ``devices``).
        cuda_count: CUDA devices of this machine (default: what torch sees).
        cores: Cores to divide (default: this process's CPU affinity).

    Returns:
        None when none of the flags is given: one worker runs in the calling process.

    Raises:
        ConfigError: A device that does not exist or cannot be parsed (naming what is
            available), or flags that do not go together.
    """
    if devices is None and workers_per_device is None and workers is None:
        return None
    if devices is not None and workers is not None:
        raise ConfigError(
            "--workers N starts CPU workers; with --devices use --workers-per-device M"
        )
    if devices is None and workers_per_device is not None:
        raise ConfigError("--workers-per-device needs --devices (for CPU workers: --workers N)")
    per_device = 1 if workers_per_device is None else workers_per_device
    if per_device < 1:
        raise ConfigError(f"--workers-per-device must be at least 1, got {per_device}")
    if devices is not None:
        listed = _parse_devices(devices, _cuda_count() if cuda_count is None else cuda_count)
        slots = [device for device in listed for _ in range(per_device)]
    else:
        assert workers is not None
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        slots = ["cpu"] * workers
    threads = max(1, (available_cores() if cores is None else cores) // len(slots))
    return [WorkerPlan(f"w{i + 1}", device, threads) for i, device in enumerate(slots)]


def describe_exit(code: int) -> str:
    """``exit 2``, or ``killed by SIGKILL`` for a negative return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def fail_trials_of_worker(study: optuna.Study, *, host: str, pid: int, reason: str) -> list[int]:
    """Fail the RUNNING trials a dead worker process left, and re-queue them.

    They are matched by the ``worker`` user attribute (host and pid) every trial records when
    it starts; the storage's heartbeat callback (``max_retry``) re-queues each, as it would
    after a stale heartbeat.

    Returns:
        The numbers of the trials failed.
    """
    failed = []
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = trial.user_attrs.get("worker") or {}
        if who.get("host") != host or who.get("pid") != pid:
            continue
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            continue
        failed.append(trial.number)
        callback = getattr(storage, "get_failed_trial_callback", lambda: None)()
        if callback is not None:
            callback(study, study._storage.get_trial(trial._trial_id))
    return failed


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


@dataclass(frozen=True)
class WorkerEvent:
    """Something a worker did or said.

    Attributes:
        worker: Its plan.
        kind: A child's event (``trial_start``, ``epoch``, ``trial_end``, ``wait``, ``done``,
            ``ready``), or ``started`` (data: pid, restart), ``log`` (data: line; anything the
            child wrote that is not an event) and ``exit`` (data: code, restarting).
        data: The event's fields.
    """

    worker: WorkerPlan
    kind: str
    data: dict[str, Any]


@dataclass
class SupervisorResult:
    """How the workers ended, by worker name.

    Attributes:
        exit_codes: The last exit code of each worker.
        restarts: How often each was restarted.
        errors: The last ``error: ...`` line each worker wrote (without the prefix): what a
            worker that exits 2 (a user error) says is wrong.
        stopped_by: Why each worker's loop ended, from its ``done`` event (``n_trials``,
            ``timeout``, ``exhausted``, ``failures``).
        trials_ended: Trials the workers finished, failed ones included.
    """

    exit_codes: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    stopped_by: dict[str, str] = field(default_factory=dict)
    trials_ended: int = 0


@dataclass
class _Child:
    plan: WorkerPlan
    process: subprocess.Popen[bytes]
    readers: list[threading.Thread]
    current: int | None = None


class Supervisor:
    """Runs worker processes, turns their output into events, restarts and stops them.

    Args:
        plans: The workers.
        command: ``plan -> argv`` of a worker process (called at every start, so a restarted
            worker can get the time left of a timeout).
        on_event: Called in the calling thread with every ``WorkerEvent``.
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
        self._events: queue.Queue[tuple[str, WorkerPlan, str, dict[str, Any]]] = queue.Queue()
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
        except KeyboardInterrupt as exc:
            self.stop(getattr(exc, "signum", signal.SIGINT))
            raise
        return self._result

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to every worker, wait ``stop_grace`` seconds, then SIGKILL the rest.

        A worker killed this way has its running trial failed here, so none stays RUNNING.
        """
        for child in self._children.values():
            if child.process.poll() is None:
                child.process.send_signal(signum)
        deadline = time.monotonic() + self.stop_grace
        while self._children and time.monotonic() < deadline:
            self._pump(0.2)
            self._reap(stopping=True)
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
            threading.Thread(target=self._read, args=(plan, stream, parse), daemon=True)
            for stream, parse in ((process.stdout, True), (process.stderr, False))
        ]
        for reader in readers:
            reader.start()
        self._children[plan.name] = _Child(plan, process, readers)
        restarts = self._result.restarts.get(plan.name, 0)
        self.on_event(WorkerEvent(plan, "started", {"pid": process.pid, "restart": restarts}))

    def _read(self, plan: WorkerPlan, stream: IO[bytes], parse: bool) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            if parse and line.startswith("{"):
                try:
                    data = json.loads(line)
                except ValueError:
                    data = None
                if isinstance(data, dict) and isinstance(data.get("event"), str):
                    self._events.put((plan.name, plan, data.pop("event"), data))
                    continue
            if line.strip():
                self._events.put((plan.name, plan, "log", {"line": line}))
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

    def _dispatch(self, name: str, plan: WorkerPlan, kind: str, data: dict[str, Any]) -> None:
        child = self._children.get(name)
        if child is not None and child.plan is plan:
            if kind == "trial_start":
                child.current = data.get("trial")
            elif kind == "trial_end":
                child.current = None
        if kind == "trial_end":
            self._result.trials_ended += 1
        elif kind == "done":
            self._result.stopped_by[name] = str(data.get("stopped_by"))
        elif kind == "log" and str(data.get("line", "")).startswith("error: "):
            self._result.errors[name] = str(data["line"]).removeprefix("error: ")
        self.on_event(WorkerEvent(plan, kind, data))

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
            self.on_event(
                WorkerEvent(
                    child.plan,
                    "exit",
                    {"code": code, "restarting": restart, "failed_trials": failed},
                )
            )
            if restart:
                self._result.restarts[name] = restarts + 1
                self._start(child.plan)
