"""What is retried and what is not, and writes whose acknowledgement was lost, on real databases.

A lost acknowledgement is injected the way a network cut after COMMIT looks to the client: the
driver's commit goes through on the server, then the connection is closed and the driver raises
the error it raises for a dropped connection. A failed try is the same without the commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
import sqlalchemy
from optuna.storages import fail_stale_trials
from optuna.trial import TrialState

from hpo.exceptions import ConfigError, StorageError
from hpo.study import load_study_spec, open_storage, run_worker
from hpo.study._outage import ResilientRDBStorage, is_connection_error
from hpo.study._storage import default_grace_period, minimum_grace_period
from hpo.testing import PostgresServer, running_trial

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

_WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def lost_write(
    storage: ResilientRDBStorage,
    *,
    committed: bool = True,
    meanwhile: Callable[[], None] | None = None,
) -> Iterator[dict[str, int]]:
    """The next transaction that writes loses its acknowledgement (``committed``) or fails.

    ``meanwhile`` runs after the try and before the client sees the error: another worker
    acting while this one waits to retry.
    """
    dialect = storage.engine.dialect
    wrote: set[int] = set()
    fired = {"count": 0}

    def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(_WRITES):
            wrote.add(id(conn.connection.dbapi_connection))

    def do_commit(connection: Any) -> None:
        raw = getattr(connection, "dbapi_connection", connection)  # behind the pool's proxy
        if fired["count"] or id(raw) not in wrote:
            wrote.discard(id(raw))
            type(dialect).do_commit(dialect, connection)
            return
        fired["count"] += 1
        wrote.discard(id(raw))
        if committed:
            type(dialect).do_commit(dialect, connection)
        raw.close()
        if meanwhile is not None:
            meanwhile()
        raise psycopg.OperationalError("server closed the connection unexpectedly (injected)")

    sqlalchemy.event.listen(storage.engine, "before_cursor_execute", before_execute)
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    try:
        yield fired
    finally:
        del dialect.do_commit
        sqlalchemy.event.remove(storage.engine, "before_cursor_execute", before_execute)


def _storage(url: str, **kwargs: Any) -> ResilientRDBStorage:
    storage = open_storage(url, **kwargs)
    assert isinstance(storage, ResilientRDBStorage)
    return storage


# ---------------------------------------------------------------------------------------------
# Which errors are an outage


@pytest.mark.postgres
def test_only_lost_connections_are_outages(postgres_server: PostgresServer) -> None:
    def error_of(sql: str, **connect: Any) -> BaseException:
        engine = sqlalchemy.create_engine(
            postgres_server.url.replace("postgresql://", "postgresql+psycopg://"),
            connect_args=connect,
        )
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text(sql))
        except sqlalchemy.exc.DBAPIError as exc:
            return exc
        finally:
            engine.dispose()
        raise AssertionError(f"{sql} did not fail")

    assert not is_connection_error(error_of("SELEC 1"))  # syntax error, 42601
    assert not is_connection_error(error_of("SELECT * FROM no_such_table"))  # 42P01
    canceled = error_of("SELECT pg_sleep(2)", options="-c statement_timeout=100")
    assert "statement timeout" in str(canceled)
    assert not is_connection_error(canceled)  # 57014 QueryCanceled
    # The server ends the session (57P01, as in a restart or pg_terminate_backend).
    assert is_connection_error(error_of("SELECT pg_terminate_backend(pg_backend_pid())"))
    # Nothing listens there: libpq's own failure, no SQLSTATE.
    engine = sqlalchemy.create_engine("postgresql+psycopg://u:p@127.0.0.1:1/db")
    with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
        engine.connect()
    assert is_connection_error(refused.value)


def test_sqlite_locked_is_an_outage_and_a_full_disk_is_not(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0.05)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("SELECT * FROM t")
    assert "locked" in str(locked.value)
    assert is_connection_error(locked.value)
    holder.execute("ROLLBACK")
    other.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as full:
        other.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    assert "full" in str(full.value)
    assert not is_connection_error(full.value)


def test_a_full_sqlite_disk_is_one_storage_error_at_once(tmp_path: Path) -> None:
    storage = _storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, outage_limit=30)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = running_trial(study)
    storage.engine.dispose()
    # A disk with room for only what is there now (a real SQLITE_FULL from SQLite itself).
    sqlalchemy.event.listen(
        storage.engine,
        "connect",
        lambda conn, _: conn.execute("PRAGMA max_page_count = 30"),
    )
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"refused set_trial_user_attr: .*full"):
        trial.set_user_attr("big", "x" * 1_000_000)
    assert time.monotonic() - started < 5  # not retried as an outage for 30 s


def test_each_call_keeps_its_own_outage_clock(tmp_path: Path) -> None:
    # One call keeps losing its connection while another thread's calls succeed: the failing
    # call still gives up at its own limit (a heartbeat's success is no end of its outage).
    storage = _storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, outage_limit=2)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = running_trial(study)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial._trial_id)
            time.sleep(0.05)

    def always_lost() -> None:
        raise sqlalchemy.exc.OperationalError(
            "SELECT 1", {}, psycopg.OperationalError("connection lost (injected)")
        )

    thread = threading.Thread(target=beat)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(
            StorageError, match=r"unreachable for \d+ s \(study.db_outage_seconds: 2\)"
        ):
            storage._retry("injected", always_lost)
    finally:
        stop.set()
        thread.join()
    assert 2 <= time.monotonic() - started < 8


# ---------------------------------------------------------------------------------------------
# Lost acknowledgements (PostgreSQL)


@pytest.mark.postgres
def test_a_lost_acknowledgement_on_creation_leaves_one_trial(postgres_url: str) -> None:
    storage = _storage(postgres_url, heartbeat_interval=60)
    study = optuna.create_study(study_name="create", storage=storage)
    with lost_write(storage) as fired:
        trial = running_trial(study)
    assert fired["count"] == 1
    assert [t.number for t in study.get_trials()] == [trial.number]
    study.tell(trial, 1.0)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]


@pytest.mark.postgres
def test_a_lost_acknowledgement_on_a_claim_runs_the_enqueued_trial(postgres_url: str) -> None:
    storage = _storage(postgres_url, heartbeat_interval=60)
    study = optuna.create_study(study_name="claim", storage=storage)
    study.enqueue_trial({"x": 0.25})
    with lost_write(storage) as fired:
        trial = running_trial(study)
    assert fired["count"] == 1
    assert trial.suggest_float("x", 0, 1) == 0.25
    study.tell(trial, 1.0)
    trials = study.get_trials()
    assert [(t.state, t.params) for t in trials] == [(TrialState.COMPLETE, {"x": 0.25})]


@pytest.mark.postgres
def test_a_stale_trial_failed_by_two_workers_is_retried_once(postgres_url: str) -> None:
    kwargs = {"heartbeat_interval": 1, "grace_period": 2, "max_retry": 3}
    mine = _storage(postgres_url, **kwargs)
    theirs = _storage(postgres_url, **kwargs)
    study = optuna.create_study(study_name="stale", storage=mine)
    their_study = optuna.load_study(study_name="stale", storage=theirs)
    dead = running_trial(study, {"x": optuna.distributions.FloatDistribution(0, 1)})
    mine.record_heartbeat(dead._trial_id)
    time.sleep(3 + mine.settle_seconds)
    # My FAIL fails before its commit; meanwhile the other worker fails the trial and queues
    # its retry. My retry must not take the other's FAIL for mine and queue a second one.
    with lost_write(mine, committed=False, meanwhile=lambda: fail_stale_trials(their_study)):
        fail_stale_trials(study)
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1
    assert waiting[0].params == dead.params


@pytest.mark.postgres
def test_a_lost_acknowledgement_on_a_stale_fail_is_retried_once(postgres_url: str) -> None:
    storage = _storage(postgres_url, heartbeat_interval=1, grace_period=2, max_retry=3)
    study = optuna.create_study(study_name="stale-ack", storage=storage)
    dead = running_trial(study, {"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)
    time.sleep(3 + storage.settle_seconds)
    with lost_write(storage) as fired:
        fail_stale_trials(study)
    assert fired["count"] == 1
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]


def test_a_discarded_trial_that_went_stale_is_not_retried(tmp_path: Path) -> None:
    storage = _storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="s", storage=storage)
    over = running_trial(study, {"x": optuna.distributions.FloatDistribution(0, 1)})
    over.set_user_attr("hpo:discarded", "another worker took the study's last trial")
    storage.record_heartbeat(over._trial_id)  # then its worker died before failing it
    time.sleep(4 + storage.settle_seconds)  # SQLite timestamps have one-second resolution
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


# ---------------------------------------------------------------------------------------------
# Server-side limits and the grace period


@pytest.mark.postgres
def test_connections_carry_server_side_limits(postgres_url: str) -> None:
    storage = _storage(postgres_url, heartbeat_interval=60)
    with storage.engine.connect() as conn:
        shown = {
            name: conn.execute(sqlalchemy.text(f"SHOW {name}")).scalar()
            for name in (
                "idle_in_transaction_session_timeout",
                "lock_timeout",
                "statement_timeout",
            )
        }
        keepalive = conn.execute(sqlalchemy.text("SHOW tcp_keepalives_idle")).scalar()
    assert shown == {
        "idle_in_transaction_session_timeout": "20s",
        "lock_timeout": "25s",
        "statement_timeout": "2min",
    }
    assert keepalive == "10"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_frozen_worker_holding_the_study_lock_is_cut_off(postgres_url: str) -> None:
    storage = _storage(postgres_url, heartbeat_interval=60)
    study = optuna.create_study(study_name="locked", storage=storage)
    frozen = _storage(postgres_url, heartbeat_interval=60)
    # A worker that stopped inside trial creation: it holds the study row's lock, idle.
    conn = frozen.engine.connect()
    transaction = conn.begin()
    conn.execute(sqlalchemy.text("SELECT * FROM studies FOR UPDATE"))
    started = time.monotonic()
    try:
        running_trial(study)  # waits for the lock until the server ends the idle transaction
        waited = time.monotonic() - started
    finally:
        with contextlib.suppress(sqlalchemy.exc.DBAPIError):  # the server ended that session
            transaction.rollback()
        conn.close()
    assert 15 <= waited <= 40
    assert len(study.get_trials()) == 1


def test_the_default_grace_period_leaves_room_for_one_attempt() -> None:
    assert default_grace_period(60, 120) == 60 + 120 + 30
    assert default_grace_period(60, 10) == 120
    assert minimum_grace_period(10, 20.5) == 10 + 21 + 30


def test_an_unsafe_grace_period_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "study: {heartbeat_interval: 10, db_outage_seconds: 20, grace_period: 30}\n"
        "data: {root: data}\n"
    )
    with pytest.raises(
        ConfigError, match=r"s\.yaml: study\.grace_period 30 is too short.*at least 60"
    ):
        load_study_spec(path)
    with pytest.raises(ConfigError, match=r"--set study\.grace_period=40: .*at least 60"):
        load_study_spec(path, overrides=["study.grace_period=40"])
    spec = load_study_spec(path, overrides=["study.grace_period=60"])
    assert spec.study.grace_period == 60


def test_a_full_disk_fails_the_trial_with_the_reason_and_stops_the_worker(tmp_path: Path) -> None:
    storage = _storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, outage_limit=30)
    study = optuna.create_study(study_name="s", storage=storage)
    full = {"on": False}

    def fill_disk(dbapi_connection: Any, _: Any) -> None:
        if full["on"]:
            dbapi_connection.execute("PRAGMA max_page_count = 1")

    sqlalchemy.event.listen(storage.engine, "connect", fill_disk)

    def objective(trial: optuna.Trial) -> float:
        full["on"] = True
        storage.engine.dispose()  # new connections see a disk with no room to grow
        trial.set_user_attr("history", ["x" * 1000] * 1000)
        return 1.0

    started = time.monotonic()
    with pytest.raises(StorageError, match=r"refused set_trial_user_attr: .*full"):
        run_worker(study, objective, n_trials=3)
    assert time.monotonic() - started < 10
    full["on"] = False
    storage.engine.dispose()
    trials = optuna.load_study(study_name="s", storage=_storage(storage.url)).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL]
