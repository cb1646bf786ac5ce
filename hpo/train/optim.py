"""Optimizer and LR scheduler registry entries, and the schedule the loop steps.

Schedulers are torch's own. Each entry's info says when it steps: ``epoch`` entries once per
epoch, after evaluation (``plateau`` with the validation macro-F1, mode ``max``); ``batch``
entries (``onecycle``, ``warmup_cosine``) after every optimizer step. An optional linear
warm-up (``train.scheduler.warmup_epochs``) runs first in the entry's own unit: joined with
``SequentialLR``, or by :class:`Schedule` itself for metric-driven entries, which
``SequentialLR`` cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from hpo.components import OPTIMIZERS, SCHEDULERS, SchedulerInfo
from hpo.config import OptimizerSpec, SchedulerSpec
from hpo.exceptions import ConfigError

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "WARMUP_START_FACTOR",
    "Schedule",
    "build_optimizer",
    "build_schedule",
    "final_lr_ratio",
    "param_groups",
]

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
def constant(optimizer: torch.optim.Optimizer, epochs: int, steps: int) -> LRScheduler:
    """The learning rate stays as set (after any warm-up)."""
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


@SCHEDULERS.register("step")
def step(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps: int,
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
    steps: int,
    *,
    T_max: Annotated[int, Field(ge=1)] | None = None,
    eta_min: Annotated[float, Field(ge=0.0)] = 0.0,
) -> LRScheduler:
    """Cosine annealing to ``eta_min`` over ``T_max`` epochs (default: the rest of the run)."""
    return CosineAnnealingLR(optimizer, T_max=T_max or epochs, eta_min=eta_min)


@SCHEDULERS.register("plateau", info=SchedulerInfo(needs_metric=True))
def plateau(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps: int,
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


@SCHEDULERS.register("onecycle", info=SchedulerInfo(step="batch", own_warmup=True))
def onecycle(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps: int,
    *,
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3,
    anneal_strategy: Literal["cos", "linear"] = "cos",
    div_factor: Annotated[float, Field(ge=1.0)] = 25.0,
    final_div_factor: Annotated[float, Field(ge=1.0)] = 1e4,
) -> LRScheduler:
    """One cycle per run, stepped per batch: up from ``lr / div_factor`` to the optimizer's
    ``lr`` over the first ``pct_start`` of the steps, then down to ``lr / (div_factor *
    final_div_factor)``. Momentum is left alone (``cycle_momentum: false``)."""
    return OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=steps,
        pct_start=pct_start,
        anneal_strategy=anneal_strategy,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=False,
    )


@SCHEDULERS.register("warmup_cosine", info=SchedulerInfo(step="batch"))
def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    epochs: int,
    steps: int,
    *,
    eta_min: Annotated[float, Field(ge=0.0)] = 0.0,
) -> LRScheduler:
    """Cosine annealing to ``eta_min`` stepped per batch (smooth within each epoch); with
    ``warmup_epochs`` the warm-up before it rises per batch too."""
    return CosineAnnealingLR(optimizer, T_max=steps, eta_min=eta_min)


# ---------------------------------------------------------------------------------------------


class Schedule:
    """The run's learning-rate schedule: linear warm-up, then the registry's scheduler.

    The loop calls :meth:`batch_end` after every optimizer step and :meth:`epoch_end` after
    every epoch's evaluation; the entry's info decides which of the two advances it.

    Args:
        optimizer: The optimizer whose learning rates are scheduled.
        main: The registry's scheduler, built for the ticks after the warm-up.
        info: The entry's info (step unit, whether it needs the metric).
        warmup: Ticks (epochs or optimizer steps, in the entry's unit) of linear warm-up from
            ``WARMUP_START_FACTOR`` x the learning rate; the main scheduler starts at the full
            rate after them.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        main: LRScheduler,
        info: SchedulerInfo,
        warmup: int = 0,
    ) -> None:
        self.optimizer = optimizer
        self.main = main
        self.info = info
        self.warmup = warmup
        self.ticks = 0
        self._warmup: LinearLR | None = None
        self._scheduler: LRScheduler = main
        if warmup > 0:
            linear = LinearLR(
                optimizer, start_factor=WARMUP_START_FACTOR, end_factor=1.0, total_iters=warmup
            )
            if info.needs_metric:
                self._warmup = linear
            else:
                self._scheduler = SequentialLR(optimizer, [linear, main], milestones=[warmup])

    @property
    def needs_metric(self) -> bool:
        """Whether :meth:`epoch_end` needs the epoch's metric (``plateau``)."""
        return self.info.needs_metric

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def batch_end(self) -> None:
        """After an optimizer step: advances per-batch schedules."""
        if self.info.step == "batch":
            self._tick(None)

    def epoch_end(self, metric: float | None = None) -> None:
        """After an epoch; ``metric`` (higher is better) feeds metric-driven schedules."""
        if self.info.step == "epoch":
            self._tick(metric)

    def _tick(self, metric: float | None) -> None:
        self.ticks += 1
        if self._warmup is not None and self.ticks <= self.warmup:
            self._warmup.step()
            return
        if self.info.needs_metric:
            if metric is None:
                raise ValueError("the plateau scheduler needs a metric at every step")
            assert isinstance(self._scheduler, ReduceLROnPlateau)
            self._scheduler.step(metric)
        else:
            self._scheduler.step()


def param_groups(
    model: nn.Module, head: str, lr: float, backbone_lr_mult: float = 1.0
) -> list[dict[str, Any]]:
    """``model``'s parameters as optimizer groups: the classifier ``head`` at ``lr``, the rest
    (the backbone) at ``lr * backbone_lr_mult``; one group when the multiplier is 1."""
    if backbone_lr_mult == 1.0:
        return [{"params": list(model.parameters()), "lr": lr}]
    prefix = head + "."
    own: list[nn.Parameter] = []
    backbone: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        (own if name.startswith(prefix) else backbone).append(param)
    groups = [{"params": own, "lr": lr, "name": "head"}]
    if backbone:
        groups.append({"params": backbone, "lr": lr * backbone_lr_mult, "name": "backbone"})
    return groups


def build_optimizer(
    spec: OptimizerSpec, model: nn.Module | Iterable[Any], head: str | None = None
) -> torch.optim.Optimizer:
    """The optimizer named in ``spec`` over ``model``'s parameters, the backbone (all but
    ``head``) at ``spec.backbone_lr_mult`` times the learning rate; plain parameters or groups
    are also accepted (no multiplier then)."""
    if isinstance(model, nn.Module):
        lr = float(spec.params["lr"])
        params: Iterable[Any] = param_groups(
            model, head or "", lr, spec.backbone_lr_mult if head else 1.0
        )
    else:
        params = model
    return OPTIMIZERS.create(spec.name, params=params, **spec.params)


def build_schedule(
    spec: SchedulerSpec,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int = 1,
) -> Schedule:
    """The schedule named in ``spec`` for a run of ``epochs`` epochs, warm-up included.

    Args:
        spec: The scheduler settings.
        optimizer: The optimizer to schedule.
        epochs: Epochs of the run.
        steps_per_epoch: Optimizer steps per epoch (per-batch schedules count in these).
    """
    info = SCHEDULERS.info(spec.name)
    warmup_epochs = min(spec.warmup_epochs, epochs)
    per_epoch = steps_per_epoch if info.step == "batch" else 1
    warmup = warmup_epochs * per_epoch
    main = SCHEDULERS.create(
        spec.name,
        optimizer=optimizer,
        epochs=max(epochs - warmup_epochs, 1),
        steps=max(epochs * steps_per_epoch - warmup_epochs * steps_per_epoch, 1),
        **spec.params,
    )
    return Schedule(optimizer, main, info, warmup)


def final_lr_ratio(spec: SchedulerSpec, *, epochs: int, steps_per_epoch: int = 20) -> float:
    """The learning rate a run's last epoch trains at (mean over its steps) over the
    optimizer's own rate.

    The schedule runs as in training (warm-up included) on a one-parameter optimizer; a
    metric-driven schedule (``plateau``) sees a metric that never improves, so the ratio is
    the lowest it can reach. A ratio below 1e-4 means the run's last epochs cannot learn; a
    cosine or one-cycle schedule annealing to 0 ends each run near 0.006 of its rate.
    """
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=1.0)
    schedule = build_schedule(spec, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch)
    last: list[float] = []
    for _ in range(epochs):
        last = []
        for _ in range(steps_per_epoch):
            last.append(schedule.lr)
            optimizer.step()  # (no gradient: nothing moves) keeps torch's step order
            schedule.batch_end()
        schedule.epoch_end(0.0 if schedule.needs_metric else None)
    return sum(last) / len(last)
