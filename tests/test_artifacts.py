"""Trial artifacts, notes and the artifact store: a real tiny ``hpo run`` and the unhappy paths."""

from __future__ import annotations

import csv
import io
import logging
import sys
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from PIL import Image

from hpo.artifacts import (
    ARTIFACT_FILES,
    artifact_location,
    artifact_location_for,
    open_artifact_store,
    read_artifact,
)
from hpo.exceptions import ConfigError
from hpo.publish import Publisher
from hpo.study import FINISHED
from hpo.testing.pictures import PicturesStudy


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


@pytest.mark.slow
def test_every_finished_trial_uploads_its_pictures_and_note(pictures_study: PicturesStudy) -> None:
    from optuna_dashboard import get_note

    s = pictures_study
    study = optuna.load_study(study_name=s.name, storage=s.storage_url)
    finished = _finished(study)
    assert len(finished) == 5
    assert {t.state for t in finished} == {TrialState.COMPLETE, TrialState.PRUNED}
    # No pruner warm-up: a trial is pruned inside fold 0, with no fold finished (steps count
    # from 0, 2 epochs a fold), and still has all three files below, from that epoch.
    cut_in_fold_0 = [
        t for t in finished if t.state == TrialState.PRUNED and t.user_attrs["pruned_at_step"] < 2
    ]
    assert cut_in_fold_0 and all(t.user_attrs["fold_scores"] == [] for t in cut_in_fold_0)
    store = open_artifact_store(str(s.artifacts))
    for trial in finished:
        metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
        assert set(metas) == set(ARTIFACT_FILES), trial.number
        for name in ("confusion_matrix.png", "learning_curves.png"):
            assert metas[name].mimetype == "image/png"
            image = Image.open(io.BytesIO(read_artifact(store, metas[name].artifact_id)))
            image.load()  # decodes the whole file
            assert image.width > 400 and image.height > 300
        table = read_artifact(store, metas["per_class_f1.csv"].artifact_id).decode()
        rows = list(csv.DictReader(io.StringIO(table)))
        assert len(rows) == 18
        assert rows[0]["name"] == "wear/male/<30" and rows[17]["name"] == "not_wear/female/>=60"
        assert [float(r["f1"]) for r in rows] == trial.user_attrs["per_class_f1"]
        assert sum(int(r["support"]) for r in rows) == sum(map(sum, trial.user_attrs["confusion"]))

        history = trial.user_attrs["history"]
        assert sum(len(fold) for fold in history) == trial.user_attrs["epochs_trained"]
        assert set(history[0][0]) >= {"epoch", "train_loss", "macro_f1", "accuracy", "lr"}

        note = get_note(optuna.Trial(study, trial._trial_id))
        state = "complete" if trial.state == TrialState.COMPLETE else "pruned"
        assert note.startswith(f"## Trial {trial.number}: {state}")
        assert "per-factor F1: mask " in note
        assert f"`train.optimizer.lr`: {trial.params['train.optimizer.lr']:.4g}" in note
        if trial.state == TrialState.PRUNED:
            assert "by the median pruner: macro-F1 " in note
            # Its pictures say they include the fold it was pruned in, at that epoch.
            cut = trial.user_attrs["cut_fold"]
            step = trial.user_attrs["pruned_at_step"]
            assert (cut["fold"], cut["epoch"], cut["epochs"]) == (step // 2, step % 2 + 1, 2)
            where = f"fold {cut['fold']} at epoch {cut['epoch']}/2, where the trial was pruned"
            assert where in note
        else:
            assert "cut_fold" not in trial.user_attrs

    study_note = get_note(study)
    assert "**Search space**" in study_note and "train.optimizer.lr" in study_note
    assert "**Pruner**: `name: median" in study_note
    assert "**Data**: 24 people, 168 images" in study_note
    assert "| 0 wear/male/<30 |" in study_note


def test_default_store_is_beside_the_study_and_the_study_file_can_name_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_location("x", setting=None, studies_dir=Path("studies")) == str(
        Path("studies/x.artifacts")
    )
    assert artifact_location_for("x") == str(Path("studies/x.artifacts"))
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "x.yaml").write_text("study: {artifacts: /shared/x-artifacts}\n")
    assert artifact_location_for("x") == "/shared/x-artifacts"


def test_s3_store_without_boto3_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    with pytest.raises(ConfigError, match="boto3 is not installed; pip install boto3"):
        open_artifact_store("s3://bucket/studies/x")
    with pytest.raises(ConfigError, match="expected a folder or s3://bucket/prefix"):
        open_artifact_store("gs://bucket/x")


class _BrokenStore:
    def open_reader(self, artifact_id: str) -> io.BytesIO:
        raise FileNotFoundError(artifact_id)

    def write(self, artifact_id: str, content_body: object) -> None:
        raise OSError("disk full")

    def remove(self, artifact_id: str) -> None:
        pass


def test_a_failed_upload_warns_and_never_fails_the_trial(
    caplog: pytest.LogCaptureFixture,
) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    publisher = Publisher(
        study, store=_BrokenStore(), class_names=["a", "b"], epochs=1, pruner="median"
    )

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("confusion", [[3, 1], [0, 2]])
        trial.set_user_attr("per_class_f1", [0.8, 0.7])
        trial.set_user_attr("history", [[{"epoch": 1, "train_loss": 1.0, "macro_f1": 0.75}]])
        return 0.75

    with caplog.at_level(logging.WARNING, logger="hpo.publish"):
        study.optimize(publisher.wrap(objective), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE
    assert study.trials[0].value == 0.75
    assert "trial 0: artifacts not uploaded: OSError: disk full" in caplog.text
