"""Markdown notes of a trial and of a study, saved as optuna-dashboard notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
from optuna_dashboard import get_note

from hpo.data import Samples
from hpo.notes import DataSummary, save_study_note, study_note, trial_note
from hpo.study import CutFold, TrialRecord, ValidationScores


def test_trial_note_says_where_and_why_a_trial_was_pruned() -> None:
    note = trial_note(
        7,
        state="pruned",
        value=None,
        params={"train.optimizer.lr": 0.0123456},
        record=TrialRecord(
            fold_scores=(0.41,),
            scores=ValidationScores(f1_mask=0.9, f1_gender=0.8, f1_age=0.5),
            epochs_trained=5,
            pruned_at_step=4,
            cut_fold=CutFold(fold=1, epoch=2, epochs=3),
            seconds=12.5,
            device="cpu",
        ),
        epochs=3,
        pruner="median",
        prune_reason="macro-F1 0.1000 at fold 1, epoch 2/3",
    )
    assert note.splitlines()[0] == "## Trial 7: pruned"
    assert "- `train.optimizer.lr`: 0.01235" in note
    assert "- fold scores (macro-F1): 0.4100 (mean 0.4100)" in note
    assert "- per-factor F1: mask 0.9000, gender 0.8000, age 0.5000" in note
    assert "- epochs trained: 5" in note
    assert (
        # Steps count from 0, epochs from 1: step 4 of 3-epoch folds is fold 1's second epoch.
        "- pruned at step 4 (fold 1, epoch 2/3) by the median pruner: "
        "macro-F1 0.1000 at fold 1, epoch 2/3"
    ) in note
    assert (
        "- confusion matrix, per-class F1 and per-factor F1 come from 1 finished fold + "
        "fold 1 at epoch 2/3, where the trial was pruned"
    ) in note


def test_a_complete_trial_without_folds_says_so() -> None:
    note = trial_note(0, state="complete", value=0.5, params={}, record=TrialRecord())
    assert note.splitlines()[0] == "## Trial 0: complete, macro-F1 0.5000"
    assert "- (none)" in note and "- fold scores: no fold finished" in note
    assert "pruned" not in note


def test_study_note_lists_the_settings_and_the_data() -> None:
    samples = Samples(
        paths=[Path(f"/d/{k}.png") for k in range(3)],
        labels=np.array([0, 1, 1]),
        groups=np.array(["a", "a", "b"], dtype=object),
        strata=np.array([0, 1, 1]),
        class_names=["cat", "dog"],
        format="folder",
    )
    data = DataSummary.of(samples)
    assert (data.people, data.images, data.class_counts) == (2, 3, {"0 cat": 1, "1 dog": 2})
    note = study_note(
        "s",
        search_space={"train.optimizer.lr": {"low": 0.001, "high": 0.1, "log": True}},
        fixed={"train": {"epochs": 2}},
        pruner={"name": "median"},
        sampler={"name": "tpe", "seed": 0},
        data=data,
    )
    assert note.startswith("## Study s\n")
    assert "train.optimizer.lr:" in note and "epochs: 2" in note
    assert "**Sampler**: `name: tpe, seed: 0`" in note and "**Pruner**: `name: median`" in note
    assert "**Data**: 2 people, 3 images" in note and "| 1 dog | 2 |" in note
    assert "**Data**" not in study_note(
        "s", search_space={}, fixed={}, pruner={}, sampler={}, data=None
    )


def test_the_study_note_is_saved_once_and_replaced_when_it_changes() -> None:
    study = optuna.create_study()
    save_study_note(study, "## first\n")
    assert get_note(study) == "## first\n"
    save_study_note(study, "## first\n")  # many workers save the same note: kept as it is
    assert get_note(study) == "## first\n"
    save_study_note(study, "## second\n")
    assert get_note(study) == "## second\n"
