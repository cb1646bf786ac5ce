"""``hpo run`` with a trial whose training explodes: it fails with the reason, others go on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpo.testing.studies import tiny_study

CliRun = Callable[..., tuple[int, str, str]]


def test_a_nan_validation_loss_fails_the_trial_and_the_study_goes_on(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    # SGD at lr 1000 trains on finite (huge) losses, and its first evaluation is NaN: that
    # trial used to end COMPLETE or PRUNED with a score.
    storage = f"sqlite:///{tmp_path / 'boom.db'}"
    study_file = tmp_path / "boom.yaml"
    study = {"sampler": {"name": "grid"}, "pruner": {"name": "none"}, "storage": storage}
    space = {"train.optimizer.lr": {"choice": [0.05, 1000.0]}}
    study_file.write_text(tiny_study(demo_data, study=study, search_space=space, epochs=2))
    code, _, err = run_cli(
        "run", "--study", "boom", "--config", study_file, "--n-trials", 2, "--quiet"
    )
    assert code == 0, err
    trials = optuna.load_study(study_name="boom", storage=storage).trials
    by_lr = {t.params["train.optimizer.lr"]: t for t in trials}
    assert set(by_lr) == {0.05, 1000.0}
    exploded = by_lr[1000.0]
    assert exploded.state == TrialState.FAIL and exploded.value is None
    assert exploded.user_attrs["fail_reason"].startswith(
        "TrainingError: validation loss became nan at epoch 1/2"
    )
    assert by_lr[0.05].state == TrialState.COMPLETE and by_lr[0.05].value is not None
