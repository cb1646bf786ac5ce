"""The worker loop: run trials of a shared study until it holds its study-wide total.

Several workers (processes, machines) share one study through its storage. ``--n-trials N``
is the study-wide number of finished (complete + pruned) trials: each worker claims a slot
before it trains, a worker that loses a race for the last slot gives its trial up, and a worker
with no free slot waits for the trials of other workers to end (one may fail and free a slot).
Trials a warm start imported (``hpo.study.is_imported``) take trial numbers but no slots.

A database outage is ridden out by the storage (:mod:`hpo.study._outage`); when it lasts past
``study.db_outage_seconds`` the worker stops with a ``StorageError`` and leaves its trial
RUNNING: once the database is back, another worker finds it stale and runs it again. A database
that answers but refuses a write (a full disk) is no outage: the worker fails its trial with the
reason, as far as the database still lets it, and stops.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import StorageError
from hpo.study._outage import StorageRefused
from hpo.study._record import is_discarded, is_imported, record_discarded, record_fail_reason
from hpo.study._summary import FINISHED

__all__ = ["WorkerResult", "run_worker"]

_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


_log = logging.getLogger(__name__)


class _OverCap(Exception):
    """This worker lost the race for the study's last slot; its trial is given up."""


class _StorageLost(BaseException):
    """The database stayed away too long inside a trial.

    A BaseException, so Optuna neither catches it nor tries to tell the trial (the tell could
    only fail too); the trial stays RUNNING for another worker to retry.
    """

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


def _storage_error_in(exc: BaseException) -> StorageError | None:
    """The StorageError behind ``exc``: Optuna's tell may hide it behind its own errors."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageError):
            return current
        if isinstance(current, _StorageLost):
            return current.error
        current = current.__cause__ or current.__context__
    return None


@dataclass
class WorkerResult:
    """What one worker did."""

    ran: list[int] = field(default_factory=list)
    stopped_by: str = "n_trials"


def _counts(trial: FrozenTrial) -> bool:
    """Whether ``trial`` takes a slot of the total: not discarded, not imported."""
    return not is_discarded(trial) and not is_imported(trial)


def _claimed_before(study: optuna.Study, number: int) -> int:
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=_CLAIMED)
        if t.number < number and _counts(t)
    )


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int | None,
    timeout: float | None = None,
    max_consecutive_failures: int = 5,
    on_trial_end: Callable[[FrozenTrial], None] | None = None,
    on_wait: Callable[[int], None] | None = None,
    poll_seconds: float = 2.0,
    exhaustible: bool = False,
) -> WorkerResult:
    """Run trials until the study holds ``n_trials`` finished trials (or ``timeout`` passes).

    Args:
        study: The shared study.
        objective: Trial -> value; ``optuna.TrialPruned`` prunes, other exceptions fail the trial
            (recorded with its reason) and the worker goes on.
        n_trials: Study-wide total of complete + pruned trials; None runs until timeout.
        timeout: Seconds after which no new trial is started.
        max_consecutive_failures: Stop after this many failed trials in a row.
        on_trial_end: Called with each trial this worker finished.
        on_wait: Called with the number of trials other workers are running while waiting.
        poll_seconds: How often a waiting worker looks at the study.
        exhaustible: The sampler can run out of points (its registry info): stop when it has.

    Raises:
        KeyboardInterrupt: after Optuna has marked the running trial failed and it was
            re-queued with the same parameters (``max_retry`` times at most).
        StorageError: the database stayed unreachable past the storage's outage limit.
    """
    result = WorkerResult()
    started = time.monotonic()
    failures = 0

    current: dict[str, int] = {}
    ended: list[FrozenTrial] = []

    def guarded(trial: optuna.Trial) -> float:
        current["number"] = trial.number
        # Trials below this one number at most trial.number, so only a trial numbered
        # n_trials or higher can be over the cap: the count (a read of the whole study) is
        # needed only then, not for every trial. Imported trials take numbers but no slots.
        over = n_trials is not None and trial.number >= n_trials
        if over and _claimed_before(study, trial.number) >= cast(int, n_trials):
            record_discarded(trial, "another worker took the study's last trial")
            raise _OverCap
        try:
            return objective(trial)
        except StorageRefused as exc:
            _fail_refused(study, trial, exc)
            raise _StorageLost(exc) from None
        except StorageError as exc:
            raise _StorageLost(exc) from None

    while True:
        if timeout is not None and time.monotonic() - started >= timeout:
            result.stopped_by = "timeout"
            return result
        if n_trials is not None:
            trials = study.get_trials(deepcopy=False, states=_CLAIMED)
            claimed = [t for t in trials if _counts(t)]
            finished = sum(1 for t in claimed if t.state in FINISHED)
            if finished >= n_trials:
                result.stopped_by = "n_trials"
                return result
            waiting = sum(1 for t in claimed if t.state == TrialState.WAITING)
            if len(claimed) >= n_trials and not waiting:
                running = len(claimed) - finished
                if on_wait is not None:
                    on_wait(running)
                time.sleep(poll_seconds)
                # A worker that died leaves a RUNNING trial; failing it (once its heartbeat is
                # stale) re-queues it, which frees the slot this worker waits for.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                continue
        current.clear()
        ended.clear()
        try:
            # The callback hands over the trial as told: no second read of the study for it.
            study.optimize(
                guarded,
                n_trials=1,
                catch=(Exception,),
                callbacks=[lambda _study, frozen: ended.append(frozen)],
            )
        except KeyboardInterrupt:
            # SIGINT or SIGTERM (Ctrl-C, a scheduler's cancel, preemption or requeue): the
            # KeyboardInterrupt reached here, so Optuna's tell marked the trial FAIL. Re-queue
            # it with the same parameters now, as a stale heartbeat would a grace period later.
            if "number" in current:
                _requeue_interrupted(study, current["number"])
            raise
        except (Exception, _StorageLost) as exc:
            lost = _storage_error_in(exc)
            if lost is not None:
                raise lost from None
            if "number" not in current or not _taken_over(study, current["number"]):
                raise
            continue
        if "number" not in current or not ended:
            continue
        trial = ended[-1]
        if is_discarded(trial):
            continue
        result.ran.append(trial.number)
        failures = failures + 1 if trial.state == TrialState.FAIL else 0
        if on_trial_end is not None:
            on_trial_end(trial)
        if failures >= max_consecutive_failures:
            result.stopped_by = "failures"
            return result
        if exhaustible and cast(Any, study.sampler).is_exhausted(study):
            result.stopped_by = "exhausted"
            return result


def _fail_refused(study: optuna.Study, trial: optuna.Trial, error: StorageRefused) -> None:
    """Fail the trial whose write the database refused, saying why, as far as it still can."""
    for write in (
        lambda: record_fail_reason(trial, f"StorageRefused: {error}"),
        lambda: study.tell(trial, state=TrialState.FAIL),
    ):
        try:
            write()
        except Exception as exc:  # the same refusal, most likely: the stale check takes over
            _log.warning("trial %d not marked failed: %s", trial.number, exc)


def _requeue_interrupted(study: optuna.Study, number: int) -> None:
    """Queue a copy of interrupted trial ``number`` (same parameters) through the storage's
    failed-trial callback, the one a stale heartbeat goes through (``max_retry`` holds)."""
    storage = study._storage
    callback = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if callback is None:  # no heartbeats (in-memory storage): nothing retries trials
        return
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    trial = storage.get_trial(trial_id)
    if trial.state == TrialState.FAIL and not is_discarded(trial):
        callback(study, trial)


def _taken_over(study: optuna.Study, number: int) -> bool:
    """Whether another worker failed trial ``number`` (as stale) while this one ran it.

    Optuna then cannot tell the trial (``Cannot tell a FAIL trial``); its retry runs elsewhere,
    so this worker logs it and goes on.
    """
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state != TrialState.FAIL:
        return False
    _log.warning(
        "trial %d was failed as stale by another worker while this one ran it (its heartbeat "
        "was silent longer than the grace period); its retry runs as a new trial",
        number,
    )
    return True
