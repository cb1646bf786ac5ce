"""Failed trials: failing those a dead worker process left running, and the last failure's reason.

A dead process cannot tell its own trial, so the supervisor fails it through the storage, past
Optuna's public API (which only lets the process running a trial end it).
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from hpo.study._record import read_trial_record, record_fail_reason_by_id

__all__ = ["fail_trials_of_worker", "last_fail_reason"]


def fail_trials_of_worker(study: optuna.Study, *, host: str, pid: int, reason: str) -> list[int]:
    """Fail the RUNNING trials a dead worker process left, and re-queue them.

    They are matched by the ``worker`` user attribute (host and pid) every trial records when
    it starts; the storage's heartbeat callback (``max_retry``) re-queues each, as it would
    after a stale heartbeat.

    Args:
        study: The shared study.
        host: The host name of the dead process.
        pid: Its process id.
        reason: The ``fail_reason`` each of its trials gets.

    Returns:
        The numbers of the trials failed.
    """
    failed = []
    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        who = read_trial_record(trial).worker
        if who is None or who.host != host or who.pid != pid:
            continue
        record_fail_reason_by_id(storage, trial._trial_id, reason)
        if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
            continue
        failed.append(trial.number)
        # Optuna 5 names it so (get_failed_trial_callback is deprecated, gone in 6.0).
        callback = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
        if callback is not None:
            callback(study, storage.get_trial(trial._trial_id))
    return failed


def last_fail_reason(study: optuna.Study) -> str:
    """Why the study's last failed trial that says why failed (``unknown`` if none does)."""
    for trial in reversed(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))):
        reason = read_trial_record(trial).fail_reason
        if reason:
            return reason
    return "unknown"
