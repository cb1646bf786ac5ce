"""What a worker publishes for each finished trial: artifacts, notes, TensorBoard runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from optuna_dashboard import get_note

from hpo.artifacts import ARTIFACT_FILES
from hpo.data import load_samples
from hpo.publish import Publisher
from hpo.study import (
    CutFold,
    ValidationScores,
    load_study_spec,
    read_study_record,
    record_result,
)
from hpo.testing.studies import tiny_study

optuna.logging.set_verbosity(optuna.logging.WARNING)

HISTORY = [[{"epoch": 1, "train_loss": 2.5, "macro_f1": 0.125, "accuracy": 0.25, "lr": 0.003}]]


def _publisher(folder: Path, data_root: Path, tensorboard: bool = False) -> Publisher:
    settings: dict[str, Any] = {"pruner": {"name": "median"}}
    if tensorboard:
        settings["tensorboard"] = str(folder / "tb")
    path = folder / "tiny.yaml"
    path.write_text(tiny_study(data_root, study=settings, search_space={}, epochs=2, folds=2))
    spec = load_study_spec(path)
    study = optuna.create_study(direction="maximize")
    return Publisher.create(spec, study, load_samples(spec.base_config().data))


def _record(trial: optuna.Trial, *, cut: bool) -> None:
    record_result(
        trial,
        fold_scores=[] if cut else [0.5],
        epochs_trained=1,
        history=HISTORY,
        seconds=1.5,
        device="cpu",
        pruned_at_step=0 if cut else None,
        cut_fold=CutFold(fold=0, epoch=1, epochs=2) if cut else None,
        scores=ValidationScores(
            per_class_f1=tuple(0.5 for _ in range(18)),
            confusion=tuple(tuple(int(i == j) for j in range(18)) for i in range(18)),
            f1_mask=0.75,
            f1_gender=0.5,
            f1_age=0.25,
        ),
    )


def test_create_saves_the_study_note_and_class_names(tmp_path: Path, demo_data: Path) -> None:
    publisher = _publisher(tmp_path, demo_data)
    names = read_study_record(publisher.study).class_names
    assert names is not None and len(names) == 18 and names[0] == "wear/male/<30"
    note = get_note(publisher.study)
    assert note.startswith("## Study tiny")
    assert "**Data**: 24 people, 168 images" in note
    assert (tmp_path / "tiny.artifacts").is_dir()


def test_a_pruned_trial_gets_its_pictures_note_and_tensorboard_run(
    tmp_path: Path, demo_data: Path
) -> None:
    pytest.importorskip("tensorboard")
    publisher = _publisher(tmp_path, demo_data, tensorboard=True)
    study = publisher.study

    def objective(trial: optuna.Trial) -> float:
        _record(trial, cut=True)
        raise optuna.TrialPruned("macro-F1 0.1250 at fold 0, epoch 1/2")

    study.optimize(publisher.wrap(objective), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    metas = get_all_artifact_meta(trial, storage=study._storage)
    assert {m.filename for m in metas} == set(ARTIFACT_FILES)
    note = get_note(optuna.Trial(study, trial._trial_id))
    assert note.startswith("## Trial 0: pruned\n")
    assert (
        "- pruned at step 0 (fold 0, epoch 1/2) by the median pruner: "
        "macro-F1 0.1250 at fold 0, epoch 1/2"
    ) in note
    assert "- per-factor F1: mask 0.7500, gender 0.5000, age 0.2500" in note
    assert "come from fold 0 at epoch 1/2, where the trial was pruned" in note
    assert any((tmp_path / "tb" / "trial_0000").iterdir())


def test_a_complete_trial_is_published_and_a_failed_one_is_not(
    tmp_path: Path, demo_data: Path
) -> None:
    publisher = _publisher(tmp_path, demo_data)
    study = publisher.study

    def objective(trial: optuna.Trial) -> float:
        _record(trial, cut=False)
        if trial.number == 1:
            raise ValueError("loss is NaN")
        return 0.5

    study.optimize(publisher.wrap(objective), n_trials=2, catch=(ValueError,))
    complete, failed = study.trials
    assert (complete.state, failed.state) == (TrialState.COMPLETE, TrialState.FAIL)
    note = get_note(optuna.Trial(study, complete._trial_id))
    assert note.startswith("## Trial 0: complete, macro-F1 0.5000\n")
    assert "- fold scores (macro-F1): 0.5000 (mean 0.5000)" in note
    assert "- time: 1.5 s on cpu" in note
    assert len(get_all_artifact_meta(complete, storage=study._storage)) == 3
    assert get_all_artifact_meta(failed, storage=study._storage) == []
    assert get_note(optuna.Trial(study, failed._trial_id)) == ""
