"""The Optuna objective: a thin adapter from a trial to the engine's cross-validation runner.

A trial's sampled values become a TrainConfig; its folds train with
``hpo.train.cross_validate``; every epoch's validation macro-F1 is reported at step
``fold * epochs + epoch - 1`` (steps count from 0, epochs from 1; the same amount of training
in every trial) and the pruner is asked
after every report; a pruned fold stops after the epoch it was pruned at and keeps that epoch's
validation results, which the trial's pictures and factor F1s include (``cut_fold``). With the
Wilcoxon pruner the unit is the fold instead: one report per fold, step = fold index, and a
pruned trial returns the mean of the folds it ran (Optuna's advice, so TPE still learns from
it). What a trial records (its worker and config when it starts, its results when it ends,
every epoch's result in ``history``) is written through ``hpo.study``'s trial record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import torch

from hpo.config import DataConfig, TrainConfig, apply_overrides, train_config_from_dict
from hpo.data import LoadedData, load_training_data
from hpo.interrupts import finishing, raise_if_stopped
from hpo.space import Space
from hpo.study import (
    CutFold,
    StudySpec,
    ValidationScores,
    WorkerInfo,
    record_config,
    record_fail_reason,
    record_result,
    record_worker,
)
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
    """What a running trial has done so far; recorded once, when it ends (``record_result``)."""

    fold_scores: list[float] = field(default_factory=list)
    epochs_trained: int = 0
    pruned_at_step: int | None = None
    pruned_at_fold: int | None = None
    history: list[list[dict[str, Any]]] = field(default_factory=list)
    """Per fold, each epoch's ``EpochResult.to_dict()`` (learning curves, TensorBoard)."""
    folds: list[FoldResult] = field(default_factory=list)
    """Every fold trained, a fold pruned inside included (its scores at that epoch)."""
    cut_fold: CutFold | None = None

    def scores(self) -> ValidationScores | None:
        """Validation scores of the folds trained; None before the first."""
        if not self.folds:
            return None
        done = CrossValResult(folds=self.folds)
        confusion = done.confusion
        return ValidationScores(
            per_class_f1=tuple(done.per_class_f1),
            confusion=None if confusion is None else tuple(tuple(row) for row in confusion),
            **done.mean_metrics,
        )


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
        worker_info: This process (host, pid, device), recorded on every trial when it starts
            (a supervisor finds a dead worker's trial by it).
        on_event: Called with ``{"event": "trial_start", "trial": N}`` and, after every epoch,
            ``{"event": "epoch", "trial": N, "fold": F, "epoch": E, "f1": X}`` (JSON-ready: a
            supervised worker forwards them to its parent's live view).
        on_epoch: Called after every epoch with the trial's number, the fold and the epoch's
            ``EpochResult.to_dict()`` (experiment trackers log it as it happens).
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
        self.worker_info = WorkerInfo.this_process(str(device))
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.on_epoch: Callable[[int, int, dict[str, Any]], None] | None = None

    @property
    def worker(self) -> dict[str, Any]:
        """``{"host", "pid", "device"}`` of ``worker_info`` (the supervisor's ready event)."""
        return self.worker_info.to_json()

    def data(self, cfg: DataConfig) -> LoadedData:
        key = _data_key(cfg)
        if key not in self._data:
            self._data[key] = self._load(cfg)
        return self._data[key]

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        summary = TrialSummary()
        try:
            record_worker(trial, self.worker_info)
            if self.on_event is not None:
                self.on_event({"event": "trial_start", "trial": trial.number})
            config = trial_config(self.spec, self.space, trial)
            record_config(trial, config)
            return self._run(trial, config, summary)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            record_fail_reason(trial, f"{type(exc).__name__}: {exc}")
            raise
        except KeyboardInterrupt as exc:
            # hpo.exceptions.Interrupted (SIGINT or SIGTERM) says which; a bare one is Ctrl-C.
            record_fail_reason(trial, getattr(exc, "reason", "interrupted (Ctrl-C)"))
            raise
        finally:
            self._record(trial, summary, started)

    def _record(self, trial: optuna.Trial, summary: TrialSummary, started: float) -> None:
        # Once, when the trial ends however it ends (a pruned trial keeps the scores and
        # pictures of the fold it was pruned in): every attribute is a storage round trip.
        record_result(
            trial,
            fold_scores=summary.fold_scores,
            epochs_trained=summary.epochs_trained,
            history=summary.history,
            seconds=time.perf_counter() - started,
            device=str(self.device),
            pruned_at_step=summary.pruned_at_step,
            pruned_at_fold=summary.pruned_at_fold,
            cut_fold=summary.cut_fold,
            scores=summary.scores(),
        )

    def _run(self, trial: optuna.Trial, config: TrainConfig, summary: TrialSummary) -> float:
        loaded = self.data(config.data)
        split_key = (_data_key(config.data), config.train.kfold.n_splits, config.train.seed)
        if split_key not in self._splits:
            self._splits[split_key] = make_splits(config, loaded.samples)
        epochs = config.train.epochs

        prune_reason: str | None = None

        def on_epoch_end(fold: int | None, result: EpochResult) -> bool:
            nonlocal prune_reason
            raise_if_stopped()  # a stop whose raise Python swallowed (hpo.interrupts)
            summary.epochs_trained += 1
            if result.epoch == 1:
                summary.history.append([])
            summary.history[-1].append(result.to_dict())
            if self.on_epoch is not None:
                self.on_epoch(trial.number, fold or 0, result.to_dict())
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

        def on_fold_end(fold: int | None, run: FoldRun) -> bool:
            # A pruned trial keeps its pictures: those of the folds it finished and of the
            # fold it was pruned in, at the epoch it was pruned.
            summary.folds.append(run.result())
            if run.stopped:
                epoch = run.fit.history[-1].epoch
                summary.cut_fold = CutFold(fold=fold or 0, epoch=epoch, epochs=epochs)
                finishing()
                return False
            score = float(run.score or 0.0)
            summary.fold_scores.append(score)
            if self.per_fold_pruning:
                trial.report(score, fold or 0)
                if trial.should_prune():
                    summary.pruned_at_step = fold
                    summary.pruned_at_fold = fold
                    finishing()
                    return False
            if len(summary.fold_scores) >= config.train.kfold.fold_count:
                # Trained: a stop from here on waits until the trial is recorded and told.
                finishing()
            return True

        cross_validate(
            config,
            loaded,
            device=self.device,
            splits=self._splits[split_key],
            on_epoch_end=on_epoch_end,
            on_fold_end=on_fold_end,
        )
        finishing()
        if prune_reason is not None:
            raise optuna.TrialPruned(prune_reason)
        return float(np.mean(summary.fold_scores))
