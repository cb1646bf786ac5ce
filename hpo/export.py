"""Export a study's best (or chosen) trial as the training config ``hpo train`` reads.

The exported file is the trial's own ``TrainConfig`` (stored by the objective in the trial's
record, ``TrialRecord.config``) plus a ``provenance`` section saying where it came from, and the
study's experiment trackers (``trackers``) so ``hpo train`` logs to them too. It
holds nothing that changes between exports (no timestamps of the export itself), so exporting
the same trial twice gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo import __version__
from hpo.config import TrackerSpec, TrainConfig, train_config_from_dict
from hpo.exceptions import StorageError
from hpo.files import make_dir
from hpo.study import (
    CONFIG_ATTR,
    best_trial,
    counts_text,
    load_study,
    mask_url,
    read_study_record,
    read_trial_record,
    top_trials,
)

__all__ = [
    "Exported",
    "default_export_path",
    "export_top",
    "export_trial",
    "exported_config",
    "select_top",
    "select_trial",
    "write_top",
]


@dataclass(frozen=True)
class Exported:
    """An exported trial: its config (with provenance) and the trial it came from."""

    config: TrainConfig
    study_name: str
    trial_number: int
    value: float


def select_trial(study: optuna.Study, trial_number: int | None = None) -> FrozenTrial:
    """The trial to export: ``trial_number`` if given, else the best complete trial.

    Ties on the value go to the lowest trial number, so the choice does not depend on the order
    in which the storage returns trials. Bookkeeping trials (``hpo.study.is_discarded``) and
    trials a warm start imported (``hpo.study.is_imported``) are never chosen.

    Raises:
        StorageError: the study is multi-objective, has no complete trial trained here, or the
            named trial does not exist, is not complete, was discarded or was imported.
    """
    if len(study.directions) != 1:
        raise StorageError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; "
            "export supports single-objective studies"
        )
    if trial_number is not None:
        trials = study.get_trials(deepcopy=False)
        if not 0 <= trial_number < len(trials):
            last = f"0..{len(trials) - 1}" if trials else "none"
            raise StorageError(
                f"study {study.study_name!r} has no trial {trial_number} (trial numbers: {last})"
            )
        trial = trials[trial_number]
        record = read_trial_record(trial)
        if record.discarded is not None:
            raise StorageError(
                f"trial {trial_number} of study {study.study_name!r} was discarded "
                f"({record.discarded}); it has no result to export"
            )
        if record.imported is not None:
            came = record.imported
            raise StorageError(
                f"trial {trial_number} of study {study.study_name!r} was imported from study "
                f"{came.study!r} (its trial {came.trial}) by a warm start, not trained here; "
                f"export it from there: hpo export --study {came.study} --trial {came.trial}"
            )
        if trial.state != TrialState.COMPLETE:
            reason = record.fail_reason
            why = f": {reason}" if trial.state == TrialState.FAIL and reason else ""
            raise StorageError(
                f"trial {trial_number} of study {study.study_name!r} is {trial.state.name}, "
                f"not COMPLETE{why}; only complete trials can be exported"
            )
        return trial
    best = best_trial(study)
    if best is None:
        raise StorageError(
            f"study {study.study_name!r} has no complete trial to export ({counts_text(study)})"
        )
    return best


def _plain(value: Any) -> Any:
    """Numbers and containers as plain Python types (YAML-safe, stable output)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def exported_config(
    study: optuna.Study,
    trial: FrozenTrial,
    storage_url: str,
    *,
    trackers: Sequence[TrackerSpec] = (),
) -> TrainConfig:
    """The trial's TrainConfig with a ``provenance`` section (and ``trackers``, if any).

    Provenance keys: ``study``, ``trial``, ``value``, ``direction``, ``fold_scores``,
    ``per_class_f1``, ``params`` (sorted by name), ``completed`` (the trial's completion time),
    ``data_fingerprint`` and ``storage`` (password masked), ``hpo_version``. Values the study
    does not hold (an older study without a data fingerprint) are null.

    Raises:
        StorageError: the trial has no stored config (it was not run by ``hpo run``).
        ConfigError: the stored config is no longer valid (e.g. a model was renamed).
    """
    record = read_trial_record(trial)
    raw = record.config
    if raw is None:
        raise StorageError(
            f"trial {trial.number} of study {study.study_name!r} has no stored training config "
            f"(user attr {CONFIG_ATTR!r}); only trials run by `hpo run` can be exported"
        )
    source = f"study {study.study_name!r} trial {trial.number}"
    base = train_config_from_dict({k: v for k, v in raw.items() if k != "provenance"}, source)
    fold_scores = record.fold_scores
    per_class = record.scores.per_class_f1 if record.scores is not None else None
    completed = trial.datetime_complete.isoformat() if trial.datetime_complete else None
    provenance: dict[str, Any] = {
        "study": study.study_name,
        "trial": trial.number,
        "value": float(trial.value) if trial.value is not None else None,
        "direction": study.direction.name.lower(),
        "fold_scores": _plain(fold_scores) if fold_scores is not None else None,
        "per_class_f1": _plain(per_class) if per_class is not None else None,
        "params": {k: _plain(trial.params[k]) for k in sorted(trial.params)},
        "completed": completed,
        "data_fingerprint": read_study_record(study).data_fingerprint,
        "storage": mask_url(storage_url),
        "hpo_version": __version__,
    }
    return base.model_copy(update={"provenance": provenance, "trackers": tuple(trackers) or None})


def export_trial(
    study_name: str,
    storage_url: str,
    *,
    trial_number: int | None = None,
    trackers: Sequence[TrackerSpec] = (),
) -> Exported:
    """Load the study and build the export of its best (or the given) trial.

    Args:
        study_name: Name of the Optuna study.
        storage_url: Its storage (see ``hpo.study.storage_for``).
        trial_number: Export this trial instead of the best one.
        trackers: The study's trackers (``hpo.study.trackers_for``), copied into the export.

    Raises:
        StorageError: no such study, no complete trial, or the trial cannot be exported.
    """
    study = load_study(study_name, storage_url)
    trial = select_trial(study, trial_number)
    config = exported_config(study, trial, storage_url, trackers=trackers)
    return Exported(
        config=config,
        study_name=study_name,
        trial_number=trial.number,
        value=float(trial.value) if trial.value is not None else float("nan"),
    )


def default_export_path(study_name: str, trial_number: int) -> Path:
    """``<study>-trial<N>.yaml`` in the current directory."""
    return Path(f"{study_name}-trial{trial_number}.yaml")


def select_top(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The ``k`` best complete trials with distinct parameters, best first.

    A trial whose sampled parameters equal a better one's (a retried or re-enqueued trial) is
    skipped: retraining it would add the same configuration twice. Ties on the value go to the
    lowest trial number; discarded and imported trials are never chosen.

    Raises:
        StorageError: the study is multi-objective or has no complete trial.
    """
    if len(study.directions) != 1:
        raise StorageError(
            f"study {study.study_name!r} has {len(study.directions)} objectives; "
            "export supports single-objective studies"
        )
    chosen: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in top_trials(study):
        key = repr(sorted((name, _plain(value)) for name, value in trial.params.items()))
        if key in seen:
            continue
        seen.add(key)
        chosen.append(trial)
        if len(chosen) == k:
            break
    if not chosen:
        raise StorageError(
            f"study {study.study_name!r} has no complete trial to export ({counts_text(study)})"
        )
    return chosen


def export_top(
    study_name: str, storage_url: str, k: int, *, trackers: Sequence[TrackerSpec] = ()
) -> list[Exported]:
    """The exports of the ``k`` best distinct trials (fewer when the study has fewer), each
    with the study's ``trackers``.

    Raises:
        StorageError: no such study, no complete trial, or a trial cannot be exported.
    """
    study = load_study(study_name, storage_url)
    return [
        Exported(
            config=exported_config(study, trial, storage_url, trackers=trackers),
            study_name=study_name,
            trial_number=trial.number,
            value=float(trial.value) if trial.value is not None else float("nan"),
        )
        for trial in select_top(study, k)
    ]


def write_top(exports: list[Exported], out_dir: Path) -> list[Path]:
    """Write each export as ``out_dir/<study>-trial<N>.yaml`` (each atomically: beside its name,
    then renamed into place); returns the paths, best first."""
    out_dir = make_dir(out_dir)
    paths = []
    for exported in exports:
        path = out_dir / default_export_path(exported.study_name, exported.trial_number).name
        exported.config.save(path)  # atomically: a failed write leaves nothing
        paths.append(path)
    return paths
