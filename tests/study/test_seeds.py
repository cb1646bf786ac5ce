"""A seeded study file on several workers, and on resume, samples new points every trial."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hpo.space import parse_space
from hpo.study import DISCARDED_ATTR, build_sampler, load_study_spec, open_storage, run_worker
from hpo.testing import running_trial

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

_FORK = multiprocessing.get_context("fork")
_SHIPPED = Path(__file__).parents[2] / "studies" / "mask-clf.yaml"


def _worker(url: str, sampler: dict[str, Any], n_trials: int) -> None:
    """One `hpo run` worker's sampling: the shipped search space, a trivial objective."""
    spec = load_study_spec(_SHIPPED)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source="shipped")
    study = optuna.load_study(
        study_name="s",
        storage=open_storage(url, heartbeat_interval=None),
        sampler=build_sampler(sampler, grid=space.grid),
    )

    def objective(trial: optuna.Trial) -> float:
        values = space.sample(trial)
        time.sleep(0.05)
        return float(values["train.optimizer.lr"])

    run_worker(study, objective, n_trials=n_trials, poll_seconds=0.2)


def _param_sets(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [
        tuple(sorted(t.params.items()))
        for t in study.trials
        if t.params and DISCARDED_ATTR not in t.user_attrs
    ]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_four_workers_with_the_shipped_seed_sample_no_duplicates(
    tmp_path: Path, sampler: str
) -> None:
    shipped = dict(load_study_spec(_SHIPPED).study.sampler)
    assert shipped["seed"] == 0
    entry = shipped if sampler == "tpe" else {"name": "random", "seed": 0}
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=open_storage(url, heartbeat_interval=None))
    workers = [_FORK.Process(target=_worker, args=(url, entry, 12)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    study = optuna.load_study(study_name="s", storage=url)
    params = _param_sets(study)
    assert len(params) >= 12
    assert len(set(params)) == len(params)


def test_a_resumed_study_samples_new_points_and_a_retry_keeps_its_own(tmp_path: Path) -> None:
    entry = dict(load_study_spec(_SHIPPED).study.sampler)
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url, heartbeat_interval=1, grace_period=2, max_retry=1)
    optuna.create_study(study_name="s", storage=storage)
    _worker(url, entry, 3)
    # A worker killed mid-trial: a sampled trial, RUNNING, whose heartbeat stopped.
    spec = load_study_spec(_SHIPPED)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source="shipped")
    study = optuna.load_study(
        study_name="s", storage=storage, sampler=build_sampler(entry, grid=space.grid)
    )
    dead = running_trial(study)
    space.sample(dead)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(3.5)  # stale past the 2 s grace period (SQLite timestamps are whole seconds)

    # The resumed worker (same study file, same seed) retries the dead trial, then goes on.
    def objective(trial: optuna.Trial) -> float:
        return float(space.sample(trial)["train.optimizer.lr"])

    resumed = optuna.load_study(
        study_name="s", storage=storage, sampler=build_sampler(entry, grid=space.grid)
    )
    run_worker(resumed, objective, n_trials=6, poll_seconds=0.2, timeout=60)
    trials = resumed.trials
    assert trials[dead.number].state == TrialState.FAIL
    retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t)]
    assert [t.params for t in retries] == [trials[dead.number].params]  # the intended repeat
    fresh = [t for t in trials if t.number != dead.number and t not in retries]
    sets = [tuple(sorted(t.params.items())) for t in fresh]
    assert len(sets) == 5 and len(set(sets)) == 5
    assert tuple(sorted(trials[dead.number].params.items())) not in sets
