"""Riding out database outages: an RDB storage whose calls retry while the database is away.

Every storage call that fails because the connection is gone (the server restarts, refuses
logins, the network drops) is retried with exponential backoff, for at most ``outage_limit``
seconds counted from that call's own first failure: another thread's success (the heartbeat's
small update) never resets it. Once one call has retried that long the storage gives up for
good (every later call raises :class:`~hpo.exceptions.StorageError` at once, so a worker exits
with one line instead of waiting the limit again for each call on its way out).

Only a lost connection is retried (:func:`is_connection_error`): an invalidated connection,
PostgreSQL's SQLSTATE classes 08 and 57P0x, 53300 (too many connections), a client-side
connection failure, SQLite's ``database is locked``, and the rolled-back conflicts 40001,
40P01 and 55P03 (serialization failure, deadlock, lock timeout). Anything else (a syntax error,
a missing table, a statement timeout, a full disk) is a :class:`~hpo.exceptions.StorageError`
at once, with the database's one-line reason.

What makes retrying safe: before a write is tried again, it looks up whether its first attempt
landed (the commit went through and only its acknowledgement was lost).

- Trial creation, a WAITING -> RUNNING claim and a FAIL (of one's own trial, or of another
  worker's stale one) write a token of their own in the same transaction (a trial system
  attribute); a retry that finds its token returns what the first attempt did. So a lost
  acknowledgement never leaves a duplicate trial, a claimed trial nobody runs, or two retries
  of one stale trial.
- COMPLETE and PRUNED are written only by the trial's own worker: a retry that finds the trial
  already in that state with the same values has landed. A parameter is the same value stored.
- Heartbeats, intermediate values and attributes are upserts: retried as they are. The
  heartbeat thread never raises (it keeps beating through an outage and after it).
- A live trial is never judged stale because of an outage: a worker looks for stale trials
  only after it has been connected for ``settle_seconds`` since its last failed call (by then
  every live worker's heartbeat thread has written again: its retries are at most that far
  apart), and a worker that has just opened the storage waits as long.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import StorageError
from hpo.interrupts import held

__all__ = [
    "CREATE_TOKEN_KEY",
    "STATE_TOKEN_KEY",
    "ResilientRDBStorage",
    "StorageRefused",
    "is_connection_error",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0

CREATE_TOKEN_KEY = "hpo:create_token"
"""Trial system attribute: the token of the call that created the trial."""
STATE_TOKEN_KEY = "hpo:state_token"
"""Trial system attribute: ``{"state": ..., "token": ...}`` of the last claim or FAIL."""

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

# PostgreSQL SQLSTATEs that say the connection is gone or the server cannot take it now
# (class 08 is matched by prefix), and the conflicts whose transaction was rolled back whole.
_LOST_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_ROLLED_BACK_STATES = frozenset({"40001", "40P01", "55P03"})
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


class StorageRefused(StorageError):
    """The database answered, and refused a call (a full disk, a statement timeout): no outage.

    The storage is there, so the trial in hand can still be failed with the reason.
    """


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError holds the driver's
        current = orig if isinstance(orig, BaseException) else None
        current = current or _cause(seen[-1])
    return seen


def _cause(exc: BaseException) -> BaseException | None:
    return exc.__cause__ or exc.__context__


def _dbapi_says_lost(error: BaseException) -> bool | None:
    """The DBAPI exception's own verdict: True/False when it has one, None when it has not."""
    names = {cls.__name__ for cls in type(error).__mro__}
    if hasattr(error, "sqlstate"):  # psycopg
        state = error.sqlstate
        if state is None:
            # libpq's own failures (refused, reset, closed) carry no SQLSTATE; server errors do.
            return bool(names & {"OperationalError", "InterfaceError"})
        return (
            state.startswith("08")
            or state in _LOST_CONNECTION_STATES
            or state in _ROLLED_BACK_STATES
        )
    if hasattr(error, "sqlite_errorname"):  # sqlite3
        return error.sqlite_errorname in _SQLITE_BUSY
    return None


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a lost connection, worth retrying.

    Optuna wraps SQLAlchemy errors raised inside a session in ``StorageInternalError``; the
    cause is a SQLAlchemy ``DBAPIError`` around the driver's exception, whose SQLSTATE (or
    SQLite error name) decides. A syntax error, a missing table, a statement timeout or a full
    disk is no outage: retrying it would only hide it.
    """
    for current in _chain(exc):
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sqlalchemy.exc.DisconnectionError | ConnectionError):
            return True
        verdict = _dbapi_says_lost(current)
        if verdict is not None:
            return verdict
    return False


def _is_database_error(exc: BaseException) -> bool:
    """A database's own error (not Optuna's bookkeeping such as UpdateFinishedTrialError)."""
    return any(
        isinstance(current, sqlalchemy.exc.DBAPIError)
        and not isinstance(current, sqlalchemy.exc.IntegrityError)
        for current in _chain(exc)
    )


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
        outage_limit: Seconds one call may retry a lost connection before it raises
            ``StorageError`` (and every later call with it).
        masked_url: The URL as messages show it (no password).
        **kwargs: Passed to ``RDBStorage`` (engine kwargs, heartbeat settings).
    """

    def __init__(self, url: str, *, outage_limit: float, masked_url: str, **kwargs: Any) -> None:
        self._outage_limit = float(outage_limit)
        self._masked_url = masked_url
        self._lock = threading.Lock()
        self._failing = 0  # calls now retrying: the outage logged once, its end once
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

    def _failed(self, what: str, exc: BaseException, first_failure: float) -> None:
        """Record a failed try of a call that first failed at ``first_failure``."""
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
            lasted = now - first_failure
            if lasted >= self._outage_limit and self._lost is None:
                self._lost = (
                    f"storage {self._masked_url} unreachable for {lasted:.0f} s "
                    f"(study.db_outage_seconds: {self._outage_limit:g}): {_reason(exc)}"
                )

    def _recovered(self, *, succeeded: bool) -> None:
        with self._lock:
            self._failing -= 1
            if not succeeded or self._failing or self._down_since is None:
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
        *,
        landed: Callable[[], T | None] | None = None,
    ) -> T:
        """Run ``call``, retrying a lost connection for up to ``outage_limit`` seconds.

        Args:
            what: The call's name, for messages.
            call: One attempt.
            landed: For a write that is not idempotent: after a failed attempt, returns the
                attempt's result if it committed after all (its acknowledgement was lost), or
                None to try again.

        Raises:
            StorageError: the connection stayed lost past the limit, or the database refused
                the call for another reason (its one-line reason).
        """
        delay = _FIRST_DELAY
        first_failure: float | None = None
        succeeded = False
        try:
            while True:
                if self._lost is not None:
                    raise StorageError(self._lost)
                if first_failure is not None and landed is not None:
                    found = landed()
                    if found is not None:
                        succeeded = True
                        return found
                try:
                    with held():  # a signal never cuts a database write in half
                        result = call()
                    succeeded = True
                    return result
                except Exception as exc:
                    if not is_connection_error(exc):
                        if _is_database_error(exc):
                            raise StorageRefused(
                                f"storage {self._masked_url} refused {what}: {_reason(exc)}"
                            ) from exc
                        raise
                    if first_failure is None:
                        first_failure = time.monotonic()
                        with self._lock:
                            self._failing += 1
                    self._failed(what, exc, first_failure)
                    if self._lost is not None:
                        raise StorageError(self._lost) from None
                    time.sleep(delay)
                    delay = min(delay * 2, self._max_delay)
        finally:
            if first_failure is not None:
                self._recovered(succeeded=succeeded)

    # -- writes that must recognise their own first attempt ------------------------------------

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        # Behind both create_new_trial and Optuna's cached storage; one attempt per try (not
        # Optuna's own retry loop, which cannot tell a lost acknowledgement from a failure).
        token = uuid.uuid4().hex
        template = _with_create_token(template_trial, token)
        return self._retry(
            "create_new_trial",
            lambda: self._create_trial_once(study_id, template),
            landed=lambda: self._created_with(study_id, token),
        )

    def _create_trial_once(self, study_id: int, template: FrozenTrial) -> FrozenTrial:
        with _create_scoped_session(self.scoped_session) as session:
            # The study row's lock serializes the numbering of trials, as in Optuna.
            models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
            trial = self._get_prepared_new_trial(study_id, template, session)
            frozen = copy.deepcopy(template)
            frozen.number = trial.number
            frozen.datetime_start = trial.datetime_start
            frozen._trial_id = trial.trial_id
        return frozen

    def _created_with(self, study_id: int, token: str) -> FrozenTrial | None:
        def find() -> int | None:
            session = self.scoped_session()
            try:
                found = (
                    session.query(models.TrialSystemAttributeModel.trial_id)
                    .join(models.TrialModel)
                    .filter(models.TrialModel.study_id == study_id)
                    .filter(models.TrialSystemAttributeModel.key == CREATE_TOKEN_KEY)
                    .filter(models.TrialSystemAttributeModel.value_json == json.dumps(token))
                    .one_or_none()
                )
                session.commit()
            except Exception:
                session.rollback()
                raise
            finally:
                session.close()
            return None if found is None or found[0] is None else int(found[0])

        trial_id = self._retry("create_new_trial (did it land?)", find)
        if trial_id is None:
            return None
        return self._retry("get_trial", lambda: RDBStorage.get_trial(self, trial_id))

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        def landed() -> bool | None:
            try:
                stored = self._retry(
                    "get_trial_param",
                    lambda: RDBStorage.get_trial_param(self, trial_id, param_name),
                )
            except KeyError:
                return None
            return True if stored == param_value_internal else None

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
            landed=landed,
        )

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state in (TrialState.RUNNING, TrialState.FAIL):
            # Several workers may write these to one trial (claims of a WAITING trial, FAILs of
            # a stale one): only a token tells one's own landed write from another's.
            stamp = {"state": state.name, "token": uuid.uuid4().hex}
            return self._retry(
                "set_trial_state_values",
                lambda: self._set_state_once(trial_id, state, values, stamp),
                landed=lambda: self._stamped(trial_id, stamp),
            )

        def landed() -> bool | None:
            # Only the trial's own worker completes or prunes it: the same state and values
            # stored are this call's.
            stored = self._retry("get_trial", lambda: RDBStorage.get_trial(self, trial_id))
            same = values is None or list(stored.values or []) == list(values)
            return True if stored.state == state and same else None

        return self._retry(
            "set_trial_state_values",
            lambda: RDBStorage.set_trial_state_values(self, trial_id, state, values),
            landed=landed,
        )

    def _set_state_once(
        self,
        trial_id: int,
        state: TrialState,
        values: Sequence[float] | None,
        stamp: dict[str, str],
    ) -> bool:
        # RDBStorage.set_trial_state_values, plus the stamp in the same transaction.
        try:
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                self.check_trial_is_updatable(trial_id, trial.state)
                if state == TrialState.RUNNING and trial.state != TrialState.WAITING:
                    return False
                for objective, value in enumerate(values or ()):
                    self._set_trial_value_without_commit(session, trial, objective, value)
                self._set_trial_attr_without_commit(
                    session, models.TrialSystemAttributeModel, trial_id, STATE_TOKEN_KEY, stamp
                )
                trial.state = state
                if state == TrialState.RUNNING:
                    trial.datetime_start = datetime.now()
                if state.is_finished():
                    trial.datetime_complete = datetime.now()
        except sqlalchemy.exc.IntegrityError:
            return False
        return True

    def _stamped(self, trial_id: int, stamp: dict[str, str]) -> bool | None:
        attrs = self._retry(
            "get_trial_system_attrs",
            lambda: RDBStorage.get_trial_system_attrs(self, trial_id),
        )
        return True if attrs.get(STATE_TOKEN_KEY) == stamp else None

    # -- heartbeats and stale trials -----------------------------------------------------------

    def record_heartbeat(self, trial_id: int) -> None:
        """Retried like every call, and never raises: the heartbeat thread must not die."""
        try:
            self._retry("record_heartbeat", lambda: RDBStorage.record_heartbeat(self, trial_id))
        except StorageError as exc:
            if self._lost is None:  # not the outage: the worker's own next call says that
                _log.warning("heartbeat of trial id %d not recorded: %s", trial_id, exc)
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


def _with_create_token(template: FrozenTrial | None, token: str) -> FrozenTrial:
    """The template a new trial is created from, carrying the creating call's token.

    No template means a fresh RUNNING trial, as Optuna creates it. The tokens of the trial a
    template was copied from (a stale trial's retry) are dropped.
    """
    if template is None:
        return FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={CREATE_TOKEN_KEY: token},
            intermediate_values={},
            trial_id=-1,
        )
    template = copy.deepcopy(template)
    template.system_attrs = {
        **{k: v for k, v in template.system_attrs.items() if k != STATE_TOKEN_KEY},
        CREATE_TOKEN_KEY: token,
    }
    return template


for _name in _RETRIED:
    setattr(ResilientRDBStorage, _name, _retried(getattr(RDBStorage, _name)))
