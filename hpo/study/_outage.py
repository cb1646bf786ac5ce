"""Riding out database outages: an RDB storage whose calls retry while the database is away.

Every storage call that fails because the connection is gone (the server restarts, refuses
logins, the network drops) is retried with exponential backoff. The clock is per outage, not per
call: the outage starts with the first failed call and ends with the first call that succeeds,
and once it has lasted ``outage_limit`` seconds the storage gives up for good (every later call
raises :class:`~hpo.exceptions.StorageError` at once, so a worker exits with one line instead
of waiting the limit again for each call on its way out).

What makes retrying safe:

- Heartbeats (Optuna's heartbeat thread calls ``record_heartbeat``) are retried like any call
  and never raise, so the thread keeps beating through an outage and after it.
- Writes are idempotent (upserts, or inserts whose duplicate is ignored) except three, handled
  here: a retried ``set_trial_state_values`` that finds the trial already in the state it asked
  for (the first attempt committed, its reply was lost) succeeds; so does a retried
  ``set_trial_param`` whose insert collides with the same value already stored; a retried
  ``create_new_trial`` whose first attempt did commit leaves a RUNNING trial that nobody runs
  and that never writes a heartbeat: a trial a worker sees without any heartbeat for longer
  than the grace period counts as stale, and is failed (and re-queued) like a dead worker's.
- A live trial is never judged stale because of an outage: a worker looks for stale trials
  only after it has been connected for ``settle_seconds`` since its last failed call (by then
  every live worker's heartbeat thread has written again: its retries are at most that far
  apart), and a worker that has just opened the storage waits as long.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import StorageError
from hpo.interrupts import held

__all__ = ["ResilientRDBStorage", "is_connection_error"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0

# Calls retried as they are: reads, upserts and inserts whose duplicate Optuna ignores.
_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "get_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    # Optuna wraps every RDBStorage a study is given in its _CachedStorage, which calls these
    # private methods instead of the public ones: retried too, or an outage that starts
    # between trials (ask, suggest, the study-wide count) would end the worker.
    "_get_trials",
    "_get_best_trial_id",
)


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database could not be reached.

    Optuna wraps SQLAlchemy errors raised inside a session in ``StorageInternalError``; the
    cause is a DBAPI ``OperationalError`` / ``InterfaceError`` or an invalidated connection.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lost_connection = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
        if isinstance(current, sqlalchemy.exc.DBAPIError) and (
            current.connection_invalidated or isinstance(current, lost_connection)
        ):
            return True
        if isinstance(current, sqlalchemy.exc.DisconnectionError | ConnectionError):
            return True
        current = current.__cause__ or current.__context__
    return False


def _reason(exc: BaseException) -> str:
    while isinstance(exc, StorageInternalError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _retried(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def call(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> T:
        return self._retry(method.__name__, lambda: method(self, *args, **kwargs))

    return call


class ResilientRDBStorage(RDBStorage):
    """``RDBStorage`` whose calls survive a database outage of up to ``outage_limit`` seconds.

    Args:
        url: SQLAlchemy URL.
        outage_limit: Seconds an outage may last before calls raise ``StorageError``.
        masked_url: The URL as messages show it (no password).
        **kwargs: Passed to ``RDBStorage`` (engine kwargs, heartbeat settings).
    """

    def __init__(self, url: str, *, outage_limit: float, masked_url: str, **kwargs: Any) -> None:
        self._outage_limit = float(outage_limit)
        self._masked_url = masked_url
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._lost: str | None = None
        self._connected_since = time.monotonic()
        self._silent: dict[int, float] = {}
        super().__init__(url, **kwargs)
        # Retries of a live worker's heartbeat are at most this far apart, well inside the grace
        # period, so a worker that waits this long after it reconnects sees them.
        grace = self.grace_period or 2 * (self.heartbeat_interval or _MAX_DELAY)
        self._max_delay = min(_MAX_DELAY, max(_FIRST_DELAY, grace / 4))

    # -- state shared by the worker's thread and the heartbeat thread --------------------------

    @property
    def settle_seconds(self) -> float:
        """How long a worker is connected before it judges other workers' trials stale."""
        return self._max_delay + 1.0

    @property
    def outage_limit(self) -> float:
        return self._outage_limit

    def _failed(self, what: str, exc: BaseException) -> float:
        """Record a failed call; returns how long the current outage has lasted."""
        now = time.monotonic()
        with self._lock:
            if self._down_since is None:
                self._down_since = now
                _log.warning(
                    "storage %s unreachable (%s: %s); retrying for up to %g s",
                    self._masked_url,
                    what,
                    _reason(exc),
                    self._outage_limit,
                )
            lasted = now - self._down_since
            if lasted >= self._outage_limit and self._lost is None:
                self._lost = (
                    f"storage {self._masked_url} unreachable for {lasted:.0f} s "
                    f"(study.db_outage_seconds: {self._outage_limit:g}): {_reason(exc)}"
                )
            return lasted

    def _succeeded(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            _log.warning(
                "storage %s reachable again after %.1f s",
                self._masked_url,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
            self._connected_since = time.monotonic()

    def _retry(
        self,
        what: str,
        call: Callable[[], T],
        on_retry_error: Callable[[Exception], T] | None = None,
    ) -> T:
        delay = _FIRST_DELAY
        retrying = False
        while True:
            if self._lost is not None:
                raise StorageError(self._lost)
            try:
                with held():  # a signal never cuts a database write in half
                    result = call()
            except Exception as exc:
                if retrying and on_retry_error is not None and not is_connection_error(exc):
                    result = on_retry_error(exc)
                elif not is_connection_error(exc):
                    raise
                else:
                    self._failed(what, exc)
                    if self._lost is not None:
                        raise StorageError(self._lost) from None
                    time.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
                    retrying = True
                    continue
            self._succeeded()
            return result

    # -- calls that are not plain retries ------------------------------------------------------

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Behind both create_new_trial and Optuna's cached storage. A duplicate from a lost
        # acknowledgement never beats: _get_stale_trial_ids fails it.
        return self._retry(
            "create_new_trial",
            lambda: RDBStorage._create_new_trial(self, study_id, template_trial),
        )

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        def already_set(exc: Exception) -> None:
            # The first attempt committed and its reply was lost: the retry's insert collides.
            if isinstance(exc, sqlalchemy.exc.IntegrityError | StorageInternalError):
                try:
                    stored = RDBStorage.get_trial_param(self, trial_id, param_name)
                except KeyError:
                    raise exc from None
                if stored == param_value_internal:
                    return
            raise exc

        self._retry(
            "set_trial_param",
            lambda: RDBStorage._set_trial_param(
                self,
                trial_id,
                param_name,
                param_value_internal,
                distribution,
                previous_distribution,
            ),
            on_retry_error=already_set,
        )

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        def already_done(exc: Exception) -> bool:
            # The first attempt committed and its reply was lost: the trial is where we put it.
            if isinstance(exc, UpdateFinishedTrialError):
                stored = RDBStorage.get_trial(self, trial_id)
                same_values = values is None or list(stored.values or []) == list(values)
                if stored.state == state and same_values:
                    return True
            raise exc

        return self._retry(
            "set_trial_state_values",
            lambda: RDBStorage.set_trial_state_values(self, trial_id, state, values),
            on_retry_error=already_done,
        )

    def record_heartbeat(self, trial_id: int) -> None:
        """Retried like every call, and never raises: the heartbeat thread must not die."""
        try:
            self._retry("record_heartbeat", lambda: RDBStorage.record_heartbeat(self, trial_id))
        except StorageError:
            pass  # The worker's own next call raises it and the worker exits.
        except Exception as exc:  # a thread's traceback helps nobody: say it in one line
            _log.warning("heartbeat of trial id %d not recorded: %s", trial_id, _reason(exc))

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if time.monotonic() - self._connected_since < self.settle_seconds:
            return []
        return self._retry("stale trials", lambda: self._stale_trial_ids(study_id))

    def _stale_trial_ids(self, study_id: int) -> list[int]:
        assert self.heartbeat_interval is not None
        grace = self.grace_period or 2 * self.heartbeat_interval
        limit = timedelta(seconds=grace)
        session = self.scoped_session()
        try:
            now = session.execute(sqlalchemy.func.now()).scalar()
            assert now is not None
            now = now.replace(tzinfo=None)
            running = (
                session.query(models.TrialModel)
                .options(sqlalchemy.orm.selectinload(models.TrialModel.heartbeats))
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .filter(models.TrialModel.study_id == study_id)
                .all()
            )
            stale = []
            silent: dict[int, float] = {}
            seen_at = time.monotonic()
            for trial in running:
                trial_id = int(trial.trial_id)
                if trial.heartbeats:
                    if now - trial.heartbeats[0].heartbeat > limit:
                        stale.append(trial_id)
                    continue
                # Never beat: a trial created by a retried call whose first try had committed.
                # Judged by this worker's own clock (client and server clocks may disagree).
                first = self._silent.get(trial_id, seen_at)
                silent[trial_id] = first
                if seen_at - first > grace:
                    stale.append(trial_id)
            self._silent = silent
            session.commit()
            return stale
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()


for _name in _RETRIED:
    setattr(ResilientRDBStorage, _name, _retried(getattr(RDBStorage, _name)))
