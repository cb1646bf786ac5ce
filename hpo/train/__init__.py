"""The training engine: models, losses, optimizers, schedulers, loop, cross-validation runner
and metrics (no Optuna)."""

from __future__ import annotations

from hpo.train.crossval import (
    CrossValResult,
    FoldResult,
    FoldRun,
    Split,
    cross_validate,
    make_splits,
)
from hpo.train.device import configure_backends, resolve_device, seed_everything, set_threads
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
    "CrossValResult",
    "EpochResult",
    "FitResult",
    "FoldResult",
    "FoldRun",
    "Split",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "classification_metrics",
    "configure_backends",
    "cross_validate",
    "fit",
    "make_splits",
    "predict_proba",
    "resolve_device",
    "seed_everything",
    "set_threads",
]
