"""The worker loop and storage handling, tested with trivial objectives (no training)."""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.exceptions import Interrupted, StorageError
from hpo.study import (
    DISCARDED_ATTR,
    FINISHED,
    load_study,
    mask_url,
    open_storage,
    resolve_storage_url,
    run_worker,
    state_counts,
)
from hpo.testing import running_trial


def _study(url: str, name: str = "s") -> optuna.Study:
    return optuna.create_study(
        storage=open_storage(url, heartbeat_interval=None),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
    )


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def test_storage_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_storage_url("x", cli=None, spec=None, studies_dir=tmp_path) == (
        f"sqlite:///{tmp_path}/x.db"
    )
    assert resolve_storage_url("x", cli=None, spec="sqlite:///a.db", studies_dir=tmp_path) == (
        "sqlite:///a.db"
    )
    monkeypatch.setenv("HPO_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url("x", cli=None, spec="sqlite:///a.db", studies_dir=tmp_path) == (
        "sqlite:///env.db"
    )
    assert resolve_storage_url("x", cli="sqlite:///cli.db", spec=None, studies_dir=tmp_path) == (
        "sqlite:///cli.db"
    )
    # Plain postgresql:// goes to psycopg 3, the driver we ship.
    url = resolve_storage_url("x", cli="postgresql://u:pw@h/db", spec=None, studies_dir=tmp_path)
    assert url == "postgresql+psycopg://u:pw@h/db"
    assert mask_url(url) == "postgresql+psycopg://u:***@h/db"


def test_trial_cap_is_exact_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    study = _study(url)
    result = run_worker(study, lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    assert len(result.ran) == 4
    assert _finished(study) == 4
    # Re-running with the same total does nothing; a larger total resumes the study.
    assert run_worker(study, lambda t: 1.0, n_trials=4).ran == []
    run_worker(study, lambda t: t.suggest_float("x", 0, 1), n_trials=6)
    assert _finished(study) == 6


def test_pruned_trials_count_and_failed_ones_do_not(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path}/s.db")
    calls = {"n": 0}

    def objective(trial: optuna.Trial) -> float:
        calls["n"] += 1
        if calls["n"] % 3 == 1:
            raise ValueError("bad configuration")
        if calls["n"] % 3 == 2:
            raise optuna.TrialPruned()
        return 0.5

    result = run_worker(study, objective, n_trials=4)
    counts = state_counts(study)
    assert counts["complete"] + counts["pruned"] == 4
    assert counts["fail"] >= 2
    assert result.stopped_by == "n_trials"


def test_consecutive_failures_stop_the_worker(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path}/s.db")

    def objective(trial: optuna.Trial) -> float:
        raise RuntimeError("always broken")

    result = run_worker(study, objective, n_trials=10, max_consecutive_failures=3)
    assert result.stopped_by == "failures"
    assert state_counts(study)["fail"] == 3


def test_timeout_stops_starting_trials(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path}/s.db")

    def slow(trial: optuna.Trial) -> float:
        time.sleep(0.3)
        return 1.0

    result = run_worker(study, slow, n_trials=None, timeout=0.5)
    assert result.stopped_by == "timeout"
    assert 1 <= len(result.ran) <= 3


def _worker(url: str, n_trials: int) -> None:
    study = optuna.load_study(study_name="s", storage=open_storage(url, heartbeat_interval=5))

    def objective(trial: optuna.Trial) -> float:
        time.sleep(0.05)
        return trial.suggest_float("x", 0, 1)

    run_worker(study, objective, n_trials=n_trials, poll_seconds=0.2)


def test_concurrent_workers_reach_the_exact_total(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    study = _study(url)
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_worker, args=(url, 9)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert _finished(study) == 9
    # Races for the last slots are settled by giving the loser's trial up, never by running it.
    others = [t for t in study.get_trials() if t.state not in FINISHED]
    assert all(DISCARDED_ATTR in t.user_attrs for t in others)
    assert state_counts(study)["complete"] == 9


def test_waiting_worker_takes_over_a_dead_workers_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2, max_retry=1)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.optimize(lambda t: 1.0, n_trials=1)
    # A worker that died mid-trial: RUNNING, with a heartbeat that stopped long ago.
    dead = running_trial(study, {"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)
    time.sleep(4)  # SQLite timestamps have one-second resolution
    result = run_worker(study, lambda t: 0.5, n_trials=2, poll_seconds=0.2, timeout=60)
    assert study.trials[dead.number].state == TrialState.FAIL
    assert _finished(study) == 2
    assert len(result.ran) == 1  # the retried copy of the dead trial


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_trial_is_failed_and_requeued_with_its_parameters(
    tmp_path: Path, signum: int
) -> None:
    # Ctrl-C, or SIGTERM from a scheduler (Slurm's scancel or requeue, a pod's eviction).
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=60, max_retry=1)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")

    def stopped(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise Interrupted(signum)

    with pytest.raises(Interrupted):
        run_worker(study, stopped, n_trials=2)
    [failed] = study.get_trials(states=(TrialState.FAIL,))
    [queued] = study.get_trials(states=(TrialState.WAITING,))
    assert queued.params == failed.params
    assert queued.system_attrs["failed_trial"] == failed.number
    # The next worker runs the queued copy first; the study-wide total stays exact.
    ran = run_worker(study, lambda t: t.suggest_float("x", 0, 1), n_trials=2).ran
    assert ran[0] == queued.number and study.trials[queued.number].params == failed.params
    assert _finished(study) == 2
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    # max_retry=1: the copy, interrupted again, is not queued a second time.
    with pytest.raises(Interrupted):
        run_worker(study, stopped, n_trials=3)
    histories = [t.system_attrs.get("retry_history") for t in study.trials]
    assert histories.count([failed.number]) == 1


def test_missing_study_names_the_existing_ones(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    _study(url, "alpha")
    with pytest.raises(StorageError, match=r"no study named 'beta'.*alpha"):
        load_study("beta", url)


def test_missing_sqlite_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path}/nope/s.db")


def test_loading_from_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        load_study("s", f"sqlite:///{tmp_path}/missing.db")
    assert not (tmp_path / "missing.db").exists()
