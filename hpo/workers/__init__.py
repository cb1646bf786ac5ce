"""Workers of a study: one in this process, or several supervised processes on one machine.

- ``_request``: :class:`WorkerRequest`, what one worker is asked to do; it builds the worker's
  session (setting the process up once) or the command line of a child that runs it.
- ``_plan``: :func:`plan_workers`, which device each of several workers runs on, with how many
  CPU threads.
- ``_protocol``: the typed messages a child sends its supervisor, and their one-line encoding.
- ``_child``: a child's main loop (:func:`run_child`) and its watch on the supervisor.
- ``_supervisor``: :func:`supervisor_session` (checks and decodes once for all children),
  :func:`supervise` / :class:`Supervisor`: start, watch, restart and stop the
  children, turning their output into :class:`WorkerEvent` s.
- ``_outcome``: :func:`judge`, how a supervised run ended against the study's total.
"""

from __future__ import annotations

from hpo.workers._child import run_child, watch_parent
from hpo.workers._outcome import Died, Outcome, Reached, Stopped, WorkerFailed, judge
from hpo.workers._plan import PlanError, WorkerPlan, available_cores, plan_workers
from hpo.workers._protocol import (
    Done,
    Epoch,
    Message,
    Ready,
    TrialEnd,
    TrialStart,
    Wait,
    decode,
    encode,
)
from hpo.workers._request import WorkerRequest
from hpo.workers._supervisor import (
    Event,
    Exited,
    Output,
    Started,
    Supervisor,
    SupervisorResult,
    WorkerEvent,
    describe_exit,
    supervise,
    supervisor_session,
)

__all__ = [
    "Died",
    "Done",
    "Epoch",
    "Event",
    "Exited",
    "Message",
    "Outcome",
    "Output",
    "PlanError",
    "Reached",
    "Ready",
    "Started",
    "Stopped",
    "Supervisor",
    "SupervisorResult",
    "TrialEnd",
    "TrialStart",
    "Wait",
    "WorkerEvent",
    "WorkerFailed",
    "WorkerPlan",
    "WorkerRequest",
    "available_cores",
    "decode",
    "describe_exit",
    "encode",
    "judge",
    "plan_workers",
    "run_child",
    "supervise",
    "supervisor_session",
    "watch_parent",
]
