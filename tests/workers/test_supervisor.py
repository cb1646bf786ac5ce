"""The supervisor, with real child processes that speak the protocol (no training)."""

from __future__ import annotations

import signal
import socket
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.exceptions import Interrupted
from hpo.workers import (
    Done,
    Exited,
    Output,
    Ready,
    Started,
    Supervisor,
    TrialEnd,
    TrialStart,
    WorkerEvent,
    WorkerPlan,
    describe_exit,
    encode,
)

PLANS = [WorkerPlan("w1", "cpu", 1), WorkerPlan("w2", "cpu", 2)]


def python(body: str, **lines: str) -> list[str]:
    """A child that runs ``body``, with each of ``lines`` (messages encoded here) as a name."""
    header = "import os, signal, sys, time\n"
    header += "".join(f"{name} = {line!r}\n" for name, line in lines.items())
    return [sys.executable, "-c", header + textwrap.dedent(body)]


def events_of(events: list[WorkerEvent], name: str) -> list[object]:
    return [e.event for e in events if e.worker.name == name]


def test_messages_output_and_exits_become_events_in_order() -> None:
    child = """
        for line in (READY, START, "a line that is no message", END, DONE):
            print(line, flush=True)
        print("error: something the user got wrong", file=sys.stderr, flush=True)
        sys.exit(int(sys.argv[1]))
    """

    def command(plan: WorkerPlan) -> list[str]:
        number = int(plan.name[1:])
        lines = {
            "READY": encode(Ready(host="h", pid=number, device="cpu")),
            "START": encode(TrialStart(trial=number)),
            "END": encode(TrialEnd(trial=number, state="COMPLETE", line="done")),
            "DONE": encode(Done(ran=1, stopped_by="n_trials")),
        }
        return [*python(child, **lines), str(codes[plan.name])]

    codes = {"w1": 0, "w2": 2}
    events: list[WorkerEvent] = []
    supervisor = Supervisor(PLANS, command=command, on_event=events.append)
    result = supervisor.run()

    for plan in PLANS:
        seen = events_of(events, plan.name)
        number = int(plan.name[1:])
        assert isinstance(seen[0], Started) and seen[0].restart == 0
        # stdout in its order (stderr is read by a thread of its own: its line comes any time).
        error = Output("error: something the user got wrong")
        assert [e for e in seen[1:] if e != error] == [
            Ready(host="h", pid=number, device="cpu"),
            TrialStart(trial=number),
            Output("a line that is no message"),
            TrialEnd(trial=number, state="COMPLETE", line="done"),
            Done(ran=1, stopped_by="n_trials"),
            Exited(code=codes[plan.name], restarting=False, failed_trials=()),
        ]
        assert Output("error: something the user got wrong") in seen
    assert result.exit_codes == codes
    assert result.trials_ended == 2
    assert result.stopped_by == {"w1": "n_trials", "w2": "n_trials"}
    assert result.errors == {
        "w1": "something the user got wrong",
        "w2": "something the user got wrong",
    }
    assert result.restarts == {}


def test_each_child_gets_its_share_of_threads_in_its_environment() -> None:
    events: list[WorkerEvent] = []
    Supervisor(
        PLANS,
        command=lambda plan: python('print(os.environ["OMP_NUM_THREADS"], os.environ["HPO_X"])'),
        on_event=events.append,
        env={"HPO_X": "from-env", "PYTHONPATH": ":".join(sys.path)},
    ).run()
    assert Output("1 from-env") in events_of(events, "w1")
    assert Output("2 from-env") in events_of(events, "w2")


def test_restart_dead_restarts_crashes_but_not_user_errors_nor_finished_workers() -> None:
    # w1 crashes (exit 1) every time; w2 stops on a user error (exit 2).
    codes = {"w1": 1, "w2": 2}
    events: list[WorkerEvent] = []
    supervisor = Supervisor(
        PLANS,
        command=lambda plan: python(f"sys.exit({codes[plan.name]})"),
        on_event=events.append,
        restart_dead=True,
        max_restarts=2,
    )
    result = supervisor.run()
    w1 = events_of(events, "w1")
    assert [e.restart for e in w1 if isinstance(e, Started)] == [0, 1, 2]
    assert [e.restarting for e in w1 if isinstance(e, Exited)] == [True, True, False]
    assert [e for e in events_of(events, "w2") if isinstance(e, Exited)] == [
        Exited(code=2, restarting=False, failed_trials=())
    ]
    assert result.restarts == {"w1": 2}
    assert result.exit_codes == {"w1": 1, "w2": 2}


def test_a_killed_worker_has_its_running_trial_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    # The child starts a trial as a worker does (recording host and pid), then is killed.
    child = f"""
        import optuna, socket
        study = optuna.load_study(study_name="s", storage="{url}")
        trial = study.ask()
        trial.set_user_attr("worker", {{"host": socket.gethostname(), "pid": os.getpid()}})
        os.kill(os.getpid(), signal.SIGKILL)
    """
    events: list[WorkerEvent] = []
    Supervisor(
        PLANS[:1], command=lambda plan: python(child), on_event=events.append, study=study
    ).run()
    [exited] = [e for e in events_of(events, "w1") if isinstance(e, Exited)]
    assert exited == Exited(code=-signal.SIGKILL, restarting=False, failed_trials=(0,))
    trial = study.get_trials()[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "worker w1 died (killed by SIGKILL)"
    assert trial.user_attrs["worker"]["host"] == socket.gethostname()


def test_a_stop_is_forwarded_to_every_worker_then_raised() -> None:
    # Workers that say they are ready, then wait to be stopped.
    child = """
        print(READY, flush=True)
        time.sleep(120)
    """
    ready_line = encode(Ready(host="h", pid=1, device="cpu"))
    events: list[WorkerEvent] = []
    ready: set[str] = set()

    def on_event(event: WorkerEvent) -> None:
        events.append(event)
        if isinstance(event.event, Ready):
            ready.add(event.worker.name)
            if len(ready) == len(PLANS):
                raise Interrupted(signal.SIGTERM)  # what SIGTERM to the supervisor raises

    supervisor = Supervisor(
        PLANS, command=lambda plan: python(child, READY=ready_line), on_event=on_event
    )
    with pytest.raises(Interrupted):
        supervisor.run()
    exits = [e.event for e in events if isinstance(e.event, Exited)]
    assert exits == [Exited(code=-signal.SIGTERM, restarting=False)] * 2


def test_exit_codes_are_described_as_people_say_them() -> None:
    assert describe_exit(2) == "exit 2"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-99) == "killed by signal 99"
