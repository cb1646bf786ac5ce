"""A trial started by hand, as a worker starts one, for tests that play a worker."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import optuna
from optuna.distributions import BaseDistribution

__all__ = ["running_trial"]


def running_trial(
    study: optuna.Study, fixed_distributions: Mapping[str, BaseDistribution] | None = None
) -> optuna.Trial:
    """A RUNNING trial of ``study`` (``study.ask``), on a storage with heartbeats or without.

    Optuna warns that heartbeats belong to ``Study.optimize``, where hpo's workers run every
    trial (:func:`hpo.study.run_worker`), and hpo's test suite turns that warning into an
    error. A test that plays a worker by hand (one that dies mid-trial, a write whose
    acknowledgement is lost) starts its trial here instead: the one place the warning is
    expected, and silenced.

    Args:
        study: The study, on any storage.
        fixed_distributions: Passed to ``study.ask``.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Heartbeat of storage is supposed to be used with Study.optimize"
        )
        return study.ask(dict(fixed_distributions) if fixed_distributions is not None else None)
