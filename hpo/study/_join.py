"""Creating and joining a study: every worker must agree on the study file and the data.

The first worker stores the comparable part of its study file and the data fingerprint in the
study's user attributes; a later worker whose file, ``--set`` flags or data differ is refused
with the first difference named.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.storages import BaseStorage, RDBStorage

from hpo.exceptions import ConfigError, DataError
from hpo.space import parse_space
from hpo.study._record import read_study_record, record_study_spec
from hpo.study._spec import StudySpec
from hpo.study._storage import mask_url

__all__ = ["METRIC_NAME", "comparable_spec", "open_study"]

METRIC_NAME = "validation macro-F1"
"""What a trial's value is, as optuna-dashboard and ``trials_dataframe`` name it."""

# Settings that may differ between workers: where the data lives on each machine, caching.
_PER_WORKER_KEYS = ("root", "cache_dir", "skip_bad_files")


def comparable_spec(spec: StudySpec) -> dict[str, Any]:
    """The parts of a study file every worker must agree on (a JSON-able mapping)."""
    data = {
        k: v
        for k, v in spec.base_config().data.model_dump(mode="json").items()
        if k not in _PER_WORKER_KEYS
    }
    return {
        "direction": spec.study.direction,
        "data": data,
        "train": spec.base_config().train.model_dump(mode="json"),
        "search_space": _jsonable(spec.search_space),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _first_difference(stored: Any, ours: Any, path: str = "") -> str | None:
    if isinstance(stored, dict) and isinstance(ours, dict):
        for key in sorted(set(stored) | set(ours)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in stored:
                return f"{sub} is new here (not in the stored study)"
            if key not in ours:
                return f"{sub} is missing here (stored: {stored[key]!r})"
            diff = _first_difference(stored[key], ours[key], sub)
            if diff:
                return diff
        return None
    if stored != ours:
        return f"{path}: stored {stored!r}, here {ours!r}"
    return None


def _check_choice_lists(study: optuna.Study, spec: StudySpec) -> None:
    """Refuse a search space whose choice lists differ from the study's trials' (Optuna cannot
    sample such a parameter: every trial of the worker would fail)."""
    source = str(spec.path) if spec.path else spec.name
    ours = parse_space(spec.search_space, base=spec.fixed_dict(), source=source)
    choices = ours.categorical_choices()
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if not isinstance(dist, CategoricalDistribution) or name not in choices:
                continue
            if tuple(dist.choices) != choices[name]:
                raise ConfigError(
                    f"study {spec.name!r}: search_space {name} offers "
                    f"{list(choices[name])!r} here but {list(dist.choices)!r} in its trials; "
                    "Optuna cannot change a choice list within a study, even with "
                    "--allow-mismatch: keep the list, or use a new study name"
                )


def open_study(
    spec: StudySpec,
    storage: BaseStorage,
    *,
    data_fingerprint: str,
    allow_mismatch: bool = False,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study or join it; a worker whose study file or data differ is refused.

    Raises:
        ConfigError: the stored search space or fixed settings differ from this worker's (with
            ``allow_mismatch``, only where a choice list differs from the trials').
        DataError: the stored data fingerprint differs from this worker's data.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        direction=spec.study.direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    ours = comparable_spec(spec)
    stored = read_study_record(study)
    if stored.spec is None:
        record_study_spec(study, ours, data_fingerprint)
        with warnings.catch_warnings():
            # Experimental since Optuna 3.2, unchanged since; the dashboard shows the name
            # instead of "Objective 0".
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC_NAME])
        return study
    if allow_mismatch:
        _check_choice_lists(study, spec)
        return study
    diff = _first_difference(stored.spec, ours)
    where = mask_url(storage.url) if isinstance(storage, RDBStorage) else "the storage"
    if diff is not None:
        raise ConfigError(
            f"study {spec.name!r} in {where} was started with a different study "
            f"file: {diff}; use the same file (and --set flags) as the other workers, a new "
            "study name, or --allow-mismatch to join anyway"
        )
    stored_fp = stored.data_fingerprint
    if stored_fp is not None and stored_fp != data_fingerprint:
        raise DataError(
            f"study {spec.name!r} was started on different data (fingerprint {stored_fp}, here "
            f"{data_fingerprint}): check data.root and the corrections file, or pass "
            "--allow-mismatch to join anyway"
        )
    return study
