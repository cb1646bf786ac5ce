"""Helpers of the training tests: tiny configs and tiny learnable arrays, all on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from hpo.config import TrainConfig
from hpo.train.loop import FitResult, fit

CPU = torch.device("cpu")
TRAIN, VAL = np.arange(72), np.arange(72, 96)
"""The default split of :func:`learnable_data`'s 96 samples."""

TINY: dict[str, Any] = {
    "data": {"image_size": [16, 16]},
    "train": {
        "model": {"name": "small_cnn", "width": 8},
        "epochs": 3,
        "batch_size": 16,
        "optimizer": {"name": "adamw", "lr": 0.01},
        "scheduler": {"name": "cosine"},
        "seed": 0,
    },
}

MakeConfig = Callable[..., TrainConfig]


def learnable_data(
    n: int = 96, num_classes: int = 3, size: int = 16, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy uint8 images whose class is the colour and height of a bright square.

    Learnable in a few epochs for up to 6 classes (at ``size`` 16); more classes only exercise
    the code.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 100, (n, size, size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        channel = label % 3
        top = 2 + 4 * (label // 3)
        images[i, top : top + 8, 4:12, channel] = 230
    return images, labels.astype(np.int64)


CliRun = Callable[..., tuple[int, str, str]]


def tiny_fit(
    config: TrainConfig,
    data: tuple[np.ndarray, np.ndarray],
    train_idx: np.ndarray = TRAIN,
    val_idx: np.ndarray | None = VAL,
    *,
    num_classes: int = 3,
    **kwargs: Any,
) -> FitResult:
    """``fit`` on the CPU: ``data`` is ``(images, labels)``; the split defaults to
    :data:`TRAIN` / :data:`VAL`; ``kwargs`` go to ``fit`` (``on_epoch_end``, ``progress``, ...)."""
    images, labels = data
    return fit(
        config,
        images,
        labels,
        train_idx,
        val_idx,
        device=CPU,
        num_classes=num_classes,
        **kwargs,
    )
