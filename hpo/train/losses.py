"""Loss registry: cross-entropy, focal, label smoothing and a differentiable macro-F1 loss.

Every loss maps ``(logits (B, C), targets (B,) int64)`` to a scalar and is an ``nn.Module``, so
its class weights move with ``.to(device)``. The factories receive ``num_classes`` and
``class_counts`` (per-class counts of the training split) at build time; ``weighting`` turns
the counts into class weights for the imbalanced competition data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from hpo.components import LOSSES

__all__ = ["LOSSES", "FocalLoss", "SoftF1Loss", "WeightedCrossEntropy", "class_weights"]


Weighting = Literal["none", "inverse", "sqrt_inverse"]


def class_weights(
    weighting: Weighting, num_classes: int, class_counts: Sequence[int] | None
) -> torch.Tensor | None:
    """Per-class loss weights with mean 1: ``1/count`` or ``1/sqrt(count)``; None for ``none``.

    A class absent from the training split is counted once, so its weight stays finite.
    """
    if weighting == "none":
        return None
    if class_counts is None or len(class_counts) != num_classes:
        raise ValueError(f"weighting={weighting!r} needs class_counts for {num_classes} classes")
    counts = torch.tensor(class_counts, dtype=torch.float32).clamp(min=1.0)
    weights = 1.0 / counts if weighting == "inverse" else counts.rsqrt()
    return weights * (num_classes / weights.sum())


class WeightedCrossEntropy(nn.Module):
    """``F.cross_entropy`` with optional class weights (a buffer) and label smoothing."""

    weight: torch.Tensor | None

    def __init__(self, weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits.float(), targets, weight=self.weight, label_smoothing=self.label_smoothing
        )


class FocalLoss(nn.Module):
    """Multi-class focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017).

    ``gamma=0`` is cross-entropy; class weights average like ``F.cross_entropy``'s
    (sum of weighted losses over the sum of the targets' weights).
    """

    weight: torch.Tensor | None

    def __init__(self, gamma: float, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1).gather(1, targets[:, None]).squeeze(1)
        # clamp: (1 - p)^gamma has an infinite gradient at p == 1 when gamma < 1.
        loss = -((1.0 - log_p.exp()).clamp(min=0.0) ** self.gamma) * log_p
        if self.weight is None:
            return loss.mean()
        w = self.weight[targets]
        return (w * loss).sum() / w.sum()


class SoftF1Loss(nn.Module):
    """``1 - macro-F1`` computed on softmax probabilities, so it has a gradient.

    True/false positives and false negatives are sums of probabilities over the batch, and the
    mean runs over the classes present in the batch's targets: a batch without a rare class
    says nothing about that class's F1 (its false positives still lower the others' recall).
    ``ce_weight`` adds that much cross-entropy, which helps a network trained from scratch.
    """

    def __init__(self, num_classes: int, ce_weight: float = 0.0, eps: float = 1e-7) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ce_weight = ce_weight
        self.eps = eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        probs = logits.softmax(dim=1)
        onehot = F.one_hot(targets, self.num_classes).to(probs.dtype)
        tp = (probs * onehot).sum(0)
        fp = (probs * (1.0 - onehot)).sum(0)
        fn = ((1.0 - probs) * onehot).sum(0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.eps)
        present = (onehot.sum(0) > 0).to(f1.dtype)  # a mask, not indexing: no device sync
        loss = 1.0 - (f1 * present).sum() / present.sum()
        if self.ce_weight:
            loss = loss + self.ce_weight * F.cross_entropy(logits, targets)
        return loss


@LOSSES.register("cross_entropy")
def cross_entropy(
    *, num_classes: int, class_counts: Sequence[int] | None = None, weighting: Weighting = "none"
) -> nn.Module:
    """Cross-entropy, optionally class-weighted by inverse (square-root) frequency."""
    return WeightedCrossEntropy(class_weights(weighting, num_classes, class_counts))


@LOSSES.register("focal")
def focal(
    *,
    num_classes: int,
    class_counts: Sequence[int] | None = None,
    gamma: Annotated[float, Field(ge=0.0, le=10.0)] = 2.0,
    weighting: Weighting = "none",
) -> nn.Module:
    """Focal loss: down-weights easy examples by ``(1 - p_t)^gamma``."""
    return FocalLoss(gamma, class_weights(weighting, num_classes, class_counts))


@LOSSES.register("label_smoothing")
def label_smoothing(
    *,
    num_classes: int,
    class_counts: Sequence[int] | None = None,
    smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1,
    weighting: Weighting = "none",
) -> nn.Module:
    """Cross-entropy against targets smoothed towards the uniform distribution."""
    return WeightedCrossEntropy(
        class_weights(weighting, num_classes, class_counts), label_smoothing=smoothing
    )


@LOSSES.register("f1")
def f1(
    *,
    num_classes: int,
    class_counts: Sequence[int] | None = None,
    ce_weight: Annotated[float, Field(ge=0.0)] = 0.0,
) -> nn.Module:
    """Differentiable macro-F1 loss (``1 - soft macro-F1``), optionally plus cross-entropy."""
    return SoftF1Loss(num_classes, ce_weight=ce_weight)
