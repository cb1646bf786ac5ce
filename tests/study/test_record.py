"""The trial and study record: every field written and read back through a real Optuna study."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from hpo.objective import trial_config
from hpo.study import (
    CutFold,
    StudyRecord,
    TrialRecord,
    ValidationScores,
    WorkerInfo,
    is_discarded,
    read_study_record,
    read_trial_record,
    record_class_names,
    record_config,
    record_discarded,
    record_fail_reason,
    record_fail_reason_by_id,
    record_result,
    record_study_spec,
    record_worker,
)
from hpo.study._record import METRIC_KEYS
from hpo.testing.objective import tiny_objective

optuna.logging.set_verbosity(optuna.logging.WARNING)

HISTORY = [
    [
        {"epoch": 1, "train_loss": 1.5, "macro_f1": 0.25, "accuracy": 0.5, "lr": 0.01},
        {"epoch": 2, "train_loss": 1.25, "macro_f1": 0.5, "accuracy": 0.75, "lr": 0.005},
    ],
    [{"epoch": 1, "train_loss": 1.75, "macro_f1": 0.125, "accuracy": 0.25, "lr": 0.01}],
]
SCORES = ValidationScores(
    per_class_f1=(0.5, 0.25, 0.75),
    confusion=((3, 1, 0), (0, 2, 2), (1, 0, 5)),
    f1_mask=0.875,
    f1_gender=0.625,
    f1_age=0.375,
    accuracy=0.6667,
)

# What the objective has always stored for a trial pruned inside its second fold, key for key:
# studies written before the record module must read the same.
OLD_ATTRS: dict[str, Any] = {
    "worker": {"host": "node-1", "pid": 4242, "device": "cuda:0"},
    "config": {"train": {"seed": 7, "epochs": 2}, "data": {"format": "mask"}},
    "fold_scores": [0.61],
    "epochs_trained": 3,
    "history": HISTORY,
    "seconds": 12.34,
    "device": "cuda:0",
    "pruned_at_step": 2,
    "cut_fold": {"fold": 1, "epoch": 1, "epochs": 2},
    "per_class_f1": [0.5, 0.25, 0.75],
    "confusion": [[3, 1, 0], [0, 2, 2], [1, 0, 5]],
    "f1_mask": 0.875,
    "f1_gender": 0.625,
    "f1_age": 0.375,
    "accuracy": 0.6667,
}
OLD_RECORD = TrialRecord(
    config={"train": {"seed": 7, "epochs": 2}, "data": {"format": "mask"}},
    worker=WorkerInfo(host="node-1", pid=4242, device="cuda:0"),
    fold_scores=(0.61,),
    epochs_trained=3,
    history=HISTORY,
    seconds=12.34,
    device="cuda:0",
    pruned_at_step=2,
    cut_fold=CutFold(fold=1, epoch=1, epochs=2),
    scores=SCORES,
)


@pytest.fixture(params=["memory", "sqlite"])
def study(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[optuna.Study]:
    storage = None if request.param == "memory" else f"sqlite:///{tmp_path / 'record.db'}"
    yield optuna.create_study(storage=storage, study_name="record", direction="maximize")


def _reloaded(study: optuna.Study) -> optuna.Study:
    """The study as another process sees it (a SQLite study read from its file)."""
    if isinstance(study._storage, optuna.storages.InMemoryStorage):
        return study
    return optuna.load_study(study_name=study.study_name, storage=study._storage)


def test_every_trial_field_round_trips(study: optuna.Study) -> None:
    config = _tiny_config()
    trial = study.ask()
    record_worker(trial, WorkerInfo(host="node-1", pid=4242, device="cuda:0"))
    record_config(trial, config)
    record_fail_reason(trial, "TrainingError: loss is NaN")
    record_result(
        trial,
        fold_scores=[0.61, 0.59],
        epochs_trained=3,
        history=HISTORY,
        seconds=12.3456,
        device="cuda:0",
        pruned_at_step=3,
        pruned_at_fold=1,
        cut_fold=CutFold(fold=1, epoch=1, epochs=2),
        scores=SCORES,
    )
    # A running trial reads its own record from its local copy (the publisher does).
    assert read_trial_record(trial).fold_scores == (0.61, 0.59)
    study.tell(trial, state=TrialState.FAIL)

    frozen = _reloaded(study).trials[0]
    assert read_trial_record(frozen) == TrialRecord(
        config=config.to_dict(),
        worker=WorkerInfo(host="node-1", pid=4242, device="cuda:0"),
        fail_reason="TrainingError: loss is NaN",
        fold_scores=(0.61, 0.59),
        epochs_trained=3,
        history=HISTORY,
        seconds=12.35,  # stored to 2 decimals
        device="cuda:0",
        pruned_at_step=3,
        pruned_at_fold=1,
        cut_fold=CutFold(fold=1, epoch=1, epochs=2),
        scores=SCORES,
    )
    record = read_trial_record(frozen)
    assert record.seed == config.train.seed
    assert record.last_macro_f1 == 0.125
    assert record.scores is not None
    assert record.scores.factor_f1 == {"mask": 0.875, "gender": 0.625, "age": 0.375}
    assert not is_discarded(frozen)


def test_scores_are_stored_rounded_to_4_decimals(study: optuna.Study) -> None:
    trial = study.ask()
    scores = ValidationScores(per_class_f1=(0.123456, 1 / 3), f1_mask=0.987654321)
    record_result(
        trial,
        fold_scores=[],
        epochs_trained=0,
        history=[],
        seconds=0.0,
        device="cpu",
        scores=scores,
    )
    study.tell(trial, 0.0)
    stored = read_trial_record(_reloaded(study).trials[0]).scores
    assert stored == ValidationScores(per_class_f1=(0.1235, 0.3333), f1_mask=0.9877)


def test_a_trial_with_nothing_recorded_reads_as_empty(study: optuna.Study) -> None:
    study.tell(study.ask(), 0.5)
    assert read_trial_record(_reloaded(study).trials[0]) == TrialRecord()


def test_discarded_marker(study: optuna.Study) -> None:
    trial = study.ask()
    record_discarded(trial, "another worker took the study's last trial")
    study.tell(trial, state=TrialState.FAIL)
    frozen = _reloaded(study).trials[0]
    assert is_discarded(frozen)
    assert read_trial_record(frozen).discarded == "another worker took the study's last trial"


def test_a_supervisor_records_why_another_processs_trial_failed(study: optuna.Study) -> None:
    trial = study.ask()
    record_fail_reason_by_id(study._storage, trial._trial_id, "worker died (killed by SIGKILL)")
    study.tell(trial, state=TrialState.FAIL)
    frozen = _reloaded(study).trials[0]
    assert read_trial_record(frozen).fail_reason == "worker died (killed by SIGKILL)"


def test_every_study_field_round_trips(study: optuna.Study) -> None:
    assert read_study_record(study) == StudyRecord()
    spec = {"direction": "maximize", "search_space": {"train.optimizer.lr": {"float": [0.1, 1]}}}
    record_study_spec(study, spec, "fp-1234")
    record_class_names(study, ["cat", "dog"])
    record_class_names(study, ["cat", "dog"])  # a second worker: nothing changes
    assert read_study_record(_reloaded(study)) == StudyRecord(
        spec=spec, data_fingerprint="fp-1234", class_names=("cat", "dog")
    )
    record_class_names(study, ["cat", "dog", "bird"])
    assert read_study_record(_reloaded(study)).class_names == ("cat", "dog", "bird")


def test_old_attribute_keys_still_read(study: optuna.Study) -> None:
    """A study written before the record module: the keys and JSON shapes are unchanged."""
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=OLD_ATTRS))
    study.add_trial(
        create_trial(
            state=TrialState.FAIL,
            user_attrs={"fail_reason": "DataError: no images", "hpo:discarded": True},
        )
    )
    study.set_user_attr("hpo:spec", {"direction": "maximize"})
    study.set_user_attr("hpo:data_fingerprint", "fp-old")
    study.set_user_attr("hpo:class_names", ["a", "b", "c"])

    loaded = _reloaded(study)
    pruned, failed = loaded.trials
    assert read_trial_record(pruned) == OLD_RECORD
    assert read_trial_record(failed) == TrialRecord(
        fail_reason="DataError: no images", discarded="True"
    )
    assert is_discarded(failed) and not is_discarded(pruned)
    assert read_study_record(loaded) == StudyRecord(
        spec={"direction": "maximize"}, data_fingerprint="fp-old", class_names=("a", "b", "c")
    )


def test_records_encode_to_the_old_attribute_keys() -> None:
    """What is written is what was written before, key for key and value for value."""
    assert OLD_RECORD.to_attrs() == OLD_ATTRS
    assert json.loads(json.dumps(OLD_RECORD.to_attrs())) == OLD_ATTRS


def test_values_of_another_shape_read_as_missing() -> None:
    record = TrialRecord.from_attrs(
        {
            "worker": "node-1",
            "config": "not a mapping",
            "fold_scores": 0.5,
            "epochs_trained": "three",
            "history": {"fold": 0},
            "seconds": None,
            "cut_fold": {"fold": 0},
            "confusion": 3,
        }
    )
    assert record == TrialRecord(scores=None)
    assert StudyRecord.from_attrs({"hpo:class_names": "abc", "hpo:spec": [1]}) == StudyRecord()


def test_metric_keys_are_those_the_folds_average() -> None:
    from hpo.train.crossval import MEAN_METRICS

    assert set(METRIC_KEYS) == set(MEAN_METRICS)


def test_worker_info_of_this_process() -> None:
    import os

    worker = WorkerInfo.this_process("cpu")
    assert worker.pid == os.getpid() and worker.device == "cpu" and worker.host
    assert WorkerInfo.from_json(worker.to_json()) == worker


# ---------------------------------------------------------------------------------------------
# A trial the objective wrote, read back.


def _tiny_config() -> Any:
    from hpo.config import train_config_from_dict

    return train_config_from_dict(
        {
            "data": {"image_size": [32, 24]},
            "train": {"model": {"name": "small_cnn", "width": 8}, "epochs": 1, "seed": 3},
        },
        "test",
    )


@pytest.mark.slow
def test_a_trial_written_by_the_objective_round_trips(tmp_path: Path, demo_data: Path) -> None:
    space = {"train.optimizer.lr": {"float": [0.001, 0.01], "log": True}}
    objective = tiny_objective(tmp_path, demo_data, search_space=space, folds=2)
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    study = optuna.create_study(storage=storage, study_name="tiny", direction="maximize")
    trial = study.ask()
    value = objective(trial)
    study.tell(trial, value)
    config = trial_config(objective.spec, objective.space, trial)

    frozen = optuna.load_study(study_name="tiny", storage=storage).trials[0]
    record = read_trial_record(frozen)
    assert record.config == config.to_dict()
    assert record.worker == WorkerInfo.this_process("cpu")
    assert record.device == "cpu"
    assert record.fail_reason is None and record.discarded is None
    assert record.fold_scores is not None and len(record.fold_scores) == 2
    assert value == pytest.approx(sum(record.fold_scores) / 2)
    assert record.epochs_trained == 2
    assert record.history is not None and [len(fold) for fold in record.history] == [1, 1]
    assert record.last_macro_f1 == pytest.approx(record.fold_scores[-1], abs=1e-6)
    assert record.seconds is not None and record.seconds > 0
    assert record.pruned_at_step is None and record.pruned_at_fold is None
    assert record.cut_fold is None
    assert record.scores is not None
    assert len(record.scores.per_class_f1) == 18
    assert record.scores.confusion is not None and len(record.scores.confusion) == 18
    assert set(record.scores.factor_f1) == {"mask", "gender", "age"}
    assert record.scores.accuracy is not None
    # Stored under the keys every older study has.
    assert set(frozen.user_attrs) == {
        "worker",
        "config",
        "fold_scores",
        "epochs_trained",
        "history",
        "seconds",
        "device",
        "per_class_f1",
        "confusion",
        *METRIC_KEYS,
    }
