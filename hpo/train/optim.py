"""Optimizer and LR scheduler registries, and the per-epoch schedule the loop steps.

Schedulers are torch's own and are stepped once per epoch, after evaluation; ``plateau``
watches the validation macro-F1 (mode ``max``). An optional linear warm-up
(``train.scheduler.warmup_epochs``) runs first: joined with ``SequentialLR`` for the others,
and by :class:`EpochSchedule` itself for ``plateau``, which ``SequentialLR`` cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import torch
from pydantic import Field
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from hpo.config import OptimizerSpec, SchedulerSpec
from hpo.exceptions import ConfigError
from hpo.registry import Registry

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "WARMUP_START_FACTOR",
    "EpochSchedule",
    "build_optimizer",
    "build_schedule",
]

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer", runtime=("params",))
SCHEDULERS: Registry[LRScheduler] = Registry("scheduler", runtime=("optimizer", "epochs"))

LearningRate = Annotated[float, Field(gt=0.0)]
WeightDecay = Annotated[float, Field(ge=0.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]

WARMUP_START_FACTOR = 0.01
"""Warm-up starts at this fraction of the learning rate."""


def _fused(params: list[Any]) -> bool | None:
    # The fused CUDA kernels are the fastest Adam(W); None lets torch pick elsewhere.
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return True if tensors and all(t.is_cuda for t in tensors) else None


@OPTIMIZERS.register("sgd")
def sgd(
    params: Iterable[Any],
    *,
    lr: LearningRate = 0.01,
    momentum: Beta = 0.9,
    nesterov: bool = False,
    weight_decay: WeightDecay = 0.0,
) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum."""
    if nesterov and momentum == 0:
        raise ConfigError("train.optimizer: sgd with nesterov: true needs momentum > 0")
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
    )


@OPTIMIZERS.register("adam")
def adam(
    params: Iterable[Any],
    *,
    lr: LearningRate = 1e-3,
    beta1: Beta = 0.9,
    beta2: Beta = 0.999,
    weight_decay: WeightDecay = 0.0,
) -> torch.optim.Optimizer:
    """Adam; ``weight_decay`` is the classic L2 penalty added to the gradient."""
    params = list(params)
    return torch.optim.Adam(
        params, lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, fused=_fused(params)
    )


@OPTIMIZERS.register("adamw")
def adamw(
    params: Iterable[Any],
    *,
    lr: LearningRate = 1e-3,
    beta1: Beta = 0.9,
    beta2: Beta = 0.999,
    weight_decay: WeightDecay = 1e-4,
) -> torch.optim.Optimizer:
    """AdamW: decoupled weight decay."""
    params = list(params)
    return torch.optim.AdamW(
        params, lr=lr, betas=(beta1, beta2), weight_decay=weight_decay, fused=_fused(params)
    )


@SCHEDULERS.register("constant")
def constant(optimizer: torch.optim.Optimizer, epochs: int) -> LRScheduler:
    """The learning rate stays as set (after any warm-up)."""
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


@SCHEDULERS.register("step")
def step(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    step_size: Annotated[int, Field(ge=1)] = 1,
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1,
) -> LRScheduler:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""
    return StepLR(optimizer, step_size=step_size, gamma=gamma)


@SCHEDULERS.register("cosine")
def cosine(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    T_max: Annotated[int, Field(ge=1)] | None = None,
    eta_min: Annotated[float, Field(ge=0.0)] = 0.0,
) -> LRScheduler:
    """Cosine annealing to ``eta_min`` over ``T_max`` epochs (default: the rest of the run)."""
    return CosineAnnealingLR(optimizer, T_max=T_max or epochs, eta_min=eta_min)


@SCHEDULERS.register("plateau")
def plateau(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    *,
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1,
    patience: Annotated[int, Field(ge=0)] = 1,
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0,
) -> LRScheduler:
    """Multiply the learning rate by ``factor`` when validation macro-F1 has not improved
    (by 1e-4) for ``patience`` epochs."""
    return ReduceLROnPlateau(
        optimizer,
        mode="max",
        factor=factor,
        patience=patience,
        threshold=1e-4,
        threshold_mode="abs",
        min_lr=min_lr,
    )


# ---------------------------------------------------------------------------------------------


class EpochSchedule:
    """One learning-rate schedule stepped once per epoch: linear warm-up, then the main one.

    Args:
        optimizer: The optimizer whose learning rates are scheduled.
        main: The registry's scheduler, built for the epochs after the warm-up.
        warmup_epochs: Epochs of linear warm-up from ``WARMUP_START_FACTOR`` x the
            learning rate; the main scheduler starts at the full rate after them.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, main: LRScheduler, warmup_epochs: int = 0
    ) -> None:
        self.optimizer = optimizer
        self.main = main
        self.warmup_epochs = warmup_epochs
        self.epoch = 0
        self._warmup: LinearLR | None = None
        self._scheduler: LRScheduler = main
        if warmup_epochs > 0:
            warmup = LinearLR(
                optimizer,
                start_factor=WARMUP_START_FACTOR,
                end_factor=1.0,
                total_iters=warmup_epochs,
            )
            if isinstance(main, ReduceLROnPlateau):
                self._warmup = warmup
            else:
                self._scheduler = SequentialLR(
                    optimizer, [warmup, main], milestones=[warmup_epochs]
                )

    @property
    def needs_metric(self) -> bool:
        """Whether :meth:`step` needs the epoch's metric (``plateau``)."""
        return isinstance(self.main, ReduceLROnPlateau)

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, metric: float | None = None) -> None:
        """Advance one epoch; ``metric`` (higher is better) feeds ``plateau`` after warm-up."""
        self.epoch += 1
        if self._warmup is not None and self.epoch <= self.warmup_epochs:
            self._warmup.step()
            return
        if isinstance(self._scheduler, ReduceLROnPlateau):
            if metric is None:
                raise ValueError("the plateau scheduler needs a metric at every step")
            self._scheduler.step(metric)
        else:
            self._scheduler.step()


def build_optimizer(spec: OptimizerSpec, params: Iterable[Any]) -> torch.optim.Optimizer:
    """The optimizer named in ``spec`` over ``params``."""
    return OPTIMIZERS.create(spec.name, params=params, **spec.params)


def build_schedule(
    spec: SchedulerSpec, optimizer: torch.optim.Optimizer, *, epochs: int
) -> EpochSchedule:
    """The schedule named in ``spec`` for a run of ``epochs`` epochs, warm-up included."""
    warmup = min(spec.warmup_epochs, epochs)
    main = SCHEDULERS.create(
        spec.name, optimizer=optimizer, epochs=max(epochs - warmup, 1), **spec.params
    )
    return EpochSchedule(optimizer, main, warmup)
