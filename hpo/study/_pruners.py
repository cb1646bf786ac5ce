"""Pruner entries, rebuilt from the study file by every worker (pruners are not stored).

Each entry's info says what one reported step is (see :class:`hpo.components.PrunerInfo`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import optuna

from hpo.components import PRUNERS, PrunerInfo

__all__ = ["PRUNERS", "build_pruner"]


@PRUNERS.register("median")
def median(
    *, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1
) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup_trials,
        n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
    )


@PRUNERS.register("percentile")
def percentile(
    *,
    percentile: float = 25.0,
    n_startup_trials: int = 5,
    n_warmup_steps: int = 0,
    interval_steps: int = 1,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.PercentilePruner(
        percentile,
        n_startup_trials=n_startup_trials,
        n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
    )


@PRUNERS.register("successive_halving")
def successive_halving(
    *,
    min_resource: int | Literal["auto"] = "auto",
    reduction_factor: int = 4,
    min_early_stopping_rate: int = 0,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource,
        reduction_factor=reduction_factor,
        min_early_stopping_rate=min_early_stopping_rate,
    )


@PRUNERS.register("hyperband")
def hyperband(
    *,
    min_resource: int = 1,
    max_resource: int | Literal["auto"] = "auto",
    reduction_factor: int = 3,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
    )


@PRUNERS.register("wilcoxon", info=PrunerInfo(unit="fold"))
def wilcoxon(*, p_threshold: float = 0.1, n_startup_steps: int = 2) -> optuna.pruners.BasePruner:
    """Across folds: a trial is compared fold by fold with the best trial so far."""
    return optuna.pruners.WilcoxonPruner(p_threshold=p_threshold, n_startup_steps=n_startup_steps)


@PRUNERS.register("none")
def none() -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def build_pruner(spec: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    """The pruner of a study file's ``study.pruner`` (``{name: ..., **params}``)."""
    params = dict(spec)
    name = params.pop("name")
    with warnings.catch_warnings():  # Wilcoxon is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PRUNERS.create(name, **params)
