"""The cross-validation runner: a config's K folds (or all data) trained with ``fit``, one by one.

Both callers of K-fold training use it: the tuning objective, whose callbacks report to the
pruner, and final training (``hpo train``), whose callbacks write the run directory. Callbacks
may stop the run: ``on_epoch_end`` returning False cuts its fold short after that epoch and ends
the run after it (the cut fold keeps that epoch's validation results: what a pruned trial shows),
``on_fold_end`` returning False ends it after that fold, and an exception raised by either
callback propagates out of :func:`cross_validate` unchanged. The runner never loads data
(callers cache it) and knows nothing of Optuna.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hpo.config import TrainConfig
from hpo.data import LoadedData, Samples, get_layout, kfold_splits
from hpo.exceptions import ConfigError
from hpo.train.loop import EpochResult, FitResult, StepProgress, fit

__all__ = [
    "CrossValResult",
    "FoldResult",
    "FoldRun",
    "Split",
    "cross_validate",
    "fold_name",
    "make_splits",
    "resolve_folds",
]

Split = tuple[np.ndarray, np.ndarray]
"""One fold's ``(train_idx, val_idx)`` positions."""

MEAN_METRICS = ("f1_mask", "f1_gender", "f1_age", "accuracy")
"""Fold metrics averaged into :attr:`CrossValResult.mean_metrics` (where the folds have them)."""


def fold_name(fold: int | None) -> str:
    """``fold_K`` for fold K, ``full`` for training on all data (``fold`` None)."""
    return "full" if fold is None else f"fold_{fold}"


def make_splits(config: TrainConfig, samples: Samples) -> list[Split]:
    """The K-fold splits of ``config``: ``train.kfold.n_splits`` folds seeded by ``train.seed``.

    Splitting the real data set takes seconds: callers that train many configs on the same
    data (the objective) keep the result, keyed by data, ``n_splits`` and seed.

    Raises:
        DataError: Fewer groups than folds.
    """
    return kfold_splits(samples, config.train.kfold.n_splits, seed=config.train.seed)


def resolve_folds(config: TrainConfig, folds: Sequence[int] | None) -> list[int]:
    """The folds to train: ``folds`` checked against ``kfold.n_splits``, or by default the
    first ``kfold.folds`` of them.

    Raises:
        ConfigError: No fold named, or a fold that does not exist.
    """
    n_splits = config.train.kfold.n_splits
    if folds is None:
        return config.train.kfold.fold_indices
    chosen = sorted(set(folds))
    if not chosen:
        raise ConfigError("--folds: name at least one fold")
    bad = [k for k in chosen if not 0 <= k < n_splits]
    if bad:
        raise ConfigError(
            f"--folds: fold {bad[0]} does not exist; train.kfold.n_splits={n_splits} gives "
            f"folds 0..{n_splits - 1}"
        )
    return chosen


@dataclass
class FoldRun:
    """One finished fold, as ``on_fold_end`` sees it: where it trained and the fitted model.

    Attributes:
        fold: The fold index, or None for training on all data.
        train_idx: Positions of the training samples.
        val_idx: Positions of the validation samples; None without validation.
        fit: What ``fit`` returned (the model included).
    """

    fold: int | None
    train_idx: np.ndarray
    val_idx: np.ndarray | None
    fit: FitResult

    @property
    def name(self) -> str:
        return fold_name(self.fold)

    @property
    def stopped(self) -> bool:
        """``on_epoch_end`` cut the fold short: its results are those of its last epoch."""
        return self.fit.stopped

    @property
    def score(self) -> float | None:
        """Validation macro-F1 of the last epoch; None without validation."""
        value = self.fit.metrics.get("macro_f1")
        return None if value is None else float(value)

    def result(self) -> FoldResult:
        """The fold's record, without the model or the predictions."""
        return FoldResult(
            fold=self.fold,
            n_train=len(self.train_idx),
            n_val=0 if self.val_idx is None else len(self.val_idx),
            history=list(self.fit.history),
            metrics=dict(self.fit.metrics),
            per_class_f1=list(self.fit.per_class_f1) if self.val_idx is not None else None,
            confusion=self.fit.confusion if self.val_idx is not None else None,
            seconds=self.fit.seconds,
            stopped=self.fit.stopped,
        )


@dataclass(frozen=True)
class FoldResult:
    """What is kept of a fold once its model is gone.

    Attributes:
        fold: The fold index, or None for training on all data.
        n_train: Training samples.
        n_val: Validation samples (0 without validation).
        history: Every epoch's result, in order.
        metrics: The last epoch's metrics (``FitResult.metrics``).
        per_class_f1: The last epoch's F1 per class; None without validation.
        confusion: The last epoch's confusion matrix; None without validation.
        seconds: Time the fold took.
        stopped: ``on_epoch_end`` cut the fold short after the last epoch of ``history``.
    """

    fold: int | None
    n_train: int
    n_val: int
    history: list[EpochResult]
    metrics: dict[str, float]
    per_class_f1: list[float] | None
    confusion: list[list[int]] | None
    seconds: float
    stopped: bool = False

    @property
    def name(self) -> str:
        return fold_name(self.fold)

    @property
    def score(self) -> float | None:
        """Validation macro-F1 of the last epoch; None without validation."""
        value = self.metrics.get("macro_f1")
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: ``part``, ``fold``, ``n_train``, ``n_val``, ``epochs`` (each
        epoch's ``EpochResult.to_dict()``), the metrics, ``seconds``, ``stopped`` when the fold
        was cut short, and with validation ``per_class_f1`` and ``confusion``."""
        out: dict[str, Any] = {
            "part": self.name,
            "fold": self.fold,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "epochs": [r.to_dict() for r in self.history],
            **self.metrics,
            "seconds": round(self.seconds, 3),
        }
        if self.stopped:
            out["stopped"] = True
        if self.per_class_f1 is not None:
            out["per_class_f1"] = self.per_class_f1
            out["confusion"] = self.confusion
        return out


@dataclass
class CrossValResult:
    """The folds a :func:`cross_validate` call ran, in order, and their aggregates.

    Aggregates cover every fold in ``folds``, a fold cut short at the epoch it was cut.

    Attributes:
        folds: One record per fold run, the fold the run stopped in or after included.
        stopped: A callback stopped the run, in or after the last fold in ``folds``.
    """

    folds: list[FoldResult] = field(default_factory=list)
    stopped: bool = False

    @property
    def scores(self) -> list[float]:
        """Validation macro-F1 of each fold run with validation."""
        return [s for s in (f.score for f in self.folds) if s is not None]

    @property
    def mean_score(self) -> float | None:
        """Mean validation macro-F1 over the folds run (the objective); None without any."""
        scores = self.scores
        return float(np.mean(scores)) if scores else None

    @property
    def per_class_f1(self) -> list[float]:
        """Per-class F1 averaged over the folds with validation; empty without any."""
        rows = [f.per_class_f1 for f in self.folds if f.per_class_f1 is not None]
        return [float(v) for v in np.mean(rows, axis=0)] if rows else []

    @property
    def confusion(self) -> list[list[int]] | None:
        """Confusion matrices summed over the folds with validation; None without any."""
        rows = [np.asarray(f.confusion) for f in self.folds if f.confusion is not None]
        return np.sum(rows, axis=0).tolist() if rows else None

    @property
    def mean_metrics(self) -> dict[str, float]:
        """Mean of ``f1_mask``, ``f1_gender``, ``f1_age`` and ``accuracy`` over the folds that
        have them (the factor F1s only for the competition's labels)."""
        out = {}
        for key in MEAN_METRICS:
            values = [f.metrics[key] for f in self.folds if key in f.metrics]
            if values:
                out[key] = float(np.mean(values))
        return out


def cross_validate(
    config: TrainConfig,
    data: LoadedData,
    *,
    device: torch.device,
    folds: Sequence[int] | None = None,
    full: bool = False,
    splits: Sequence[Split] | None = None,
    on_epoch_end: Callable[[int | None, EpochResult], bool | None] | None = None,
    on_fold_end: Callable[[int | None, FoldRun], bool | None] | None = None,
    progress: StepProgress | None = None,
) -> CrossValResult:
    """Train ``config`` on each chosen fold in turn (or once on all data), calling back after
    every epoch and every fold.

    Args:
        config: The training config (its ``data`` section is not read: ``data`` is given).
        data: The samples and their decoded pixels (``hpo.data.load_training_data``).
        device: Where to train.
        folds: The folds to train, in ascending order (default: the first
            ``train.kfold.folds``); must be None with ``full``.
        full: Train one model on all the samples, without validation; callbacks get fold None.
        splits: The ``train.kfold.n_splits`` splits of ``data`` (:func:`make_splits`), when
            the caller keeps them; by default they are made here. Unused with ``full``.
        on_epoch_end: Called as ``on_epoch_end(fold, epoch_result)`` after each epoch's
            evaluation; returning False cuts the fold short there and ends the run after it
            (``on_fold_end`` is still called, with ``fold_run.stopped`` set).
        on_fold_end: Called as ``on_fold_end(fold, fold_run)`` after each fold; returning
            False ends the run there (None or True goes on).
        progress: Told of each epoch's steps (:data:`hpo.train.loop.StepProgress`).

    Returns:
        The folds run (also the one stopped after) and their aggregates.

    Raises:
        ConfigError: A fold that does not exist.
        DataError: Fewer groups than folds, or no training samples.
        TrainingError: The loss became NaN or infinite.
        Exception: Whatever a callback raises, unchanged.
    """
    samples, images = data.samples, data.images.array
    if full:
        if folds is not None:
            raise ValueError("cross_validate: folds and full exclude each other")
        parts: list[tuple[int | None, np.ndarray, np.ndarray | None]] = [
            (None, np.arange(len(samples), dtype=np.int64), None)
        ]
    else:
        chosen = resolve_folds(config, folds)
        if splits is None:
            splits = make_splits(config, samples)
        n_splits = config.train.kfold.n_splits
        if len(splits) != n_splits:
            raise ValueError(f"cross_validate: {len(splits)} splits given, n_splits={n_splits}")
        parts = [(k, *splits[k]) for k in chosen]

    result = CrossValResult()
    for fold, train_idx, val_idx in parts:
        callback = None if on_epoch_end is None else _bind(on_epoch_end, fold)
        fitted = fit(
            config,
            images,
            samples.labels,
            train_idx,
            val_idx,
            device=device,
            num_classes=samples.num_classes,
            on_epoch_end=callback,
            progress=progress,
            mask_factors=bool(get_layout(samples.format).factors),
        )
        run = FoldRun(fold, train_idx, val_idx, fitted)
        result.folds.append(run.result())
        go_on = True if on_fold_end is None else on_fold_end(fold, run)
        go_on = go_on is not False and not fitted.stopped
        del run, fitted  # the model's memory (on the device) is free before the next fold
        if not go_on:
            result.stopped = True
            break
    return result


def _bind(
    callback: Callable[[int | None, EpochResult], bool | None], fold: int | None
) -> Callable[[EpochResult], bool | None]:
    return lambda epoch_result: callback(fold, epoch_result)
