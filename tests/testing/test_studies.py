"""tiny_study: the text of a valid study file that trains small_cnn on 32x24 images."""

from __future__ import annotations

from pathlib import Path

from hpo.study import load_study_spec
from hpo.testing.studies import tiny_study


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
