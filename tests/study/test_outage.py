"""Database outages on a real PostgreSQL server: calls retry, heartbeats survive, limits hold."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.exceptions import StorageError
from hpo.study import DISCARDED_ATTR, FINISHED, open_storage, run_worker
from hpo.study._outage import ResilientRDBStorage
from hpo.testing import PostgresServer, require_postgres_bindir, running_trial
from hpo.testing.postgres import postgres_server
from hpo.testing.studies import write_tiny_study

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    """A server of this test's own: stopping it must not disturb the session's server."""
    with postgres_server(bindir=require_postgres_bindir()) as pg:
        yield pg


def _outage(server: PostgresServer, seconds: float, *, after: float = 0.0) -> threading.Thread:
    def run() -> None:
        time.sleep(after)
        server.stop()
        time.sleep(seconds)
        server.start()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_calls_and_heartbeats_ride_out_a_restart(server: PostgresServer) -> None:
    storage = open_storage(server.url, heartbeat_interval=1, outage_limit=30)
    assert isinstance(storage, ResilientRDBStorage)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = running_trial(study)
    storage.record_heartbeat(trial._trial_id)
    outage = _outage(server, 3)
    time.sleep(0.5)  # the server is down now
    started = time.monotonic()
    storage.record_heartbeat(trial._trial_id)  # retried, never raised
    trial.report(0.5, 0)
    study.tell(trial, 1.0)
    waited = time.monotonic() - started
    outage.join()
    assert 2.0 <= waited <= 15
    assert study.trials[0].state == TrialState.COMPLETE
    assert study.trials[0].intermediate_values == {0: 0.5}


def test_asking_suggesting_and_reading_between_trials_ride_out_a_restart(
    server: PostgresServer,
) -> None:
    # Optuna's cached storage (every study's wrapper around an RDB storage) calls private
    # methods of ours: _create_new_trial, _set_trial_param, _get_trials, _get_best_trial_id.
    storage = open_storage(server.url, heartbeat_interval=1, outage_limit=30)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    outage = _outage(server, 3)
    time.sleep(0.5)  # the server is down now: a worker between trials
    started = time.monotonic()
    assert len(study.get_trials(deepcopy=False)) == 1
    trial = running_trial(study)
    x = trial.suggest_float("x", 0, 1)
    study.tell(trial, 2.0 + x)
    assert study.best_trial.number == 1
    waited = time.monotonic() - started
    outage.join()
    assert 2.0 <= waited <= 15
    fresh = optuna.load_study(study_name="s", storage=open_storage(server.url))
    assert [t.state for t in fresh.trials] == [TrialState.COMPLETE] * 2
    assert fresh.trials[1].params == {"x": x}


def test_an_outage_past_the_limit_is_one_storage_error(server: PostgresServer) -> None:
    storage = open_storage(server.url, heartbeat_interval=1, outage_limit=2)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    steps: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        for step in range(100):
            trial.report(0.1, step)
            steps.append(step)
            if step == 2:
                server.stop()
            time.sleep(0.1)
        return 1.0

    started = time.monotonic()
    try:
        with pytest.raises(StorageError, match=r"unreachable for \d+ s.*db_outage_seconds: 2"):
            run_worker(study, objective, n_trials=2)
        assert time.monotonic() - started < 15
    finally:
        server.start()
    # The trial stays RUNNING: once its heartbeat is stale, another worker runs it again.
    fresh = optuna.load_study(study_name="s", storage=open_storage(server.url))
    assert [t.state for t in fresh.trials] == [TrialState.RUNNING]


@pytest.mark.slow
def test_two_training_workers_survive_a_server_restart(
    server: PostgresServer, demo_data: Path, tmp_path: Path
) -> None:
    study_file = write_tiny_study(
        tmp_path,
        demo_data,
        epochs=6,
        lr_range=(0.001, 0.1),
        lr=0.01,
        heartbeat_interval=1,
        db_outage_seconds=60,
    )
    n_trials = 4
    args = [sys.executable, "-m", "hpo", "run", "--study", "tiny", "--config", str(study_file)]
    args += ["--storage", server.url, "--n-trials", str(n_trials), "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    try:
        storage = open_storage(server.url, heartbeat_interval=None, outage_limit=60)
        deadline = time.monotonic() + 120
        running = 0
        while running < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                study = optuna.load_study(study_name="tiny", storage=storage)
            except KeyError:
                continue
            running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        assert running == 2, "both workers should be training"
        _outage(server, 5).join()
        outputs = [w.communicate(timeout=240)[0].decode() for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output
        assert "Traceback" not in output, output
    assert any("reachable again" in out for out in outputs)
    study = optuna.load_study(study_name="tiny", storage=open_storage(server.url))
    counted = [t for t in study.trials if DISCARDED_ATTR not in t.user_attrs]
    assert sum(t.state in FINISHED for t in counted) == n_trials
    assert not [t for t in counted if t.state == TrialState.FAIL]
    assert not [t for t in study.trials if t.state == TrialState.RUNNING]
