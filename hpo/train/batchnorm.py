"""Batch-norm statistics that are right at evaluation, even for slow running averages.

A batch-norm layer evaluates with running averages of its batch statistics, updated with
``momentum`` each training step and starting from mean 0, variance 1. torchvision's MobileNetV3,
MaxViT and EfficientNet-B5 to B7 use momentum 0.01 (MNASNet 0.0003; EfficientNet-B0 to B4 and
V2 keep torch's 0.1): with the few steps per epoch of a small data set the averages still
mostly hold their starting values (after 24 steps, 79 %), and a network that trains well,
evaluated with them, predicts one class. A layer whose average cannot forget within one epoch
(``(1 - momentum) ** steps > STALE_WEIGHT``) therefore averages the batch statistics of each
epoch equally instead (a cumulative average, restarted every epoch): at the epoch's end its
statistics are those of that epoch, at no extra cost. Layers with torch's default momentum 0.1
are left alone.

The cumulative average is torch's ``momentum=None`` computed without it: torch then divides by
``float(num_batches_tracked)``, a tensor on the device, which on CUDA waits for the GPU in every
such layer on every step. Here the momentum of step ``k`` (from 1) is set to the Python float
``1 / k`` before the step's forward pass: the same average, no synchronisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["STALE_WEIGHT", "epoch_averaged", "slow_layers", "trainable_layers"]

STALE_WEIGHT = 0.05
"""A layer is slow when its previous statistics would still weigh more than this after one
epoch of updates."""


def trainable_layers(model: nn.Module) -> list[_BatchNorm]:
    """Batch-norm layers that track running statistics and are in training mode (a frozen
    backbone's are in eval mode and keep their statistics)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.training
    ]


def slow_layers(layers: list[_BatchNorm], steps: int) -> list[_BatchNorm]:
    """The layers whose running average still holds more than :data:`STALE_WEIGHT` of its
    previous values after ``steps`` updates: ``(1 - momentum) ** steps``."""
    return [
        layer
        for layer in layers
        if layer.momentum is not None and (1 - layer.momentum) ** steps > STALE_WEIGHT
    ]


@contextlib.contextmanager
def epoch_averaged(layers: list[_BatchNorm]) -> Iterator[Callable[[], None]]:
    """For the block (one epoch's training), ``layers`` restart their statistics and average
    every batch equally; their momentum is restored afterwards.

    Yields the function to call before each training forward pass: it sets the layers'
    momentum to ``1 / k`` for the ``k``-th batch of the block.
    """
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
    seen = 0

    def next_batch() -> None:
        nonlocal seen
        seen += 1
        for layer in layers:
            layer.momentum = 1.0 / seen

    try:
        yield next_batch
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
