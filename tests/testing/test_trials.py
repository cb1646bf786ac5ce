"""running_trial: a trial started by hand on a storage with heartbeats, without the warning."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from hpo.study import open_storage
from hpo.testing import running_trial


def test_a_running_trial_on_a_storage_with_heartbeats(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=60)
    study = optuna.create_study(storage=storage, study_name="s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the heartbeat warning is silenced, not just filtered
        trial = running_trial(study, {"x": FloatDistribution(0.0, 1.0)})
    (frozen,) = study.get_trials(deepcopy=False)
    assert frozen.number == trial.number and frozen.state == TrialState.RUNNING
    assert set(frozen.distributions) == {"x"} and 0.0 <= frozen.params["x"] <= 1.0
