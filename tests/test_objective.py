"""The objective on real tiny trials: what it reports, when it prunes, what it records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from hpo.config import DataConfig
from hpo.exceptions import DataError
from hpo.study import CutFold, WorkerInfo, read_trial_record
from hpo.testing.objective import tiny_objective

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR = {"train.optimizer.lr": {"float": [0.001, 0.01], "log": True}}


class _AlwaysPrune(optuna.pruners.BasePruner):
    """Prunes at the first report: the pruner is asked after every one."""

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return True


def _study(pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=pruner or optuna.pruners.NopPruner())


@pytest.mark.slow
def test_reports_every_epoch_at_fold_times_epochs_plus_epoch(
    tmp_path: Path, demo_data: Path
) -> None:
    objective = tiny_objective(tmp_path, demo_data, search_space=LR, epochs=2, folds=2)
    events: list[dict[str, Any]] = []
    objective.on_event = events.append
    study = _study()
    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    record = read_trial_record(trial)
    assert trial.state == TrialState.COMPLETE
    assert record.history is not None and [len(f) for f in record.history] == [2, 2]
    f1 = [epoch["macro_f1"] for fold in record.history for epoch in fold]
    assert trial.intermediate_values == pytest.approx(dict(enumerate(f1)))
    assert record.fold_scores == pytest.approx((f1[1], f1[3]))
    assert trial.value == pytest.approx((f1[1] + f1[3]) / 2)
    assert record.epochs_trained == 4
    assert record.worker == WorkerInfo.this_process("cpu")
    assert events[0] == {"event": "trial_start", "trial": 0}
    assert [(e["fold"], e["epoch"]) for e in events[1:]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [e["f1"] for e in events[1:]] == pytest.approx(f1)


@pytest.mark.slow
def test_a_trial_pruned_inside_a_fold_keeps_that_epochs_scores(
    tmp_path: Path, demo_data: Path
) -> None:
    objective = tiny_objective(tmp_path, demo_data, search_space=LR, epochs=2, folds=2)
    study = _study(_AlwaysPrune())
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"macro-F1 \d\.\d{4} at fold 0, epoch 1/2"):
        objective(trial)
    study.tell(trial, state=TrialState.PRUNED)

    record = read_trial_record(study.trials[0])
    assert record.pruned_at_step == 0 and record.pruned_at_fold is None
    assert record.cut_fold == CutFold(fold=0, epoch=1, epochs=2)
    assert record.fold_scores == () and record.epochs_trained == 1
    assert record.history is not None and [len(f) for f in record.history] == [1]
    assert record.scores is not None and len(record.scores.per_class_f1) == 18
    assert set(record.scores.factor_f1) == {"mask", "gender", "age"}


@pytest.mark.slow
def test_per_fold_pruning_stops_after_the_fold_and_returns_its_mean(
    tmp_path: Path, demo_data: Path
) -> None:
    objective = tiny_objective(
        tmp_path, demo_data, search_space=LR, epochs=1, folds=2, per_fold_pruning=True
    )
    study = _study(_AlwaysPrune())
    study.optimize(objective, n_trials=1)

    trial = study.trials[0]
    record = read_trial_record(trial)
    # Pruned after fold 0: the trial completes with the mean of the folds it ran.
    assert trial.state == TrialState.COMPLETE
    assert record.pruned_at_fold == 0 and record.pruned_at_step == 0
    assert record.fold_scores is not None and len(record.fold_scores) == 1
    assert trial.value == pytest.approx(record.fold_scores[0])
    assert trial.intermediate_values == pytest.approx({0: record.fold_scores[0]})
    assert record.cut_fold is None and record.epochs_trained == 1


def test_a_failed_trial_records_why_with_its_worker_and_config(
    tmp_path: Path, demo_data: Path
) -> None:
    def unreadable(cfg: DataConfig) -> Any:
        raise DataError(f"{cfg.root}: no images")

    objective = tiny_objective(tmp_path, demo_data, search_space=LR, data_loader=unreadable)
    study = _study()
    study.optimize(objective, n_trials=1, catch=(DataError,))

    trial = study.trials[0]
    record = read_trial_record(trial)
    assert trial.state == TrialState.FAIL
    assert record.fail_reason == f"DataError: {demo_data}: no images"
    assert record.worker == WorkerInfo.this_process("cpu")
    assert record.config is not None
    assert record.config["train"]["optimizer"]["lr"] == trial.params["train.optimizer.lr"]
    assert record.fold_scores == () and record.epochs_trained == 0 and record.scores is None
    assert record.seconds is not None and record.device == "cpu"
