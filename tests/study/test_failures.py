"""Failing the trials a dead worker process left running, and the last failure's reason."""

from __future__ import annotations

import socket

import optuna
from optuna.trial import TrialState

from hpo.study import fail_trials_of_worker, last_fail_reason, open_storage
from hpo.testing import running_trial


def _running(study: optuna.Study, worker: dict[str, object]) -> int:
    trial = running_trial(study)
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("worker", worker)
    return trial.number


def test_a_dead_worker_has_its_running_trials_failed_and_requeued(storage_url: str) -> None:
    # The storage every worker opens: heartbeats on, so a failed trial is retried.
    storage = open_storage(storage_url, heartbeat_interval=60, max_retry=2)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    host = socket.gethostname()
    dead = _running(study, {"host": host, "pid": 101, "device": "cpu"})
    alive = _running(study, {"host": host, "pid": 102, "device": "cpu"})
    elsewhere = _running(study, {"host": "other-host", "pid": 101, "device": "cpu"})
    finished = _running(study, {"host": host, "pid": 101, "device": "cpu"})
    study.tell(finished, 0.5)

    failed = fail_trials_of_worker(study, host=host, pid=101, reason="worker w1 died (exit 1)")

    assert failed == [dead]
    trials = study.get_trials()
    assert trials[dead].state == TrialState.FAIL
    assert trials[dead].user_attrs["fail_reason"] == "worker w1 died (exit 1)"
    # Another process's trials, on this host or another, and finished ones stay as they were.
    assert [trials[n].state for n in (alive, elsewhere, finished)] == [
        TrialState.RUNNING,
        TrialState.RUNNING,
        TrialState.COMPLETE,
    ]
    # Re-queued with the same parameters, as a stale heartbeat would be.
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == dead]
    assert retry.state == TrialState.WAITING
    assert retry.params == trials[dead].params
    assert last_fail_reason(study) == "worker w1 died (exit 1)"
    # Nothing left to fail the second time.
    assert fail_trials_of_worker(study, host=host, pid=101, reason="again") == []


def test_the_last_failure_reason_skips_failures_that_give_none() -> None:
    study = optuna.create_study()
    assert last_fail_reason(study) == "unknown"
    first = study.ask()
    first.set_user_attr("fail_reason", "TrainingError: loss became nan")
    study.tell(first, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)  # failed without saying why
    assert last_fail_reason(study) == "TrainingError: loss became nan"
