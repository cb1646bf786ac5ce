"""The Optuna objective: a thin adapter from a trial to K-fold training with the engine.

A trial's sampled values become a TrainConfig; its folds train with ``hpo.train.fit``; every
epoch's validation macro-F1 is reported at step ``fold * epochs + epoch`` (the same amount of
training in every trial) and the pruner is asked after every report. With the Wilcoxon pruner
the unit is the fold instead: one report per fold, step = fold index, and a pruned trial
returns the mean of the folds it ran (Optuna's advice, so TPE still learns from it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import torch

from hpo.config import DataConfig, StudySpec, TrainConfig, apply_overrides, train_config_from_dict
from hpo.space import Space

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
        from hpo.data import load_training_data

        self.spec = spec
        self.space = space
        self.device = device
        self.per_fold_pruning = per_fold_pruning
        self._load = data_loader or load_training_data
        self._data: dict[tuple[Any, ...], Any] = {}
        self._splits: dict[tuple[Any, ...], list[tuple[np.ndarray, np.ndarray]]] = {}

    def data(self, cfg: DataConfig) -> Any:
        key = _data_key(cfg)
        if key not in self._data:
            self._data[key] = self._load(cfg)
        return self._data[key]

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        summary = TrialSummary()
        try:
            config = trial_config(self.spec, self.space, trial)
            trial.set_user_attr("config", config.to_dict())
            return self._run(trial, config, summary)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            raise
        finally:
            self._record(trial, summary, started)

    def _record(self, trial: optuna.Trial, summary: TrialSummary, started: float) -> None:
        trial.set_user_attr("fold_scores", summary.fold_scores)
        trial.set_user_attr("epochs_trained", summary.epochs_trained)
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        trial.set_user_attr("device", str(self.device))
        trial.set_user_attr("history", summary.history)
        if summary.pruned_at_step is not None:
            trial.set_user_attr("pruned_at_step", summary.pruned_at_step)

    def _run(self, trial: optuna.Trial, config: TrainConfig, summary: TrialSummary) -> float:
        from hpo.data import kfold_splits
        from hpo.train import fit

        loaded = self.data(config.data)
        samples, images = loaded.samples, loaded.images
        kfold = config.train.kfold
        split_key = (_data_key(config.data), kfold.n_splits, config.train.seed)
        if split_key not in self._splits:
            self._splits[split_key] = kfold_splits(samples, kfold.n_splits, seed=config.train.seed)
        splits = self._splits[split_key]
        epochs = config.train.epochs
        per_class: list[list[float]] = []
        confusion: np.ndarray | None = None
        factors: dict[str, list[float]] = {}

        for fold, (train_idx, val_idx) in enumerate(splits[: kfold.fold_count]):
            summary.history.append([])

            def on_epoch_end(result: Any, fold: int = fold) -> None:
                summary.epochs_trained += 1
                summary.history[fold].append(result.to_dict())
                if self.per_fold_pruning:
                    return
                step = fold * epochs + result.epoch
                trial.report(float(result.macro_f1), step)
                if trial.should_prune():
                    summary.pruned_at_step = step
                    raise optuna.TrialPruned(
                        f"macro-F1 {result.macro_f1:.4f} at fold {fold}, epoch {result.epoch}"
                    )

            fitted = fit(
                config,
                images.array,
                samples.labels,
                train_idx,
                val_idx,
                device=self.device,
                num_classes=samples.num_classes,
                on_epoch_end=on_epoch_end,
                mask_factors=samples.format == "mask",
            )
            score = float(fitted.metrics["macro_f1"])
            summary.fold_scores.append(score)
            per_class.append(list(fitted.per_class_f1))
            matrix = np.asarray(fitted.confusion)
            confusion = matrix if confusion is None else confusion + matrix
            for key in ("f1_mask", "f1_gender", "f1_age", "accuracy"):
                if key in fitted.metrics:
                    factors.setdefault(key, []).append(float(fitted.metrics[key]))
            # Recorded after every fold, so a trial pruned in a later fold keeps its pictures.
            self._record_folds(trial, per_class, confusion, factors)
            if self.per_fold_pruning:
                trial.report(score, fold)
                if trial.should_prune():
                    summary.pruned_at_step = fold
                    trial.set_user_attr("pruned_at_fold", fold)
                    break
        return float(np.mean(summary.fold_scores))

    @staticmethod
    def _record_folds(
        trial: optuna.Trial,
        per_class: list[list[float]],
        confusion: np.ndarray | None,
        factors: dict[str, list[float]],
    ) -> None:
        trial.set_user_attr("per_class_f1", [round(float(v), 4) for v in np.mean(per_class, 0)])
        if confusion is not None:
            trial.set_user_attr("confusion", confusion.tolist())
        for key, values in factors.items():
            trial.set_user_attr(key, round(float(np.mean(values)), 4))
