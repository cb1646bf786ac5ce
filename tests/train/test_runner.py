"""Final training runs as a library: train_run writes a run directory, load_run and
load_models read it back, with callbacks for epochs and steps and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.config import TrainConfig, train_config_from_dict
from hpo.exceptions import ConfigError, DataError
from hpo.testing.studies import tiny_config
from hpo.train.loop import EpochResult
from hpo.train.runner import load_models, load_run, train_run

from .helpers import CPU


def _config(root: Path) -> TrainConfig:
    raw = tiny_config(
        root, format="mask", image_size=(24, 16), width=4, epochs=1, batch_size=64, folds=2
    )
    return train_config_from_dict(raw, "test")


def test_a_fold_run_is_written_and_read_back(demo_data: Path, tmp_path: Path) -> None:
    config = _config(demo_data)
    epochs: list[tuple[str, int]] = []
    steps: list[tuple[str, int, int]] = []

    def on_epoch_end(part: str, result: EpochResult) -> None:
        epochs.append((part, result.epoch))

    run_dir = tmp_path / "run"
    report = train_run(
        config,
        run_dir,
        device=CPU,
        on_epoch_end=on_epoch_end,
        progress=lambda *step: steps.append(step),
    )
    assert epochs == [("fold_0", 1), ("fold_1", 1)]
    # Decoding (on a cold cache) comes first as its own pass; then the epochs' passes.
    assert {what for what, _, _ in steps if not what.startswith("epoch")} <= {"decoding images"}
    epoch_steps = [step for step in steps if step[0].startswith("epoch")]
    assert epoch_steps[0][:2] == ("epoch 1/1", 0) and epoch_steps[-1][1] == epoch_steps[-1][2]
    assert report["status"] == "complete" and report["folds"] == [0, 1]
    assert json.loads((run_dir / "metrics.json").read_text())["mean_macro_f1"] == pytest.approx(
        report["mean_macro_f1"]
    )
    info = load_run(run_dir)
    assert (info.mode, info.folds, info.num_classes) == ("folds", [0, 1], 18)
    assert info.config.train.kfold.folds == [0, 1]  # the folds trained, by number
    models = load_models(info, CPU)
    assert len(models) == 2 and not any(m.training for m in models)
    with torch.inference_mode():
        out = models[0](torch.zeros(2, 3, 24, 16))
    assert out.shape == (2, 18) and bool(torch.isfinite(out).all())


def test_full_training_has_no_validation(demo_data: Path, tmp_path: Path) -> None:
    report = train_run(_config(demo_data), tmp_path / "full", device=CPU, full=True)
    assert report["mode"] == "full" and report["mean_macro_f1"] is None
    (result,) = report["results"]
    assert np.isfinite(result["train_loss"])
    assert load_run(tmp_path / "full").model_paths == [tmp_path / "full" / "full" / "model.pt"]


def test_refusals_write_nothing(demo_data: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        train_run(_config(demo_data), busy, device=CPU)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "metrics.json").write_text(
        json.dumps(
            {
                "mode": "folds",
                "folds": [0],
                "num_classes": 3,
                "class_names": ["a"] * 3,
                "status": "running",
                "results": [],
            }
        )
    )
    with pytest.raises(ConfigError, match="did not finish"):
        load_run(unfinished)
    (unfinished / "metrics.json").write_text("{")
    with pytest.raises(DataError, match="corrupt run metrics"):
        load_run(unfinished)
