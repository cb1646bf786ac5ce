"""Storages on SQLite and a real PostgreSQL: sharing, heartbeats, masking, concurrent writers."""

from __future__ import annotations

import multiprocessing
import socket
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hpo.cli import main
from hpo.exceptions import StorageError
from hpo.study import mask_url, open_storage, resolve_storage_url
from hpo.testing import PostgresServer

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# Worker processes are forked (fast on 2 cores): each opens its own storage and connections,
# as separate `hpo run` processes do; only the test's parent-side objects are inherited, unused.
_FORK = multiprocessing.get_context("fork")


def _open(url: str, **kwargs: Any) -> RDBStorage:
    """Open a storage the way the commands do: URL normalized first, then open_storage."""
    normalized = resolve_storage_url("unused", cli=url, spec=None, studies_dir=Path("."))
    return open_storage(normalized, **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", -1.0, 1.0) ** 2


# ---------------------------------------------------------------------------------------------
# Both backends


def test_open_storage_round_trip(storage_url: str) -> None:
    storage = _open(storage_url)
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(_objective, n_trials=3)

    reopened = optuna.load_study(study_name="s", storage=_open(storage_url))
    assert [t.state for t in reopened.trials] == [TrialState.COMPLETE] * 3
    assert reopened.best_value == study.best_value
    assert storage.get_heartbeat_interval() == 60


def test_two_workers_share_one_study(storage_url: str) -> None:
    # ask/tell runs no heartbeat thread, so these storages have none.
    storage_a = _open(storage_url, heartbeat_interval=None)
    storage_b = _open(storage_url, heartbeat_interval=None)
    worker_a = optuna.create_study(study_name="shared", storage=storage_a)
    worker_b = optuna.create_study(study_name="shared", storage=storage_b, load_if_exists=True)

    trial_a = worker_a.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial_b = worker_b.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert trial_a.number != trial_b.number
    worker_a.tell(trial_a, 1.0)
    worker_b.tell(trial_b, 0.5)

    for study in (worker_a, worker_b):
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
        assert study.best_value == 0.5


def _hang_in_trial(url: str, study_name: str) -> None:
    """A worker that starts a trial and never finishes it (the parent kills it)."""
    storage = _open(url, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name=study_name, storage=storage)

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        time.sleep(120)
        return 0.0

    study.optimize(objective, n_trials=1)


def _wait_for_running(study: optuna.Study, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not study.get_trials(states=(TrialState.RUNNING,)):
        assert time.monotonic() < deadline, "the worker never started its trial"
        time.sleep(0.1)


def test_stale_trial_is_failed_and_retried(storage_url: str) -> None:
    storage = _open(storage_url, heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(study_name="hb", storage=storage)
    worker = _FORK.Process(target=_hang_in_trial, args=(storage_url, "hb"))
    worker.start()
    try:
        _wait_for_running(study)
        # Past the grace period, but the live worker keeps beating: nothing is stale.
        time.sleep(2.5)
        optuna.storages.fail_stale_trials(study)
        assert [t.state for t in study.trials] == [TrialState.RUNNING]
    finally:
        worker.kill()
        worker.join(10)

    time.sleep(2.5)  # no heartbeat since the kill: stale once the 2 s grace period has passed
    optuna.storages.fail_stale_trials(study)

    failed, retry = study.trials
    assert failed.state == TrialState.FAIL
    assert retry.state == TrialState.WAITING
    assert retry.params == failed.params
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == failed.number

    # The next worker picks the re-queued trial up with the same parameters.
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert study.trials[retry.number].state == TrialState.COMPLETE
    assert study.trials[retry.number].params == failed.params


# ---------------------------------------------------------------------------------------------
# Passwords never reach logs or error messages


@pytest.mark.parametrize(
    ("url", "secrets", "kept"),
    [
        ("postgresql://hpo:s3cret-pw@db.example:5432/hpo", ["s3cret-pw"], ["hpo", "db.example"]),
        (
            "postgresql+psycopg://u:p%40ss%2Fw0rd@10.0.0.5/studies",
            ["p%40ss%2Fw0rd", "p@ss/w0rd", "w0rd"],
            ["u", "10.0.0.5", "studies"],
        ),
        ("postgresql://hpo@db.example/hpo", [], ["postgresql://hpo@db.example/hpo"]),
        ("sqlite:///studies/x.db", [], ["sqlite:///studies/x.db"]),
    ],
)
def test_mask_url_hides_the_password(url: str, secrets: list[str], kept: list[str]) -> None:
    masked = mask_url(url)
    for secret in secrets:
        assert secret not in masked
    for part in kept:
        assert part in masked


def test_unreachable_server_error_names_host_not_password() -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql://hpo:do-not-print-me@127.0.0.1:{port}/hpo"
    with pytest.raises(StorageError) as excinfo:
        _open(url)
    message = str(excinfo.value)
    assert "do-not-print-me" not in message
    assert "127.0.0.1" in message
    assert str(port) in message


@pytest.mark.postgres
def test_wrong_password_error_names_host_not_password(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.url.replace(":secret@", ":wrong-hunter2@")
    with pytest.raises(StorageError) as excinfo:
        _open(url)
    message = str(excinfo.value)
    assert "wrong-hunter2" not in message
    assert "secret" not in message
    assert "127.0.0.1" in message
    assert "password authentication failed" in message

    # Through a command: one line on stderr, exit code 2, still no password.
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--study", "any", "--storage", url])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot open storage ")
    assert err.count("\n") == 1
    assert "wrong-hunter2" not in err
    assert "127.0.0.1" in err


# ---------------------------------------------------------------------------------------------
# SQLite with several worker processes on one machine


def _sqlite_worker(url: str, barrier: Any, n_trials: int) -> None:
    study = optuna.load_study(study_name="busy", storage=_open(url))
    barrier.wait(timeout=60)  # all processes hit the file at the same moment
    study.optimize(_objective, n_trials=n_trials)


def test_sqlite_concurrent_processes_do_not_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    optuna.create_study(study_name="busy", storage=_open(url))
    n_workers, n_trials = 3, 20
    barrier = _FORK.Barrier(n_workers)
    workers = [
        _FORK.Process(target=_sqlite_worker, args=(url, barrier, n_trials))
        for _ in range(n_workers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    # A 'database is locked' error escapes study.optimize and makes the process exit non-zero.
    assert [w.exitcode for w in workers] == [0] * n_workers

    study = optuna.load_study(study_name="busy", storage=_open(url))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == n_workers * n_trials
    assert len(states) == n_workers * n_trials
