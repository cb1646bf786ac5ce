"""The Optuna objective: a thin adapter from a trial to the engine's cross-validation runner.

A trial's sampled values become a TrainConfig; its folds train with
``hpo.train.cross_validate``; every epoch's validation macro-F1 is reported at step
``fold * epochs + epoch - 1`` (steps count from 0, epochs from 1; the same amount of training
in every trial) and the pruner is asked
after every report; a pruned fold stops after the epoch it was pruned at and keeps that epoch's
validation results, which the trial's pictures and factor F1s include (``cut_fold``). With the
Wilcoxon pruner the unit is the fold instead: one report per fold, step = fold index, and a
pruned trial returns the mean of the folds it ran (Optuna's advice, so TPE still learns from
it). Every epoch's result is kept in the user attribute ``history``: one list per fold run,
each a list of ``EpochResult.to_dict()``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import torch

from hpo.artifacts import CUT_FOLD_ATTR
from hpo.config import DataConfig, TrainConfig, apply_overrides, train_config_from_dict
from hpo.data import LoadedData, load_training_data
from hpo.space import Space
from hpo.study import StudySpec
from hpo.train import (
    CrossValResult,
    EpochResult,
    FoldResult,
    FoldRun,
    Split,
    cross_validate,
    make_splits,
)

__all__ = ["Objective", "TrialSummary", "trial_config"]


def trial_config(spec: StudySpec, space: Space, trial: optuna.Trial) -> TrainConfig:
    """Sample the space and merge the values into the fixed settings."""
    values = space.sample(trial)
    raw = apply_overrides(spec.fixed_dict(), values.items())
    return train_config_from_dict(raw, f"trial {trial.number}")


@dataclass
class TrialSummary:
    """What a trial leaves in its user attributes (besides the config)."""

    fold_scores: list[float] = field(default_factory=list)
    epochs_trained: int = 0
    pruned_at_step: int | None = None
    history: list[list[dict[str, Any]]] = field(default_factory=list)
    """Per fold, each epoch's ``EpochResult.to_dict()`` (learning curves, TensorBoard)."""


def _data_key(cfg: DataConfig) -> tuple[Any, ...]:
    return (
        cfg.format,
        str(cfg.root),
        tuple(cfg.image_size),
        cfg.crop,
        str(cfg.corrections),
        cfg.skip_bad_files,
        str(cfg.cache_dir),
    )


class Objective:
    """Callable objective for ``study.optimize``; loads each data set once per worker.

    Args:
        spec: The study file.
        space: Its parsed search space.
        device: Where trials train.
        per_fold_pruning: Report once per fold (Wilcoxon) instead of once per epoch.
        data_loader: ``DataConfig -> LoadedData`` (``hpo.data.load_training_data``).

    Attributes:
        worker: ``{"host", "pid", "device"}`` of this process, recorded in every trial's user
            attribute ``worker`` when it starts (a supervisor finds a dead worker's trial by it).
        on_event: Called with ``{"event": "trial_start", "trial": N}`` and, after every epoch,
            ``{"event": "epoch", "trial": N, "fold": F, "epoch": E, "f1": X}`` (JSON-ready: a
            supervised worker forwards them to its parent's live view).
    """

    def __init__(
        self,
        spec: StudySpec,
        space: Space,
        *,
        device: torch.device,
        per_fold_pruning: bool = False,
        data_loader: Callable[[DataConfig], Any] | None = None,
    ) -> None:
        self.spec = spec
        self.space = space
        self.device = device
        self.per_fold_pruning = per_fold_pruning
        self._load = data_loader or load_training_data
        self._data: dict[tuple[Any, ...], LoadedData] = {}
        self._splits: dict[tuple[Any, ...], list[Split]] = {}
        self.worker: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "device": str(device),
        }
        self.on_event: Callable[[dict[str, Any]], None] | None = None

    def data(self, cfg: DataConfig) -> LoadedData:
        key = _data_key(cfg)
        if key not in self._data:
            self._data[key] = self._load(cfg)
        return self._data[key]

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        summary = TrialSummary()
        try:
            trial.set_user_attr("worker", self.worker)
            if self.on_event is not None:
                self.on_event({"event": "trial_start", "trial": trial.number})
            config = trial_config(self.spec, self.space, trial)
            trial.set_user_attr("config", config.to_dict())
            return self._run(trial, config, summary)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        except KeyboardInterrupt as exc:
            # hpo.exceptions.Interrupted (SIGINT or SIGTERM) says which; a bare one is Ctrl-C.
            trial.set_user_attr("fail_reason", getattr(exc, "reason", "interrupted (Ctrl-C)"))
            raise
        finally:
            self._record(trial, summary, started)

    def _record(self, trial: optuna.Trial, summary: TrialSummary, started: float) -> None:
        trial.set_user_attr("fold_scores", summary.fold_scores)
        trial.set_user_attr("epochs_trained", summary.epochs_trained)
        trial.set_user_attr("history", summary.history)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        trial.set_user_attr("device", str(self.device))
        if summary.pruned_at_step is not None:
            trial.set_user_attr("pruned_at_step", summary.pruned_at_step)

    def _run(self, trial: optuna.Trial, config: TrainConfig, summary: TrialSummary) -> float:
        loaded = self.data(config.data)
        split_key = (_data_key(config.data), config.train.kfold.n_splits, config.train.seed)
        if split_key not in self._splits:
            self._splits[split_key] = make_splits(config, loaded.samples)
        epochs = config.train.epochs

        prune_reason: str | None = None

        def on_epoch_end(fold: int | None, result: EpochResult) -> bool:
            nonlocal prune_reason
            summary.epochs_trained += 1
            if result.epoch == 1:
                summary.history.append([])
            summary.history[-1].append(result.to_dict())
            if self.on_event is not None:
                f1 = None if result.macro_f1 is None else float(result.macro_f1)
                self.on_event(
                    {
                        "event": "epoch",
                        "trial": trial.number,
                        "fold": fold or 0,
                        "epoch": result.epoch,
                        "f1": f1,
                    }
                )
            if self.per_fold_pruning:
                return True
            # Pruner steps count from 0; epochs (as people read them) from 1.
            step = (fold or 0) * epochs + result.epoch - 1
            trial.report(float(result.macro_f1 or 0.0), step)
            if trial.should_prune():
                summary.pruned_at_step = step
                prune_reason = (
                    f"macro-F1 {result.macro_f1:.4f} at fold {fold}, epoch {result.epoch}/{epochs}"
                )
                return False  # the runner ends the fold here and hands it to on_fold_end
            return True

        trained: list[FoldResult] = []

        def on_fold_end(fold: int | None, run: FoldRun) -> bool:
            # Recorded after every fold, so a pruned trial keeps its pictures: those of the
            # folds it finished and of the fold it was pruned in, at the epoch it was pruned.
            trained.append(run.result())
            if run.stopped:
                epoch = run.fit.history[-1].epoch
                trial.set_user_attr(
                    CUT_FOLD_ATTR, {"fold": fold or 0, "epoch": epoch, "epochs": epochs}
                )
            self._record_folds(trial, CrossValResult(folds=trained))
            if run.stopped:
                return False
            score = float(run.score or 0.0)
            summary.fold_scores.append(score)
            if not self.per_fold_pruning:
                return True
            trial.report(score, fold or 0)
            if trial.should_prune():
                summary.pruned_at_step = fold
                trial.set_user_attr("pruned_at_fold", fold)
                return False
            return True

        cross_validate(
            config,
            loaded,
            device=self.device,
            splits=self._splits[split_key],
            on_epoch_end=on_epoch_end,
            on_fold_end=on_fold_end,
        )
        if prune_reason is not None:
            raise optuna.TrialPruned(prune_reason)
        return float(np.mean(summary.fold_scores))

    @staticmethod
    def _record_folds(trial: optuna.Trial, done: CrossValResult) -> None:
        trial.set_user_attr("per_class_f1", [round(v, 4) for v in done.per_class_f1])
        if done.confusion is not None:
            trial.set_user_attr("confusion", done.confusion)
        for key, value in done.mean_metrics.items():
            trial.set_user_attr(key, round(value, 4))
