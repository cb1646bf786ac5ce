"""The training engine: models, losses, optimizers, schedulers, loop and metrics (no Optuna)."""

from __future__ import annotations

from hpo.train.device import configure_backends, resolve_device, seed_everything
from hpo.train.loop import EpochResult, FitResult, fit, predict_proba
from hpo.train.losses import LOSSES
from hpo.train.metrics import classification_metrics
from hpo.train.models import MODELS, build_model
from hpo.train.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_schedule

__all__ = [
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "EpochResult",
    "FitResult",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "classification_metrics",
    "configure_backends",
    "fit",
    "predict_proba",
    "resolve_device",
    "seed_everything",
]
