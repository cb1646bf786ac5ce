"""tiny_objective: the CPU objective of a tiny study file, for tests that call study.ask()."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo.testing.objective import tiny_objective


@pytest.mark.slow
def test_the_tiny_objective_runs_a_real_trial(tmp_path: Path, demo_data: Path) -> None:
    search = {"train.optimizer.lr": {"float": [0.001, 0.01], "log": True}}
    objective = tiny_objective(tmp_path, demo_data, search_space=search)
    assert (tmp_path / "tiny.yaml").is_file(), "its study file is written in the folder"
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    value = objective(trial)
    study.tell(trial, value)
    assert 0.0 <= value <= 1.0
    assert set(study.trials[0].params) == {"train.optimizer.lr"}
