"""Experiment trackers: TensorBoard, MLflow and Weights & Biases behind one interface.

A study file names its trackers (``study.trackers``), an exported training config carries them
(``trackers``); each is a registry entry declared in :mod:`hpo.components.trackers` and built
here. Every trial is one run in each tracker, told each epoch as it ends (``val_macro_f1/fold_0``
... at step = epoch), then its outcome and pictures; ``hpo train`` is one run too. A tracker that
fails never fails a trial (:class:`TrackerSet`).

- ``_base``: :class:`Tracker`, :class:`RunInfo`, :class:`RunEnd`, the metric names.
- ``_set``: :class:`TrackerSet`, several trackers as one that cannot raise.
- ``_open``: building a study's trackers, and refusing those whose library is missing.
- ``_tensorboard``, ``_mlflow``, ``_wandb``: the implementations (their libraries are imported
  when a run starts, never by importing this package).
- ``_train``: the run of ``hpo train``.
"""

from __future__ import annotations

from hpo.trackers._base import (
    EPOCH_METRICS,
    RunEnd,
    RunInfo,
    Tracker,
    TrackerContext,
    epoch_metrics,
    flat_settings,
)
from hpo.trackers._mlflow import MlflowTracker, mlflow_client, param_key, sqlite_path
from hpo.trackers._open import open_trackers, require_trackers
from hpo.trackers._set import TrackerSet
from hpo.trackers._tensorboard import (
    METRIC_TAG,
    EventWriter,
    TensorBoardTracker,
    flat_hparams,
    require_tensorboard,
    write_trial_events,
)
from hpo.trackers._train import TrainTracking
from hpo.trackers._wandb import WandbTracker

__all__ = [
    "EPOCH_METRICS",
    "METRIC_TAG",
    "EventWriter",
    "MlflowTracker",
    "RunEnd",
    "RunInfo",
    "TensorBoardTracker",
    "Tracker",
    "TrackerContext",
    "TrackerSet",
    "TrainTracking",
    "WandbTracker",
    "epoch_metrics",
    "flat_hparams",
    "flat_settings",
    "mlflow_client",
    "open_trackers",
    "param_key",
    "require_tensorboard",
    "require_trackers",
    "sqlite_path",
    "write_trial_events",
]
