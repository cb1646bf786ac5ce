"""The optimizers' and LR schedulers' parameters and facts, declared without torch (built by
``hpo.train.optim``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hpo.components import OPTIMIZERS, SCHEDULERS, SchedulerInfo

__all__ = ["Beta", "LearningRate", "WeightDecay"]

LearningRate = Annotated[float, Field(gt=0.0)]
WeightDecay = Annotated[float, Field(ge=0.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


@OPTIMIZERS.declare("sgd")
def sgd(
    *,
    lr: LearningRate = 0.01,
    momentum: Beta = 0.9,
    nesterov: bool = False,
    weight_decay: WeightDecay = 0.0,
) -> None:
    """SGD with (Nesterov) momentum."""


@OPTIMIZERS.declare("adam")
def adam(
    *,
    lr: LearningRate = 1e-3,
    beta1: Beta = 0.9,
    beta2: Beta = 0.999,
    weight_decay: WeightDecay = 0.0,
) -> None:
    """Adam; ``weight_decay`` is the classic L2 penalty added to the gradient."""


@OPTIMIZERS.declare("adamw")
def adamw(
    *,
    lr: LearningRate = 1e-3,
    beta1: Beta = 0.9,
    beta2: Beta = 0.999,
    weight_decay: WeightDecay = 1e-4,
) -> None:
    """AdamW: decoupled weight decay."""


@SCHEDULERS.declare("constant")
def constant() -> None:
    """The learning rate stays as set (after any warm-up)."""


@SCHEDULERS.declare("step")
def step(
    *,
    step_size: Annotated[int, Field(ge=1)] = 1,
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1,
) -> None:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""


@SCHEDULERS.declare("cosine")
def cosine(
    *,
    T_max: Annotated[int, Field(ge=1)] | None = None,
    eta_min: Annotated[float, Field(ge=0.0)] = 0.0,
) -> None:
    """Cosine annealing to ``eta_min`` over ``T_max`` epochs (default: the rest of the run)."""


@SCHEDULERS.declare("plateau", info=SchedulerInfo(needs_metric=True))
def plateau(
    *,
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1,
    patience: Annotated[int, Field(ge=0)] = 1,
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0,
) -> None:
    """Multiply the learning rate by ``factor`` when validation macro-F1 has not improved
    (by 1e-4) for ``patience`` epochs."""


@SCHEDULERS.declare("onecycle", info=SchedulerInfo(step="batch", own_warmup=True))
def onecycle(
    *,
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: Annotated[float, Field(ge=1.0)] = 25.0,
    final_div_factor: Annotated[float, Field(ge=1.0)] = 1e4,
) -> None:
    """One cycle per run, stepped per batch: up from ``lr / div_factor`` to the optimizer's
    ``lr`` over the first ``pct_start`` of the steps, then down to ``lr / (div_factor *
    final_div_factor)``. Momentum is left alone (``cycle_momentum: false``)."""


@SCHEDULERS.declare("warmup_cosine", info=SchedulerInfo(step="batch"))
def warmup_cosine(*, eta_min: Annotated[float, Field(ge=0.0)] = 0.0) -> None:
    """Cosine annealing to ``eta_min`` stepped per batch (smooth within each epoch); with
    ``warmup_epochs`` the warm-up before it rises per batch too."""
