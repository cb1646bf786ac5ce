"""Sampler entries, rebuilt from the study file by every worker (samplers are not stored).

A study file's ``sampler.seed`` seeds each trial, not each worker: trial N samples with a seed
derived from the study seed and N. Workers started with the same file (and a worker resuming a
study) draw new points instead of repeating the first worker's, and one worker's run stays
reproducible. (A sampler seeded once per process would give every worker the same sequence.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from hpo.components import SAMPLERS, SamplerInfo

__all__ = ["SAMPLERS", "TrialSeededSampler", "build_sampler", "trial_seed"]

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


@SAMPLERS.register("gp", info=SamplerInfo(complete_only=True))
def gp(
    grid: Grid,
    *,
    seed: int | None = None,
    n_startup_trials: int = 10,
    deterministic_objective: bool = False,
) -> optuna.samplers.BaseSampler:
    """Gaussian-process Bayesian optimisation; it learns from complete trials only (not pruned)."""
    return optuna.samplers.GPSampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        deterministic_objective=deterministic_objective,
        warn_independent_sampling=False,
    )


@SAMPLERS.register("cmaes", info=SamplerInfo(complete_only=True))
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


@SAMPLERS.register("grid", info=SamplerInfo(exhaustible=True, seed_per_trial=False))
def grid(grid: Grid, *, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Every combination of the (choice and linear int) parameters, in random order."""
    return optuna.samplers.GridSampler(dict(grid()), seed=seed)


def trial_seed(seed: int, number: int) -> int:
    """The seed trial ``number`` samples with in a study seeded with ``seed``."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """A sampler rebuilt for every trial with the seed ``trial_seed(seed, trial.number)``.

    Every registered sampler keeps what it learns in the storage (TPE, CMA-ES and grid read the
    study's trials), so rebuilding one per trial loses nothing but its random state, which is
    the point.

    Args:
        make: ``seed -> sampler``.
        seed: The study file's ``sampler.seed``.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make = make
        self._seed = seed
        self._sampler = make(trial_seed(seed, 0))

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = self._make(trial_seed(self._seed, trial.number))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()

    def is_exhausted(self, study: optuna.Study) -> bool:
        """The grid sampler's check (samplers that cannot run out never are)."""
        check = getattr(self._sampler, "is_exhausted", None)
        return bool(check(study)) if check is not None else False


def build_sampler(spec: Mapping[str, Any], grid: Grid) -> optuna.samplers.BaseSampler:
    """The sampler of a study file's ``study.sampler`` (``{name: ..., **params}``).

    With a ``seed``, each trial is seeded from it and its number (:class:`TrialSeededSampler`),
    unless the entry says otherwise (``SamplerInfo.seed_per_trial``).
    """
    params = dict(spec)
    name = params.pop("name")
    seed = params.pop("seed", None)

    def make(trial_seed: int | None) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # group=True is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SAMPLERS.create(name, grid=grid, seed=trial_seed, **params)

    if seed is None or not SAMPLERS.info(name).seed_per_trial:
        return make(seed)
    return TrialSeededSampler(make, int(seed))
