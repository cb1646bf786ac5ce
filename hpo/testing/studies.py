"""Tiny study files and training configs for tests: a small CNN on small images, trained in
seconds on a CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["tiny_config", "tiny_study", "write_tiny_study"]


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
        **tiny_config(data_root, epochs=epochs, optimizer={"name": "sgd", "lr": lr}, folds=folds),
        "search_space": dict(search_space),
    }
    return yaml.safe_dump(spec, sort_keys=False)


def write_tiny_study(
    folder: Path,
    data_root: Path,
    *,
    epochs: int,
    lr_range: tuple[float, float] = (1.0e-4, 1.0e-1),
    lr: float = 0.003,
    **study: Any,
) -> Path:
    """Write ``folder/tiny.yaml``: :func:`tiny_study` with a random sampler (seed 0), no pruner
    and a log-uniform search of ``train.optimizer.lr`` over ``lr_range``.

    Args:
        folder: Where ``tiny.yaml`` is written.
        data_root: A demo data set (``hpo.demo.make_demo_data``).
        epochs: ``train.epochs``.
        lr_range: The searched learning rate's bounds.
        lr: The fixed learning rate the search replaces.
        study: More ``study`` settings (``heartbeat_interval``, ``storage``, ...); they may
            replace the sampler and the pruner.

    Returns:
        The study file's path.
    """
    path = folder / "tiny.yaml"
    settings = {"sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, **study}
    search = {"train.optimizer.lr": {"float": list(lr_range), "log": True}}
    path.write_text(
        tiny_study(data_root, study=settings, search_space=search, epochs=epochs, lr=lr)
    )
    return path


def tiny_config(
    data_root: Path | str,
    *,
    format: str | None = None,
    image_size: tuple[int, int] = (32, 24),
    width: int = 8,
    epochs: int = 2,
    batch_size: int = 32,
    optimizer: Mapping[str, Any] | None = None,
    augment: Mapping[str, Any] | None = None,
    n_splits: int = 3,
    folds: int | None = None,
    **train: Any,
) -> dict[str, Any]:
    """The ``data`` and ``train`` sections of a tiny ``small_cnn`` config, as a raw mapping.

    ``format``, ``optimizer``, ``augment`` and ``folds`` left at None are left out (their
    defaults apply); ``train`` adds (or replaces) keys of the ``train`` section.
    """
    data: dict[str, Any] = {"format": format} if format is not None else {}
    data |= {"root": str(data_root), "image_size": list(image_size)}
    section: dict[str, Any] = {
        "model": {"name": "small_cnn", "width": width},
        "epochs": epochs,
        "batch_size": batch_size,
    }
    if optimizer is not None:
        section["optimizer"] = dict(optimizer)
    if augment is not None:
        section["augment"] = dict(augment)
    kfold: dict[str, Any] = {"n_splits": n_splits}
    if folds is not None:
        kfold["folds"] = folds
    section["kfold"] = kfold
    return {"data": data, "train": {**section, **train}}
