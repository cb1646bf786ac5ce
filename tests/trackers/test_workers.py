"""All three trackers at once: a study run by two worker processes, then its best trial
exported and trained with ``hpo train``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml

from hpo.study import FINISHED
from hpo.testing.studies import write_tiny_study
from hpo.testing.trackers import read_wandb_runs, wandb_offline_env
from tests.trackers.checks import (
    check_mlflow_trials,
    check_tensorboard_trials,
    check_wandb_trials,
)

CliRun = Callable[..., tuple[int, str, str]]


@pytest.mark.slow
def test_two_workers_log_every_trial_to_all_three_and_hpo_train_follows(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    from mlflow import MlflowClient

    for key, value in wandb_offline_env(tmp_path / "wandb-home").items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # `hpo export --study tiny` reads studies/tiny.yaml
    (tmp_path / "studies").mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trackers = [
        {"name": "tensorboard", "dir": str(tmp_path / "tb")},
        {"name": "mlflow", "tracking_uri": uri},
        {"name": "wandb", "project": "hpo-test", "mode": "offline", "dir": str(tmp_path / "wb")},
    ]
    write_tiny_study(tmp_path / "studies", demo_data, epochs=2, trackers=trackers)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--n-trials", "4", "--workers", "2", "--quiet"
    )  # fmt: skip
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage="sqlite:///studies/tiny.db")
    trials = study.get_trials(states=FINISHED)
    assert len(trials) == 4
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2
    check_tensorboard_trials(tmp_path / "tb", study)
    check_mlflow_trials(uri, study, epochs=2)
    check_wandb_trials(read_wandb_runs(tmp_path / "wb"), study)

    # The export carries the study's trackers; `hpo train` logs one run to each.
    code, _, err = run_cli("export", "--study", "tiny", "--out", "best.yaml")
    assert code == 0, err
    exported = yaml.safe_load(Path("best.yaml").read_text())
    assert [t["name"] for t in exported["trackers"]] == ["tensorboard", "mlflow", "wandb"]
    code, _, err = run_cli("train", "--config", "best.yaml", "--out", "runs/final", "--quiet")
    assert code == 0, err
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")
    assert experiment is not None
    [final] = client.search_runs([experiment.experiment_id], "tags.`hpo.job` = 'train'")
    assert final.info.run_name == "final" and final.info.status == "FINISHED"
    assert final.data.tags["hpo.study"] == "tiny"
    assert final.data.params["train.optimizer.lr"] == str(exported["train"]["optimizer"]["lr"])
    f1 = client.get_metric_history(final.info.run_id, "val_macro_f1/fold_0")
    assert [m.step for m in f1] == [1, 2]
    metrics = yaml.safe_load(Path("runs/final/metrics.json").read_text())
    assert final.data.metrics["macro_f1"] == pytest.approx(metrics["mean_macro_f1"])
    pictures = {Path(a.path).name for a in client.list_artifacts(final.info.run_id, "pictures")}
    assert pictures == {"learning_curves.png", "confusion_matrix.png"}
    [train_run] = [r for r in read_wandb_runs(tmp_path / "wb") if r.job_type == "train"]
    assert train_run.name == "final" and train_run.group == "tiny"
    assert [row["epoch"] for row in train_run.history if "val_macro_f1/fold_0" in row] == [1, 2]
    assert train_run.summary["state"] == "COMPLETE" and len(train_run.images()) == 2
    assert any((tmp_path / "tb" / "final").iterdir())

    # --no-trackers: nothing more anywhere.
    code, _, err = run_cli(
        "train", "--config", "best.yaml", "--out", "runs/quiet", "--quiet", "--no-trackers"
    )
    assert code == 0, err
    assert len(client.search_runs([experiment.experiment_id], "tags.`hpo.job` = 'train'")) == 1
    assert len([r for r in read_wandb_runs(tmp_path / "wb") if r.job_type == "train"]) == 1
    assert not (tmp_path / "tb" / "quiet").exists()
