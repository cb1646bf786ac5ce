"""Config at the boundary: one TrainConfig validated without torch, clear one-line errors,
``--set`` overrides, and exporting a trial's config without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.config import (
    TrainConfig,
    apply_overrides,
    load_train_config,
    parse_overrides,
    train_config_from_dict,
)
from hpo.exceptions import ConfigError

# A config that asks every registry for its facts: a torchvision model with ImageNet weights
# and a size rule (ViT: square, multiple of its 16-pixel patch), a loss, an optimizer and a
# scheduler with parameters of their own.
FULL: dict[str, Any] = {
    "data": {"format": "folder", "root": "data/shapes", "image_size": [64, 64]},
    "train": {
        "model": {"name": "vit_b_16", "weights": "imagenet"},
        "optimizer": {"name": "sgd", "lr": 0.01, "nesterov": True},
        "scheduler": {"name": "onecycle", "pct_start": 0.2},
        "loss": {"name": "focal", "gamma": 1.5},
        "kfold": {"n_splits": 3, "folds": "all"},
    },
}


def _run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_validating_a_config_imports_no_torch() -> None:
    # The exact check of issue 19.
    done = _run_python(
        "import hpo.export, hpo.config, sys; hpo.config.TrainConfig.model_validate({}); "
        "assert 'torch' not in sys.modules"
    )
    assert done.returncode == 0, done.stderr


def test_validating_every_kind_of_entry_imports_no_torch() -> None:
    done = _run_python(
        "import sys, hpo.config\n"
        f"cfg = hpo.config.train_config_from_dict({FULL!r}, 'full.yaml')\n"
        "assert cfg.train.loss.params['gamma'] == 1.5\n"
        "heavy = {'torch', 'torchvision', 'PIL', 'sklearn'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    assert done.returncode == 0, done.stderr


def test_hpo_export_imports_no_torch(tmp_path: Path) -> None:
    from hpo.export import CONFIG_ATTR

    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, study_name="shapes", direction="maximize")
    study.add_trial(
        create_trial(
            params={"train.optimizer.lr": 0.01},
            distributions={"train.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)},
            value=0.5,
            user_attrs={CONFIG_ATTR: train_config_from_dict(FULL, "t").to_dict()},
            state=TrialState.COMPLETE,
        )
    )
    out = tmp_path / "best.yaml"
    args = ["export", "--study", "shapes", "--storage", storage, "--out", str(out)]
    done = _run_python(
        "import sys\n"
        "from hpo.cli import main\n"
        f"main({args!r})\n"
        "assert 'torch' not in sys.modules, 'hpo export imported torch'\n",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    exported = load_train_config(out)
    assert exported.train.model.name == "vit_b_16" and exported.provenance is not None


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = train_config_from_dict(FULL, "full.yaml")
    cfg.save(tmp_path / "config.yaml")
    again = load_train_config(tmp_path / "config.yaml")
    assert again == cfg
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["loss"] == {
        "name": "focal",
        "gamma": 1.5,
        "weighting": "none",
    }
    assert TrainConfig().train.model.name == "small_cnn"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"data": {"format": "coco"}},
            "cfg.yaml: data.format: Input should be 'mask' or 'folder'",
        ),
        ({"data": {"colour": 1}}, "cfg.yaml: unknown key 'data.colour'; known keys: format, root"),
        ({"train": {"loss": {"name": "hinge"}}}, "unknown loss 'hinge'; known: cross_entropy, f1"),
        ({"train": {"loss": {"name": "focal", "gamma": 11}}}, "gamma: Input should be less"),
        (
            {"train": {"model": {"name": "small_cnn", "weights": "imagenet"}}},
            "model 'small_cnn' has no torchvision weights",
        ),
        (
            {"train": {"scheduler": {"name": "onecycle", "warmup_epochs": 1}}},
            "warmup_epochs: onecycle warms up by itself",
        ),
        (
            {"data": {"image_size": [64, 40]}, "train": {"model": {"name": "vit_b_16"}}},
            "cfg.yaml: data.image_size [64, 40] does not suit model 'vit_b_16': it needs sides"
            " multiple of 16, square",
        ),
        (
            {"data": {"image_size": [16, 16]}, "train": {"model": {"name": "inception_v3"}}},
            "it needs at least 75 pixels a side",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        train_config_from_dict(change, "cfg.yaml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_overrides_set_dotted_keys_and_the_last_wins() -> None:
    overrides = parse_overrides(
        ["train.epochs=3", "data.image_size=[32,32]", "train.loss.gamma=2.5", "train.epochs=4"]
    )
    raw = apply_overrides({"train": {"loss": "focal"}}, overrides)
    cfg = train_config_from_dict(raw, "cfg.yaml")
    assert cfg.train.epochs == 4 and cfg.data.image_size == (32, 32)
    assert cfg.train.loss.name == "focal" and cfg.train.loss.params["gamma"] == 2.5
    # A parameter of a component the file leaves out lands in the default component.
    cfg = train_config_from_dict(
        apply_overrides({}, parse_overrides(["train.optimizer.lr=0.5"])), "c"
    )
    assert cfg.train.optimizer.name == "adamw" and cfg.train.optimizer.params["lr"] == 0.5
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["train.epochs"])
