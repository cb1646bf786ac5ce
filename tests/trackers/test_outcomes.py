"""How a trial ends in its tracker runs: pruned (where), failed (why), stopped; and a tracker
that breaks mid-trial."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.data import load_samples
from hpo.exceptions import Interrupted
from hpo.publish import Publisher
from hpo.study import (
    CutFold,
    WorkerInfo,
    load_study_spec,
    record_fail_reason,
    record_result,
    record_worker,
)
from hpo.testing.studies import tiny_study
from hpo.testing.trackers import read_wandb_runs, wandb_offline_env
from hpo.trackers import RunEnd, RunInfo, Tracker, TrackerSet

optuna.logging.set_verbosity(optuna.logging.WARNING)

EPOCH = {
    "epoch": 1,
    "train_loss": 2.5,
    "val_loss": 2.0,
    "macro_f1": 0.125,
    "accuracy": 0.25,
    "lr": 0.003,
}


def _publisher(tmp_path: Path, demo_data: Path, trackers: list[dict[str, Any]]) -> Publisher:
    path = tmp_path / "tiny.yaml"
    settings = {"pruner": {"name": "median"}, "trackers": trackers}
    path.write_text(tiny_study(demo_data, study=settings, search_space={}, epochs=2, folds=2))
    spec = load_study_spec(path)
    study = optuna.create_study(study_name="tiny", direction="maximize")
    return Publisher.create(spec, study, load_samples(spec.base_config().data))


def test_pruned_failed_and_stopped_trials_end_their_runs(
    tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    from mlflow import MlflowClient

    for key, value in wandb_offline_env(tmp_path / "wandb-home").items():
        monkeypatch.setenv(key, value)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    publisher = _publisher(
        tmp_path,
        demo_data,
        [
            {"name": "mlflow", "tracking_uri": uri, "experiment": "outcomes"},
            {"name": "wandb", "project": "p", "mode": "offline", "dir": str(tmp_path / "wb")},
        ],
    )
    study = publisher.study

    live: list[tuple[str, list[tuple[int, float]]]] = []

    def objective(trial: optuna.Trial) -> float:
        record_worker(trial, WorkerInfo.this_process("cpu"))
        publisher.epoch(trial.number, 0, EPOCH)
        if trial.number == 0:
            # The epoch is in MLflow while the trial still runs.
            (running,) = MlflowClient(tracking_uri=uri).search_runs(
                [publisher.trackers.trackers[0].experiment_id()], "tags.`hpo.trial` = '0'"
            )
            points = MlflowClient(tracking_uri=uri).get_metric_history(
                running.info.run_id, "val_macro_f1/fold_0"
            )
            live.append((running.info.status, [(m.step, m.value) for m in points]))
            record_result(
                trial, fold_scores=[], epochs_trained=1, history=[[EPOCH]], seconds=1.0,
                device="cpu", pruned_at_step=0, cut_fold=CutFold(fold=0, epoch=1, epochs=2),
            )  # fmt: skip
            raise optuna.TrialPruned("macro-F1 0.1250 at fold 0, epoch 1/2")
        if trial.number == 1:
            record_fail_reason(trial, "TrainingError: the loss became NaN")
            raise ValueError("the loss became NaN")
        raise Interrupted(signal.SIGTERM)

    wrapped = publisher.wrap(objective)
    study.optimize(wrapped, n_trials=2, catch=(ValueError,))
    with pytest.raises(Interrupted):
        study.optimize(wrapped, n_trials=1)

    assert live == [("RUNNING", [(1, 0.125)])]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("outcomes")
    assert experiment is not None
    runs = {
        r.data.tags["hpo.trial"]: r
        for r in client.search_runs([experiment.experiment_id])
        if "hpo.trial" in r.data.tags
    }
    pruned, failed, stopped = runs["0"], runs["1"], runs["2"]
    assert pruned.info.status == "FINISHED"
    assert pruned.data.tags["hpo.outcome"] == (
        "PRUNED at epoch 1 (fold 0): macro-F1 0.1250 at fold 0, epoch 1/2"
    )
    assert failed.info.status == "FAILED"
    assert failed.data.tags["hpo.outcome"] == "FAIL: TrainingError: the loss became NaN"
    assert stopped.info.status == "KILLED"
    assert stopped.data.tags["hpo.outcome"] == "STOPPED: interrupted (SIGTERM)"
    history = client.get_metric_history(failed.info.run_id, "val_macro_f1/fold_0")
    assert [(m.step, m.value) for m in history] == [(1, 0.125)]

    by_name = {r.name: r for r in read_wandb_runs(tmp_path / "wb")}
    assert by_name["tiny-trial-0"].summary["state"] == "PRUNED"
    assert by_name["tiny-trial-0"].exit_code == 0
    assert by_name["tiny-trial-1"].summary["outcome"] == "FAIL: TrainingError: the loss became NaN"
    assert by_name["tiny-trial-1"].exit_code == 1
    assert by_name["tiny-trial-2"].summary["state"] == "STOPPED"


class _Recorder(Tracker):
    """A tracker that writes down its calls, and breaks on the epoch it is told to."""

    def __init__(self, label: str, *, break_at: int | None = None) -> None:
        self.label = label
        self.break_at = break_at
        self.calls: list[str] = []

    def start(self, run: RunInfo) -> None:
        self.calls.append(f"start {run.name}")

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        if result["epoch"] == self.break_at:
            raise ConnectionError("server went away")
        self.calls.append(f"epoch {result['epoch']}")

    def end(self, outcome: RunEnd) -> None:
        self.calls.append(f"end {outcome.state}")

    def abandon(self) -> None:
        self.calls.append("abandon")


def test_a_broken_tracker_is_skipped_for_the_rest_of_the_run_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken, healthy = _Recorder("broken", break_at=2), _Recorder("healthy")
    trackers = TrackerSet([broken, healthy])
    with caplog.at_level(logging.WARNING, logger="hpo.trackers"):
        for trial in (0, 1):
            trackers.start(RunInfo(kind="trial", name=f"s-trial-{trial}", trial=trial))
            for epoch in (1, 2, 3):
                trackers.epoch("fold_0", {"epoch": epoch})
            trackers.end(RunEnd(state="COMPLETE", value=0.5))
    run = ["epoch 1", "epoch 2", "epoch 3", "end COMPLETE"]
    assert healthy.calls == ["start s-trial-0", *run, "start s-trial-1", *run]
    assert broken.calls == [
        *("start s-trial-0", "epoch 1", "abandon"),
        *("start s-trial-1", "epoch 1", "abandon"),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f"trial {n}: broken failed (ConnectionError: server went away); not recorded there: "
        "epoch 2 of fold_0 and the rest of the run"
        for n in (0, 1)
    ]
