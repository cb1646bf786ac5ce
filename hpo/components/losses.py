"""The losses' parameters and facts, declared without torch (built by ``hpo.train.losses``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hpo.components import LOSSES

__all__ = ["Weighting"]

Weighting = Literal["none", "inverse", "sqrt_inverse"]
"""Class weights from the training split's class counts: none, ``1/count``, ``1/sqrt(count)``."""


@LOSSES.declare("cross_entropy")
def cross_entropy(*, weighting: Weighting = "none") -> None:
    """Cross-entropy, optionally class-weighted by inverse (square-root) frequency."""


@LOSSES.declare("focal")
def focal(
    *, gamma: Annotated[float, Field(ge=0.0, le=10.0)] = 2.0, weighting: Weighting = "none"
) -> None:
    """Focal loss: down-weights easy examples by ``(1 - p_t)^gamma``."""


@LOSSES.declare("label_smoothing")
def label_smoothing(
    *, smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1, weighting: Weighting = "none"
) -> None:
    """Cross-entropy against targets smoothed towards the uniform distribution."""


@LOSSES.declare("f1")
def f1(*, ce_weight: Annotated[float, Field(ge=0.0)] = 0.0) -> None:
    """Differentiable macro-F1 loss (``1 - soft macro-F1``), optionally plus cross-entropy."""
