"""MLflow runs of trials and of ``hpo train``, read back from a local SQLite tracking store
with MLflow's own client."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.study import FINISHED, read_study_record
from hpo.testing import free_port
from hpo.testing.studies import write_tiny_study

pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Run  # noqa: E402

CliRun = Callable[..., tuple[int, str, str]]


def _study(tmp_path: Path, demo_data: Path, tracker: dict[str, Any], **study: Any) -> Path:
    return write_tiny_study(tmp_path, demo_data, epochs=2, trackers=[tracker], **study)


def _runs(uri: str, experiment: str) -> tuple[Run, list[Run]]:
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if r.data.tags.get("hpo.job") == "study"]
    assert len(parents) == 1, [r.data.tags for r in runs]
    children = [r for r in runs if r.data.tags.get("hpo.job") == "trial"]
    return parents[0], sorted(children, key=lambda r: int(r.data.tags["hpo.trial"]))


def check_trial_runs(uri: str, study: optuna.Study, *, epochs: int) -> None:
    """Every finished trial of ``study`` is one child run of the study's parent run in
    experiment ``study.study_name``, with its settings, per-epoch curves, state and pictures."""
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
        assert float(params["train.optimizer.lr"]) == pytest.approx(trial.params["train.optimizer.lr"])
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


def test_every_trial_is_a_child_run_with_its_curves_state_and_pictures(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    path = _study(tmp_path, demo_data, {"name": "mlflow", "tracking_uri": uri})
    code, _, err = run_cli("run", "--study", "tiny", "--config", path, "--n-trials", "2", "--quiet")
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    check_trial_runs(uri, study, epochs=2)
    # Artifacts lie beside the SQLite file, not in the current directory.
    assert (tmp_path / "mlflow" / "mlartifacts").is_dir()

    # A second run of the study adopts the same parent run.
    code, _, err = run_cli("run", "--study", "tiny", "--config", path, "--n-trials", "3", "--quiet")
    assert code == 0, err
    check_trial_runs(uri, study, epochs=2)


def test_a_dead_server_costs_no_trial_and_the_log_says_what_was_lost(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, caplog: pytest.LogCaptureFixture
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    path = _study(tmp_path, demo_data, {"name": "mlflow", "tracking_uri": uri})
    with caplog.at_level(logging.WARNING, logger="hpo"):
        code, _, err = run_cli(
            "run", "--study", "tiny", "--config", path, "--n-trials", "2", "--quiet"
        )
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    lost = [r.getMessage() for r in caplog.records if "not recorded there" in r.getMessage()]
    # One warning per trial (not one per epoch), naming the trial, the tracker and what.
    assert len(lost) == 2, lost
    for number, line in enumerate(lost):
        assert line.startswith(f"trial {number}: mlflow ({uri}) failed (")
        assert line.endswith("not recorded there: the whole run")


def test_a_missing_mlflow_is_one_line_before_anything_is_written(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    path = _study(tmp_path, demo_data, {"name": "mlflow", "tracking_uri": uri})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what `import mlflow` does without it
    code, out, err = run_cli("run", "--study", "tiny", "--config", path, "--n-trials", "1")
    assert code == 2
    assert err == (
        "error: study.trackers[0]: tracker 'mlflow' needs the mlflow package: pip install mlflow"
        ' (or pip install -e ".[mlflow]")\n'
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]
