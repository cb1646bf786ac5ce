"""What every trial of a study must look like in each tracker (shared by the tracker tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pytest

from hpo.study import FINISHED, read_study_record
from hpo.testing.trackers import WandbRun
from hpo.trackers import param_key

if TYPE_CHECKING:
    from mlflow.entities import Run


def check_tensorboard_trials(folder: Path, study: optuna.Study) -> None:
    """Every finished trial of ``study`` is a TensorBoard run ``folder/trial_NNNN`` with its
    per-epoch validation macro-F1 of each fold."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for trial in study.get_trials(states=FINISHED):
        events = EventAccumulator(str(folder / f"trial_{trial.number:04d}"))
        events.Reload()
        for fold, results in enumerate(trial.user_attrs["history"]):
            f1 = events.Scalars(f"val_macro_f1/fold_{fold}")
            assert [e.step for e in f1] == [r["epoch"] for r in results]


def _runs(uri: str, experiment: str) -> tuple[Run, list[Run]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if r.data.tags.get("hpo.job") == "study"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    children = [r for r in runs if r.data.tags.get("hpo.job") == "trial"]
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["hpo.trial"]))


def check_mlflow_trials(uri: str, study: optuna.Study, *, epochs: int) -> None:
    """Every finished trial of ``study`` is one child run of the study's parent run in
    experiment ``study.study_name``, with its settings, per-epoch curves, state and pictures."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    parent, children = _runs(uri, study.study_name)
    assert parent.info.run_name == study.study_name
    assert list(read_study_record(study).tracker_parents.values()) == [parent.info.run_id]
    trials = study.get_trials(states=FINISHED)
    assert [int(r.data.tags["hpo.trial"]) for r in children] == [t.number for t in trials]
    for trial, run in zip(trials, children, strict=True):
        tags, params = run.data.tags, run.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.run_name == f"{study.study_name}-trial-{trial.number}"
        assert {"hpo.host", "hpo.pid", "hpo.device"} <= set(tags)
        assert tags["hpo.state"] == trial.state.name
        for name, value in trial.params.items():  # every sampled value, conditional ones too
            assert params[param_key(name)] == str(value)
        assert params["train.model.name"] == "small_cnn"
        assert params["train.epochs"] == str(epochs)
        history = trial.user_attrs["history"]
        for fold, results in enumerate(history):
            f1 = client.get_metric_history(run.info.run_id, f"val_macro_f1/fold_{fold}")
            assert [m.step for m in f1] == [r["epoch"] for r in results]
            assert [m.value for m in f1] == pytest.approx([r["macro_f1"] for r in results])
            for name in ("train_loss", "val_loss", "lr"):
                points = client.get_metric_history(run.info.run_id, f"{name}/fold_{fold}")
                assert len(points) == len(results), name
        if trial.state.name == "COMPLETE":
            assert run.info.status == "FINISHED"
            assert run.data.metrics["macro_f1"] == pytest.approx(trial.value)
        artifacts = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "pictures")}
        assert {"learning_curves.png", "confusion_matrix.png", "per_class_f1.csv"} <= artifacts
        local = Path(client.download_artifacts(run.info.run_id, "pictures/confusion_matrix.png"))
        assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_wandb_trials(runs: list[WandbRun], study: optuna.Study) -> None:
    """Every finished trial of ``study`` is one run of group ``study.study_name`` with its
    settings, one history row per epoch, its state and its pictures."""
    mine = sorted(
        (r for r in runs if r.job_type == "trial"), key=lambda r: int(r.name.rsplit("-", 1)[1])
    )
    trials = study.get_trials(states=FINISHED)
    assert [r.name for r in mine] == [f"{study.study_name}-trial-{t.number}" for t in trials]
    for trial, run in zip(trials, mine, strict=True):
        assert run.group == study.study_name
        assert {t.split(":")[0] for t in run.tags} >= {"host", "pid", "device"}
        for name, value in trial.params.items():
            assert run.config[name] == value
        assert run.config["train.model.name"] == "small_cnn"
        history = trial.user_attrs["history"]
        for fold, results in enumerate(history):
            key = f"val_macro_f1/fold_{fold}"
            rows = [row for row in run.history if key in row]
            assert [row["epoch"] for row in rows] == [r["epoch"] for r in results]
            assert [row[key] for row in rows] == pytest.approx([r["macro_f1"] for r in results])
            assert all(
                f"train_loss/fold_{fold}" in row and f"lr/fold_{fold}" in row for row in rows
            )
        assert run.summary["state"] == trial.state.name
        if trial.state.name == "COMPLETE":
            assert run.summary["macro_f1"] == pytest.approx(trial.value)
        assert run.exit_code == 0
        names = {p.name.split("_")[0] for p in run.images()}
        assert names == {"learning", "confusion"}, run.images()
        assert (run.folder / "files" / "per_class_f1.csv").is_file()
