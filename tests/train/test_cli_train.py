"""``hpo train``: the run directory it writes, --full / --folds, and its one-line errors."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from sklearn.metrics import f1_score

from hpo.config import ModelSpec, load_train_config
from hpo.exceptions import ConfigError, DataError
from hpo.testing.cli import one_error_line
from hpo.testing.studies import tiny_config
from hpo.train.models import build_model
from hpo.train.runner import load_models, load_run

from .helpers import CPU, CliRun


def _config(root: Path, **train: Any) -> dict[str, Any]:
    adamw = {"name": "adamw", "lr": 0.01}
    return tiny_config(root, format="mask", optimizer=adamw, folds=1, **train)


@pytest.fixture
def config_file(tmp_path: Path, demo_data: Path) -> Path:
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(_config(demo_data)))
    return path


def test_train_writes_the_run_directory(
    run_cli: CliRun, config_file: Path, tmp_path: Path, demo_data: Path
) -> None:
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        "train", "--config", config_file, "--out", run_dir, "--set", "train.seed=3"
    )
    assert code == 0, err
    assert f"run dir: {run_dir}" in out
    assert "mean macro-F1: " in out
    assert "fold_0  epoch 1/2  loss " in err and "macro-F1 " in err  # per-epoch progress

    # config.yaml is the config trained, naming the folds trained (the default: the first).
    resolved = load_train_config(run_dir / "config.yaml")
    assert resolved == load_train_config(config_file, ["train.seed=3", "train.kfold.folds=[0]"])

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "complete"
    assert metrics["mode"] == "folds" and metrics["folds"] == [0]
    assert metrics["num_classes"] == 18 and len(metrics["class_names"]) == 18
    assert metrics["image_size"] == [32, 24] and metrics["data_format"] == "mask"
    assert metrics["data_root"] == str(demo_data.absolute())
    (fold,) = metrics["results"]
    assert fold["part"] == "fold_0" and fold["fold"] == 0
    assert [e["epoch"] for e in fold["epochs"]] == [1, 2]  # as the console counts
    assert {"train_loss", "val_loss", "macro_f1", "accuracy", "lr", "seconds"} <= set(
        fold["epochs"][0]
    )
    assert len(fold["per_class_f1"]) == 18 and len(fold["confusion"]) == 18
    assert {"f1_mask", "f1_gender", "f1_age"} <= set(fold)
    assert metrics["mean_macro_f1"] == pytest.approx(fold["macro_f1"])
    assert f"{metrics['mean_macro_f1']:.4f}" in out

    state = torch.load(run_dir / "fold_0" / "model.pt", weights_only=True)
    model = build_model(ModelSpec(name="small_cnn", width=8), 18)
    model.load_state_dict(state)

    with (run_dir / "fold_0" / "val_predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "label", "pred"]
    assert len(rows) == fold["n_val"] > 0
    # Paths relative to the data root, with "/": the run moves between machines.
    assert all(not Path(r["path"]).is_absolute() and "\\" not in r["path"] for r in rows)
    assert all((demo_data / r["path"]).is_file() for r in rows)
    labels, preds = [int(r["label"]) for r in rows], [int(r["pred"]) for r in rows]
    assert f1_score(labels, preds, average="macro") == pytest.approx(fold["macro_f1"])

    info = load_run(run_dir)
    assert info.mode == "folds" and info.folds == [0] and info.num_classes == 18
    assert info.model_paths == [run_dir / "fold_0" / "model.pt"]
    (loaded,) = load_models(info, CPU)
    assert not loaded.training

    # A corrupt model file is one line that gives no unsafe advice (weights_only=False).
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run_dir / "fold_0" / "model.pt").read_bytes()[:200])
    with pytest.raises(DataError) as excinfo:
        load_models(dataclasses.replace(info, model_paths=[corrupt]), CPU)
    message = str(excinfo.value)
    assert "not a valid model state dict" in message
    assert "weights_only" not in message and "\n" not in message


def test_full_trains_one_model_on_all_data(
    run_cli: CliRun, config_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "full-run"
    code, out, err = run_cli(
        "train",
        "--config",
        config_file,
        "--out",
        run_dir,
        "--full",
        "--quiet",
        "--set",
        "train.epochs=1",
    )
    assert code == 0, err
    assert "trained one model on all 168 images" in out
    assert err.strip() == ""  # --quiet
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "full", "metrics.json"]
    assert not (run_dir / "full" / "val_predictions.csv").exists()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["mode"] == "full" and metrics["folds"] == []
    assert metrics["mean_macro_f1"] is None
    assert metrics["results"][0]["n_train"] == 168
    assert metrics["results"][0]["epochs"][0]["macro_f1"] is None
    info = load_run(run_dir)
    assert info.mode == "full" and info.model_paths == [run_dir / "full" / "model.pt"]


def test_folds_trains_the_named_folds_as_an_ensemble(
    run_cli: CliRun, config_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "ensemble"
    code, out, err = run_cli(
        "train",
        "--config",
        config_file,
        "--out",
        run_dir,
        "--folds",
        "2,0",
        "--quiet",
        "--set",
        "train.epochs=1",
    )
    assert code == 0, err
    assert "(folds [0, 2]:" in out
    info = load_run(run_dir)
    assert info.folds == [0, 2]
    assert info.config.train.kfold.folds == [0, 2]  # config.yaml names the folds trained
    assert [p.parent.name for p in info.model_paths] == ["fold_0", "fold_2"]
    assert len(load_models(info, CPU)) == 2
    # Different folds validate on different people.
    paths = [
        {r["path"] for r in csv.DictReader((run_dir / f"fold_{k}" / "val_predictions.csv").open())}
        for k in (0, 2)
    ]
    assert not paths[0] & paths[1]


def test_a_study_file_trains_with_its_fixed_settings(
    run_cli: CliRun, demo_data: Path, tmp_path: Path
) -> None:
    study = {
        "study": {"direction": "maximize"},
        **_config(demo_data, epochs=1),
        "search_space": {"train.optimizer.lr": {"float": [1e-4, 1e-1], "log": True}},
    }
    path = tmp_path / "mask.yaml"
    path.write_text(yaml.safe_dump(study))
    monkey_cwd = tmp_path / "cwd"
    monkey_cwd.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(monkey_cwd)
        code, _, err = run_cli("train", "--config", path, "--quiet")
    assert code == 0, err
    (run_dir,) = (monkey_cwd / "runs").iterdir()  # default: runs/<config stem>-<time>
    assert run_dir.name.startswith("mask-20")
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert set(saved) == {"data", "train"}
    assert saved["train"]["optimizer"]["lr"] == 0.01


def test_folder_format_data(run_cli: CliRun, folder_data: Path, tmp_path: Path) -> None:
    adamw = {"name": "adamw", "lr": 0.01}
    config = tiny_config(
        folder_data, format="folder", image_size=(16, 16), epochs=3, batch_size=8, optimizer=adamw
    )
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli("train", "--config", path, "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["class_names"] == ["blue", "green", "red"]
    assert metrics["data_format"] == "folder" and "f1_mask" not in metrics["results"][0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--set", "train.optimizer.lrr=0.1"], ["train.optimizer", "lrr", "known: lr"]),
        (["--set", "train.epochs=0"], ["train.epochs", "greater than or equal to 1"]),
        (["--set", "train.bogus=1"], ["unknown key 'train.bogus'", "known keys: model"]),
        (["--set", "train.loss.name=dice"], ["unknown loss 'dice'", "cross_entropy"]),
        (["--folds", "5"], ["--folds", "fold 5 does not exist", "0..2"]),
        (["--folds", "one"], ["--folds 'one'", "all or fold numbers"]),
        (["--full", "--folds", "0"], ["--full and --folds"]),
        (["--device", "cuda"], ["--device 'cuda'", "no CUDA GPU"]),
        (["--device", "tpu"], ["--device 'tpu'", "auto, cpu, cuda or cuda:K"]),
        (["--set", "data.root=/nonexistent"], ["/nonexistent", "not found"]),
        (
            ["--set", "train.model.weights=/no/such/weights.pth"],
            ["/no/such/weights.pth", "file not found"],
        ),
    ],
)
def test_user_errors_exit_2_with_one_line(
    run_cli: CliRun, config_file: Path, tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    code, out, err = run_cli("train", "--config", config_file, "--out", tmp_path / "r", *args)
    assert code == 2, (out, err)
    line = one_error_line(err)
    for fragment in fragments:
        assert fragment in line, line


def test_bad_key_in_the_file_is_named(run_cli: CliRun, demo_data: Path, tmp_path: Path) -> None:
    raw = _config(demo_data)
    raw["train"]["optimizer"] = {"name": "adamw", "lr": "fast"}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, err = run_cli("train", "--config", path)
    assert code == 2
    line = one_error_line(err)
    assert str(path) in line and "train.optimizer" in line and "lr" in line and "'fast'" in line
    code, _, err = run_cli("train", "--config", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml: file not found" in one_error_line(err)


def test_an_existing_run_directory_is_not_overwritten(
    run_cli: CliRun, config_file: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "taken"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    code, _, err = run_cli("train", "--config", config_file, "--out", run_dir)
    assert code == 2 and "already exists and is not empty" in one_error_line(err)
    assert (run_dir / "notes.txt").read_text() == "keep me"


def test_load_run_refuses_what_is_not_a_finished_run(tmp_path: Path, config_file: Path) -> None:
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path / "nothing")
    run_dir = tmp_path / "partial"
    run_dir.mkdir()
    load_train_config(config_file).save(run_dir / "config.yaml")
    report = {
        "status": "running",
        "mode": "folds",
        "folds": [0, 1],
        "num_classes": 18,
        "class_names": ["c"] * 18,
        "results": [{"part": "fold_0"}],
    }
    (run_dir / "metrics.json").write_text(json.dumps(report))
    with pytest.raises(ConfigError, match=r"did not finish .*finished: fold_0"):
        load_run(run_dir)
    report["status"] = "complete"
    (run_dir / "metrics.json").write_text(json.dumps(report))
    with pytest.raises(DataError, match=r"fold_0[/\\]model.pt: model file missing"):
        load_run(run_dir)
    (run_dir / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt run metrics"):
        load_run(run_dir)
