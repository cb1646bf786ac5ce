"""Tiny study files for tests: a small CNN on 32x24 demo images, trained in seconds on a CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["tiny_study"]


def tiny_study(
    data_root: Path,
    *,
    study: Mapping[str, Any],
    search_space: Mapping[str, Any],
    epochs: int = 2,
    folds: int = 1,
    lr: float = 0.003,
) -> str:
    """The text of a study file that trains ``small_cnn`` (width 8) on ``data_root`` at 32x24.

    Args:
        data_root: A demo data set (``hpo.demo.make_demo_data``).
        study: The ``study`` section (sampler, pruner, storage, ...).
        search_space: The ``search_space`` section.
        epochs: ``train.epochs``.
        folds: Folds of 3 each trial trains (``train.kfold.folds``).
        lr: The fixed SGD learning rate, where the search space does not draw one.
    """
    spec = {
        "study": dict(study),
        "data": {"root": str(data_root), "image_size": [32, 24]},
        "train": {
            "model": {"name": "small_cnn", "width": 8},
            "epochs": epochs,
            "batch_size": 32,
            "optimizer": {"name": "sgd", "lr": lr},
            "kfold": {"n_splits": 3, "folds": folds},
        },
        "search_space": dict(search_space),
    }
    return yaml.safe_dump(spec, sort_keys=False)
