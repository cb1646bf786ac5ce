"""TensorBoard runs of trials and of ``hpo train``, read back with TensorBoard's own reader."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from hpo.study import FINISHED
from hpo.testing.pictures import PicturesStudy

CliRun = Callable[..., tuple[int, str, str]]


def _read(run_dir: Path) -> object:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return events


@pytest.mark.slow
def test_every_trial_writes_curves_and_hparams(pictures_study: PicturesStudy) -> None:
    pytest.importorskip("tensorboard")
    study = optuna.load_study(study_name=pictures_study.name, storage=pictures_study.storage_url)
    for trial in study.get_trials(states=FINISHED):
        run_dir = pictures_study.tensorboard / f"trial_{trial.number:04d}"
        events = _read(run_dir)
        tags = set(events.Tags()["scalars"])  # type: ignore[attr-defined]
        assert {"train_loss/fold_0", "val_macro_f1/fold_0", "lr/fold_0"} <= tags
        history = trial.user_attrs["history"]
        for fold, epochs in enumerate(history):
            f1 = events.Scalars(f"val_macro_f1/fold_{fold}")  # type: ignore[attr-defined]
            assert [e.step for e in f1] == [r["epoch"] for r in epochs]
            assert [e.value for e in f1] == pytest.approx([r["macro_f1"] for r in epochs])
        # The HParams view: the plugin's data holds the sampled values.
        plugin = events.PluginTagToContent("hparams")  # type: ignore[attr-defined]
        assert "_hparams_/session_start_info" in plugin
        start = plugin["_hparams_/session_start_info"].decode("latin-1")
        assert "train.optimizer.lr" in start
        if trial.value is not None:
            (final,) = events.Scalars("hparams/macro_f1")  # type: ignore[attr-defined]
            assert final.value == pytest.approx(trial.value)


@pytest.mark.slow
def test_hpo_train_writes_a_run(
    pictures_study: PicturesStudy, tmp_path: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorboard")
    monkeypatch.chdir(pictures_study.root)  # where the study file's data root is
    code, _, err = run_cli(
        "train", "--config", pictures_study.study_file, "--out", tmp_path / "run",
        "--tensorboard", tmp_path / "tb", "--quiet", "--set", "train.epochs=1",
    )  # fmt: skip
    assert code == 0, err
    events = _read(tmp_path / "tb" / "run")
    tags = set(events.Tags()["scalars"])  # type: ignore[attr-defined]
    assert {"train_loss/fold_0", "val_macro_f1/fold_0", "lr/fold_0", "train_loss/fold_1"} <= tags
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")  # type: ignore[attr-defined]


def test_missing_tensorboard_names_the_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: CliRun
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    config = tmp_path / "x.yaml"
    config.write_text("train: {epochs: 1}\n")
    for args in (
        ("run", "--study", "x", "--config", config, "--n-trials", "1", "--tensorboard", "tb"),
        ("train", "--config", config, "--tensorboard", "tb"),
    ):
        code, _, err = run_cli(*args)
        assert code == 2
        assert err.count("\n") == 1
        assert err.startswith("error: --tensorboard needs the tensorboard package: pip install")
    assert not (tmp_path / "x.db").exists()
