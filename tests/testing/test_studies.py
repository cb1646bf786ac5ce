"""tiny_study: the text of a valid study file that trains small_cnn on 32x24 images."""

from __future__ import annotations

from pathlib import Path

from hpo.config import train_config_from_dict
from hpo.study import load_study_spec
from hpo.testing.studies import tiny_config, tiny_study, write_tiny_study


def test_a_tiny_study_file_validates_with_the_settings_given(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    search = {"train.optimizer.lr": {"float": [0.001, 0.01], "log": True}}
    path.write_text(
        tiny_study(
            tmp_path / "data",
            study={"sampler": {"name": "random", "seed": 1}},
            search_space=search,
            epochs=3,
            folds=2,
            lr=0.01,
        )
    )
    spec = load_study_spec(path)
    assert spec.name == "tiny" and dict(spec.search_space) == search
    assert spec.study.sampler == {"name": "random", "seed": 1}
    config = spec.base_config()
    assert config.data.root == tmp_path / "data" and tuple(config.data.image_size) == (32, 24)
    assert config.train.model.name == "small_cnn" and config.train.epochs == 3
    assert (config.train.kfold.n_splits, config.train.kfold.folds) == (3, 2)
    assert config.train.optimizer.name == "sgd" and config.train.optimizer.params["lr"] == 0.01


def test_write_tiny_study_searches_the_learning_rate(tmp_path: Path) -> None:
    path = write_tiny_study(
        tmp_path, tmp_path / "data", epochs=4, lr_range=(0.001, 0.1), heartbeat_interval=2
    )
    assert path == tmp_path / "tiny.yaml"
    spec = load_study_spec(path)
    assert spec.study.sampler == {"name": "random", "seed": 0}
    assert spec.study.pruner == {"name": "none"} and spec.study.heartbeat_interval == 2
    assert dict(spec.search_space) == {"train.optimizer.lr": {"float": [0.001, 0.1], "log": True}}
    assert spec.base_config().train.epochs == 4


def test_tiny_config_leaves_out_what_is_not_given(tmp_path: Path) -> None:
    raw = tiny_config(tmp_path, width=4, epochs=1, n_splits=2)
    assert raw == {
        "data": {"root": str(tmp_path), "image_size": [32, 24]},
        "train": {
            "model": {"name": "small_cnn", "width": 4},
            "epochs": 1,
            "batch_size": 32,
            "kfold": {"n_splits": 2},
        },
    }
    full = tiny_config(
        "d",
        format="folder",
        optimizer={"name": "adamw", "lr": 0.01},
        augment={"hflip": False},
        folds=1,
        scheduler={"name": "cosine"},
    )
    assert full["data"]["format"] == "folder"
    assert full["train"]["kfold"] == {"n_splits": 3, "folds": 1}
    assert full["train"]["augment"] == {"hflip": False}
    config = train_config_from_dict(full, "test")
    assert config.train.optimizer.name == "adamw" and config.train.scheduler.name == "cosine"
