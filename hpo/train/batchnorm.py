"""Batch-norm statistics that are right at evaluation: recomputed when the running ones lag.

A batch-norm layer evaluates with running averages of its batch statistics, updated with
``momentum`` each training step and starting from mean 0, variance 1. torchvision's MobileNetV3
and EfficientNet-style models use momentum 0.01 (MNASNet 0.0003), so after the few hundred steps
of a short run on a small data set the averages still mostly hold their starting values:
evaluated with them, a network that trains well predicts one class. Where a layer's starting
values still weigh more than :data:`STALE_WEIGHT` in its running average, :func:`recalibrate`
recomputes the statistics of every trainable batch-norm layer as the exact mean over training
batches (no augmentation, dropout off), the "precise BN" of Wu & Johnson (2021).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["STALE_WEIGHT", "recalibrate", "stale_layers", "trainable_layers"]

STALE_WEIGHT = 0.05
"""Recompute when a layer's starting statistics still weigh more than this in its average."""


def trainable_layers(model: nn.Module) -> list[_BatchNorm]:
    """Batch-norm layers that track running statistics and are in training mode (a frozen
    backbone's are in eval mode and keep their statistics)."""
    return [
        m
        for m in model.modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and m.training
    ]


def stale_layers(layers: Iterable[_BatchNorm]) -> list[_BatchNorm]:
    """The layers whose starting statistics weigh more than :data:`STALE_WEIGHT`: after ``t``
    updates with momentum ``m`` they weigh ``(1 - m) ** t`` (none with a cumulative average)."""
    out = []
    for layer in layers:
        tracked = int(layer.num_batches_tracked) if layer.num_batches_tracked is not None else 0
        momentum = layer.momentum
        weight = 1.0 if tracked == 0 else 0.0 if momentum is None else (1 - momentum) ** tracked
        if weight > STALE_WEIGHT:
            out.append(layer)
    return out


@torch.no_grad()
def recalibrate(
    model: nn.Module, layers: list[_BatchNorm], batches: Iterable[torch.Tensor]
) -> None:
    """Recompute ``layers``' running statistics as the mean over ``batches`` of inputs.

    The rest of the model runs in eval mode (dropout off, other batch norms fixed); the model
    is left in eval mode, each layer's momentum as it was.
    """
    model.eval()
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the batches
        layer.train()
    for x in batches:
        model(x)
    for layer, momentum in zip(layers, saved, strict=True):
        layer.momentum = momentum
        layer.eval()
