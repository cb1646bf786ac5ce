"""Optimizer and LR scheduler registries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from hpo.registry import Registry

__all__ = ["OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer", runtime=("params",))
SCHEDULERS: Registry[Any] = Registry("scheduler", runtime=("optimizer", "epochs"))


@OPTIMIZERS.register("adamw")
def adamw(params: Iterable[Any], *, lr: float = 1e-3, weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


@SCHEDULERS.register("cosine")
def cosine(optimizer: torch.optim.Optimizer, epochs: int, *, eta_min: float = 0.0) -> Any:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min)
