"""Sampler entries, rebuilt from the study file by every worker (samplers are not stored)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

import optuna

from hpo.components import SAMPLERS, SamplerInfo

__all__ = ["SAMPLERS", "build_sampler"]

Grid = Callable[[], Mapping[str, list[Any]]]


@SAMPLERS.register("tpe")
def tpe(
    grid: Grid,
    *,
    seed: int | None = None,
    n_startup_trials: int = 10,
    multivariate: bool = True,
    group: bool = True,
    constant_liar: bool = True,
) -> optuna.samplers.BaseSampler:
    """TPE; ``group`` models conditional branches (scheduler/loss parameters) jointly."""
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        multivariate=multivariate,
        group=group,
        constant_liar=constant_liar,
    )


@SAMPLERS.register("random")
def random(grid: Grid, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("cmaes")
def cmaes(
    grid: Grid,
    *,
    seed: int | None = None,
    n_startup_trials: int = 1,
    restart_strategy: Literal["ipop", "bipop"] | None = None,
) -> optuna.samplers.BaseSampler:
    """CMA-ES on the continuous parameters; categorical ones fall back to random sampling."""
    return optuna.samplers.CmaEsSampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        restart_strategy=restart_strategy,
        warn_independent_sampling=False,
    )


@SAMPLERS.register("grid", info=SamplerInfo(exhaustible=True))
def grid(grid: Grid, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Every combination of the (choice and linear int) parameters, in random order."""
    return optuna.samplers.GridSampler(dict(grid()), seed=seed)


def build_sampler(spec: Mapping[str, Any], grid: Grid) -> optuna.samplers.BaseSampler:
    """The sampler of a study file's ``study.sampler`` (``{name: ..., **params}``)."""
    params = dict(spec)
    name = params.pop("name")
    with warnings.catch_warnings():  # group=True is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS.create(name, grid=grid, **params)
