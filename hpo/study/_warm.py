"""Warm starts: known configurations tried first, and finished trials of another study imported.

Both happen once per study, whatever the number of workers and runs that join it:

- ``study.enqueue`` entries are enqueued (``study.enqueue_trial``) by the run that creates
  the study; their parameters are recorded in the study (``StudyRecord.enqueued``), so a later
  run enqueues only entries its study file added since. Enqueued trials are ordinary trials.
- ``hpo run --warm-start OTHER`` copies OTHER's finished trials that fit this study's space
  (``study.add_trials``), each marked with where it came from (``TrialRecord.imported``), and
  records the source (``StudyRecord.warm_starts``) so a second run with the same flag skips.

The record is written before the trials, so a run that starts while another is writing sees
it; two runs that both start before either wrote it (the same instant, a few milliseconds
apart) both enqueue or import: the residual race, with duplicates as its only harm (an
enqueued configuration tried twice, imported trials counted twice by the sampler).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import ConfigError, StorageError
from hpo.space import MISSING, Space
from hpo.study._record import (
    ImportedFrom,
    WarmStartSource,
    imported_trial,
    is_discarded,
    read_study_record,
    read_trial_record,
    record_enqueued,
    record_warm_start,
)
from hpo.study._spec import StudySpec
from hpo.study._storage import load_study, mask_url, normalize_url

__all__ = [
    "Rejected",
    "WarmStart",
    "WarmStartPlan",
    "apply_warm_start",
    "enqueue_configs",
    "plan_warm_start",
]


def _key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


def enqueue_configs(study: optuna.Study, spec: StudySpec) -> list[dict[str, Any]]:
    """Enqueue the study file's ``study.enqueue`` entries the study has not enqueued yet.

    Returns:
        The Optuna parameters of each entry enqueued now (none when all were before).
    """
    entries = spec.enqueue_params()
    if not entries:
        return []
    done = read_study_record(study).enqueued
    seen = {_key(e) for e in done}
    new = []
    for entry in entries:
        if _key(entry) not in seen:
            seen.add(_key(entry))
            new.append(entry)
    if new:
        record_enqueued(study, [*done, *new])  # first: a run starting now sees it
        for params in new:
            study.enqueue_trial(params)
    return new


@dataclass(frozen=True)
class Rejected:
    """Trials of the source study left out for one reason (``param x not searched here``)."""

    reason: str
    trials: tuple[int, ...]

    def describe(self) -> str:
        """``2 train.lr outside float [0.001, 0.1] (trials 3, 9)``."""
        which = "trial" if len(self.trials) == 1 else "trials"
        numbers = ", ".join(str(n) for n in self.trials)
        return f"{len(self.trials)} {self.reason} ({which} {numbers})"


@dataclass(frozen=True)
class WarmStartPlan:
    """What a warm start will import, checked before anything is written."""

    source: WarmStartSource
    trials: tuple[FrozenTrial, ...]
    rejected: tuple[Rejected, ...]

    def preview(self) -> WarmStart:
        """What applying the plan to a study that never imported the source would report."""
        return WarmStart(
            study=self.source.study,
            storage=self.source.storage,
            imported=len(self.trials),
            rejected=self.rejected,
            planned=True,
        )


@dataclass(frozen=True)
class WarmStart:
    """What a warm start did.

    Attributes:
        study: The source study's name.
        storage: Its storage, password masked.
        imported: Trials added to this study (0 when ``already``).
        rejected: The source's finished trials that did not fit, by reason.
        already: The source was imported before (by an earlier run or another worker):
            nothing was added.
        planned: Only planned (a dry run): ``imported`` is what a run would import.
    """

    study: str
    storage: str
    imported: int
    rejected: tuple[Rejected, ...] = ()
    already: bool = False
    planned: bool = False

    @property
    def rejected_count(self) -> int:
        return sum(len(r.trials) for r in self.rejected)

    def describe(self) -> str:
        """One line: ``warm start from study a (sqlite:///a.db): 12 imported, 3 rejected: ...``."""
        head = f"warm start from study {self.study} ({self.storage})"
        if self.already:
            return f"{head}: already imported into this study; skipped"
        verb = "would be imported" if self.planned else "imported"
        text = f"{head}: {self.imported} {verb}"
        if self.rejected:
            reasons = ", ".join(r.describe() for r in self.rejected)
            text += f", {self.rejected_count} rejected: {reasons}"
        return text


def _config_value(config: Mapping[str, Any] | None, name: str) -> Any:
    """The value of Optuna parameter ``name`` in a trial's stored config (or MISSING).

    ``path[branch].key`` is the branch's parameter when the component at ``path`` is that
    branch; a component's plain ``path`` is its name.
    """
    if config is None:
        return MISSING
    path, _, rest = name.partition("[")
    value: Any = config
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    if rest:
        branch, _, key = rest.partition("].")
        if not isinstance(value, Mapping) or value.get("name") != branch or key not in value:
            return MISSING
        return value[key]
    if isinstance(value, Mapping):
        return value.get("name", MISSING)
    return value


def _fit(
    trial: FrozenTrial, space: Space, fixed: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """This space's parameters and distributions for ``trial``, or why it does not fit.

    A parameter this space searches that the trial did not is read from the trial's stored
    config (it was a fixed setting there); a parameter the trial searched that this space
    does not fits only where its value is this study's fixed one.
    """
    config = read_trial_record(trial).config
    replayed = space.replay(trial.params, fallback=lambda name: _config_value(config, name))
    if replayed.outside:
        misfit = replayed.outside[0]
        verb = "not in" if misfit.accepted.startswith("choice") else "outside"
        return f"{misfit.name} {verb} {misfit.accepted}"
    for name in replayed.extra:
        if "[" in name or _config_value(fixed, name) != trial.params[name]:
            return f"param {name} not searched here"
    if replayed.missing:
        return f"param {replayed.missing[0]} missing (not searched there, no stored config)"
    return replayed.params, replayed.distributions


def plan_warm_start(
    source: str,
    source_url: str,
    *,
    spec: StudySpec,
    space: Space,
    this_url: str,
) -> WarmStartPlan:
    """Check the source study and work out which of its finished trials fit ``space``.

    Reads the source only; nothing is written.

    Args:
        source: The source study's name (``--warm-start``).
        source_url: Its storage URL (``--warm-start-storage``, else this study's resolution).
        spec: This study's file.
        space: This study's search space.
        this_url: This study's storage URL.

    Raises:
        ConfigError: the source is this study, or its direction differs.
        StorageError: the source study does not exist (names the studies in that storage).
    """
    flag = f"--warm-start {source}"
    if source == spec.name and normalize_url(source_url) == normalize_url(this_url):
        raise ConfigError(f"{flag}: that is this study; name an earlier study to import from")
    try:
        other = load_study(source, source_url)
    except StorageError as exc:
        raise StorageError(f"{flag}: {exc}") from None
    if len(other.directions) != 1:
        raise ConfigError(f"{flag}: it has {len(other.directions)} objectives; this study has 1")
    theirs = other.direction.name.lower()
    if theirs != spec.study.direction:
        raise ConfigError(
            f"{flag}: it was run to {theirs} its value, this study to {spec.study.direction} "
            "it; its values cannot inform this study"
        )
    masked = mask_url(source_url)
    fixed = spec.base_config().to_dict()
    trials: list[FrozenTrial] = []
    rejected: dict[str, list[int]] = {}
    finished = other.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    for trial in finished:
        if is_discarded(trial):
            continue
        came = read_trial_record(trial).imported
        if came is not None:
            rejected.setdefault(f"imported into {source} from study {came.study}", []).append(
                trial.number
            )
            continue
        fit = _fit(trial, space, fixed)
        if isinstance(fit, str):
            rejected.setdefault(fit, []).append(trial.number)
            continue
        params, distributions = fit
        origin = ImportedFrom(study=source, storage=masked, trial=trial.number)
        trials.append(
            imported_trial(trial, source=origin, params=params, distributions=distributions)
        )
    return WarmStartPlan(
        source=WarmStartSource(study=source, storage=masked),
        trials=tuple(trials),
        rejected=tuple(Rejected(reason, tuple(numbers)) for reason, numbers in rejected.items()),
    )


def apply_warm_start(study: optuna.Study, plan: WarmStartPlan) -> WarmStart:
    """Add the planned trials to ``study``, unless its source was imported before."""
    sources = read_study_record(study).warm_starts
    result = WarmStart(
        study=plan.source.study,
        storage=plan.source.storage,
        imported=len(plan.trials),
        rejected=plan.rejected,
    )
    if any(s.same_source(plan.source) for s in sources):
        return replace(result, imported=0, rejected=(), already=True)
    # The record first: a run that starts while the trials are written skips.
    record_warm_start(study, [*sources, replace(plan.source, imported=len(plan.trials))])
    study.add_trials(list(plan.trials))
    return result
