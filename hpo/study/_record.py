"""What hpo stores on a trial and on a study: the attribute names, their types and encoding.

Everything hpo keeps in Optuna's user attributes is written and read here, and only here:
the objective writes a trial's record through the ``record_*`` functions, and every reader
(export, report, notes, artifacts, the CLI, the worker loop) gets typed values from
:func:`read_trial_record` and :func:`read_study_record`. The attribute keys and their JSON
shapes are those of every study written so far, so older studies read as new ones; a value of
an unexpected shape reads as missing (None) rather than failing a report.

A trial's attributes (``TrialRecord`` field: key, JSON shape):

- ``config``: ``config``, the trial's ``TrainConfig.to_dict()`` (what ``hpo export`` writes).
- ``worker``: ``worker``, ``{"host", "pid", "device"}`` of the process that ran it, written
  when the trial starts (a supervisor finds a dead worker's trials by it).
- ``fail_reason``: ``fail_reason``, one line saying why the trial failed.
- ``discarded``: ``hpo:discarded``, why a worker gave the trial up before it ran (another
  worker took the study's last slot); such a trial is bookkeeping, not a result.
- ``fold_scores``: ``fold_scores``, validation macro-F1 of each fold finished.
- ``epochs_trained``: ``epochs_trained``, epochs run over all folds.
- ``history``: ``history``, per fold run, each epoch's ``EpochResult.to_dict()``.
- ``seconds``: ``seconds``, wall time of the trial (2 decimals); ``device``: ``device``.
- ``pruned_at_step``: ``pruned_at_step``, the pruner step the trial was pruned at.
- ``pruned_at_fold``: ``pruned_at_fold``, the fold after which a per-fold pruner stopped it.
- ``cut_fold``: ``cut_fold``, ``{"fold", "epoch", "epochs"}`` of a fold pruned inside; the
  scores below then include that fold as it stood at that epoch.
- ``imported`` (:class:`ImportedFrom`): ``hpo:imported``, ``{"study", "storage", "trial"}``
  of a trial a warm start copied from another study (``hpo run --warm-start``): it was not
  trained here, counts toward no ``--n-trials`` and is never a study's best.
- ``scores`` (:class:`ValidationScores`): ``per_class_f1`` (4 decimals), ``confusion`` (summed
  over the folds), and ``f1_mask``, ``f1_gender``, ``f1_age``, ``accuracy`` (means over the
  folds, 4 decimals; the factor F1s only for the competition's labels).

A study's attributes (``StudyRecord``): ``hpo:spec`` (the comparable part of the study file),
``hpo:data_fingerprint``, ``hpo:class_names``, ``hpo:enqueued`` (the Optuna parameters of
every ``study.enqueue`` entry enqueued so far, a list of mappings), ``hpo:warm_starts``
(the studies imported so far: ``[{"study", "storage", "imported"}]``, storage masked) and
``hpo:tracker_parents`` (a tracker's run that the study's trial runs nest under, by tracker
key: ``{"mlflow|URI|EXPERIMENT_ID": RUN_ID}``).

Optuna has no call that writes several attributes at once, so every attribute is one storage
round trip: the objective writes a trial's results once, when it ends, not after every fold.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

if TYPE_CHECKING:
    from hpo.config import TrainConfig

__all__ = [
    "CLASS_NAMES_ATTR",
    "CONFIG_ATTR",
    "CUT_FOLD_ATTR",
    "DATA_FINGERPRINT_ATTR",
    "DISCARDED_ATTR",
    "FAIL_REASON_ATTR",
    "IMPORTED_ATTR",
    "METRIC_KEYS",
    "SPEC_ATTR",
    "TRACKER_PARENTS_ATTR",
    "WORKER_ATTR",
    "CutFold",
    "ImportedFrom",
    "StudyRecord",
    "TrialRecord",
    "ValidationScores",
    "WarmStartSource",
    "WorkerInfo",
    "imported_trial",
    "is_discarded",
    "is_imported",
    "read_study_record",
    "read_trial_record",
    "record_class_names",
    "record_config",
    "record_discarded",
    "record_enqueued",
    "record_fail_reason",
    "record_fail_reason_by_id",
    "record_result",
    "record_study_spec",
    "record_tracker_parent",
    "record_warm_start",
    "record_worker",
]

# A trial's user attributes.
CONFIG_ATTR = "config"
WORKER_ATTR = "worker"
FAIL_REASON_ATTR = "fail_reason"
DISCARDED_ATTR = "hpo:discarded"
FOLD_SCORES_ATTR = "fold_scores"
EPOCHS_TRAINED_ATTR = "epochs_trained"
HISTORY_ATTR = "history"
SECONDS_ATTR = "seconds"
DEVICE_ATTR = "device"
PRUNED_AT_STEP_ATTR = "pruned_at_step"
PRUNED_AT_FOLD_ATTR = "pruned_at_fold"
CUT_FOLD_ATTR = "cut_fold"
IMPORTED_ATTR = "hpo:imported"
PER_CLASS_F1_ATTR = "per_class_f1"
CONFUSION_ATTR = "confusion"
METRIC_KEYS = ("f1_mask", "f1_gender", "f1_age", "accuracy")
"""Fold-mean metrics, each stored under its own name (``hpo.train``'s ``MEAN_METRICS``)."""

# A study's user attributes.
SPEC_ATTR = "hpo:spec"
DATA_FINGERPRINT_ATTR = "hpo:data_fingerprint"
CLASS_NAMES_ATTR = "hpo:class_names"
ENQUEUED_ATTR = "hpo:enqueued"
WARM_STARTS_ATTR = "hpo:warm_starts"
TRACKER_PARENTS_ATTR = "hpo:tracker_parents"

_FACTORS = (("mask", "f1_mask"), ("gender", "f1_gender"), ("age", "f1_age"))


# ---------------------------------------------------------------------------------------------
# Decoding helpers: a value of another shape reads as missing.


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _floats(value: Any) -> tuple[float, ...] | None:
    if not isinstance(value, list | tuple):
        return None
    return tuple(float(v) for v in value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------
# Typed values.


@dataclass(frozen=True)
class WorkerInfo:
    """The process that ran a trial: host name, process id and device (``cuda:0``).

    Fields of an old or foreign record that lack a value are None.
    """

    host: str | None
    pid: int | None
    device: str | None

    @classmethod
    def this_process(cls, device: str) -> WorkerInfo:
        """This process on this host, training on ``device``."""
        return cls(host=socket.gethostname(), pid=os.getpid(), device=device)

    def to_json(self) -> dict[str, Any]:
        """``{"host", "pid", "device"}``, as stored."""
        return {"host": self.host, "pid": self.pid, "device": self.device}

    @classmethod
    def from_json(cls, value: Any) -> WorkerInfo | None:
        """The stored form back; None for anything but a mapping."""
        if not isinstance(value, Mapping):
            return None
        return cls(
            host=_str(value.get("host")),
            pid=_int(value.get("pid")),
            device=_str(value.get("device")),
        )


@dataclass(frozen=True)
class ImportedFrom:
    """Where an imported trial came from: its study, that study's storage (masked), its number."""

    study: str
    storage: str
    trial: int

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "storage": self.storage, "trial": self.trial}

    @classmethod
    def from_json(cls, value: Any) -> ImportedFrom | None:
        if not isinstance(value, Mapping):
            return None
        trial = _int(value.get("trial"))
        study = _str(value.get("study"))
        if study is None or trial is None:
            return None
        return cls(study=study, storage=_str(value.get("storage")) or "?", trial=trial)


@dataclass(frozen=True)
class WarmStartSource:
    """A study a warm start imported: its name, its storage (masked), how many trials came."""

    study: str
    storage: str
    imported: int = 0

    def same_source(self, other: WarmStartSource) -> bool:
        return (self.study, self.storage) == (other.study, other.storage)

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "storage": self.storage, "imported": self.imported}

    @classmethod
    def from_json(cls, value: Any) -> WarmStartSource | None:
        if not isinstance(value, Mapping) or _str(value.get("study")) is None:
            return None
        return cls(
            study=str(value["study"]),
            storage=_str(value.get("storage")) or "?",
            imported=_int(value.get("imported")) or 0,
        )


@dataclass(frozen=True)
class CutFold:
    """A fold pruned inside: it stopped after ``epoch`` of ``epochs`` (epochs count from 1)."""

    fold: int
    epoch: int
    epochs: int

    def to_json(self) -> dict[str, int]:
        return {"fold": self.fold, "epoch": self.epoch, "epochs": self.epochs}

    @classmethod
    def from_json(cls, value: Any) -> CutFold | None:
        if not isinstance(value, Mapping):
            return None
        fold, epoch, epochs = (_int(value.get(k)) for k in ("fold", "epoch", "epochs"))
        if fold is None or epoch is None or epochs is None:
            return None
        return cls(fold=fold, epoch=epoch, epochs=epochs)


@dataclass(frozen=True)
class ValidationScores:
    """Validation scores of the folds a trial trained (and of a fold cut short, if any).

    Attributes:
        per_class_f1: F1 per class (index = class id), averaged over the folds.
        confusion: Confusion matrix summed over the folds (rows: true class); None without.
        f1_mask: Mean macro-F1 over the mask factor (the competition's labels only).
        f1_gender: Same for gender.
        f1_age: Same for age.
        accuracy: Mean accuracy.
    """

    per_class_f1: tuple[float, ...] = ()
    confusion: tuple[tuple[int, ...], ...] | None = None
    f1_mask: float | None = None
    f1_gender: float | None = None
    f1_age: float | None = None
    accuracy: float | None = None

    @property
    def factor_f1(self) -> dict[str, float]:
        """``{"mask": F1, "gender": F1, "age": F1}``, those present, in that order."""
        out = {}
        for label, key in _FACTORS:
            value = getattr(self, key)
            if value is not None:
                out[label] = value
        return out

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes that store these scores."""
        attrs: dict[str, Any] = {
            PER_CLASS_F1_ATTR: [round(float(v), 4) for v in self.per_class_f1]
        }
        if self.confusion is not None:
            attrs[CONFUSION_ATTR] = [[int(v) for v in row] for row in self.confusion]
        for key in METRIC_KEYS:
            value = getattr(self, key)
            if value is not None:
                attrs[key] = round(float(value), 4)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> ValidationScores | None:
        """The scores of a trial's attributes; None when it stored none."""
        if PER_CLASS_F1_ATTR not in attrs and not any(k in attrs for k in METRIC_KEYS):
            return None
        confusion = attrs.get(CONFUSION_ATTR)
        matrix = None
        if isinstance(confusion, list | tuple) and all(
            isinstance(r, list | tuple) for r in confusion
        ):
            matrix = tuple(tuple(int(v) for v in row) for row in confusion)
        return cls(
            per_class_f1=_floats(attrs.get(PER_CLASS_F1_ATTR)) or (),
            confusion=matrix,
            f1_mask=_float(attrs.get("f1_mask")),
            f1_gender=_float(attrs.get("f1_gender")),
            f1_age=_float(attrs.get("f1_age")),
            accuracy=_float(attrs.get("accuracy")),
        )


@dataclass(frozen=True)
class TrialRecord:
    """Everything hpo stored on one trial; a field is None (or empty) where nothing is stored.

    Attributes:
        config: The trial's training config as stored (``TrainConfig.to_dict()``); validate it
            with ``hpo.config.train_config_from_dict``.
        worker: The process that ran the trial.
        fail_reason: Why the trial failed.
        discarded: Why a worker gave the trial up before running it (see ``is_discarded``).
        fold_scores: Validation macro-F1 of each fold finished.
        epochs_trained: Epochs run over all folds.
        history: Per fold run, each epoch's ``EpochResult.to_dict()`` (``epoch``,
            ``train_loss``, ``macro_f1``, ``accuracy``, ``lr``, ...).
        seconds: Wall time of the trial.
        device: Where it trained.
        pruned_at_step: The pruner step it was pruned at.
        pruned_at_fold: The fold after which a per-fold pruner stopped it.
        cut_fold: The fold it was pruned inside, and at which epoch.
        scores: Per-class F1, confusion matrix, factor F1s and accuracy.
        imported: Where a warm start copied the trial from (None: trained here).
    """

    config: dict[str, Any] | None = None
    worker: WorkerInfo | None = None
    fail_reason: str | None = None
    discarded: str | None = None
    fold_scores: tuple[float, ...] | None = None
    epochs_trained: int | None = None
    history: list[list[dict[str, Any]]] | None = None
    seconds: float | None = None
    device: str | None = None
    pruned_at_step: int | None = None
    pruned_at_fold: int | None = None
    cut_fold: CutFold | None = None
    scores: ValidationScores | None = None
    imported: ImportedFrom | None = None

    @property
    def seed(self) -> int | None:
        """The trial's training seed (``train.seed`` of its config)."""
        train = (self.config or {}).get("train")
        return _int(train.get("seed")) if isinstance(train, Mapping) else None

    @property
    def last_macro_f1(self) -> float | None:
        """The last validation macro-F1 in the history (where a pruned trial stopped)."""
        scores = [e.get("macro_f1") for fold in self.history or [] for e in fold]
        return _float(scores[-1]) if scores else None

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes that store this record (for ``optuna.trial.create_trial``)."""
        attrs: dict[str, Any] = {}
        if self.config is not None:
            attrs[CONFIG_ATTR] = dict(self.config)
        if self.worker is not None:
            attrs[WORKER_ATTR] = self.worker.to_json()
        if self.fail_reason is not None:
            attrs[FAIL_REASON_ATTR] = self.fail_reason
        if self.discarded is not None:
            attrs[DISCARDED_ATTR] = self.discarded
        if self.fold_scores is not None:
            attrs[FOLD_SCORES_ATTR] = [float(v) for v in self.fold_scores]
        if self.epochs_trained is not None:
            attrs[EPOCHS_TRAINED_ATTR] = self.epochs_trained
        if self.history is not None:
            attrs[HISTORY_ATTR] = self.history
        if self.seconds is not None:
            attrs[SECONDS_ATTR] = round(self.seconds, 2)
        if self.device is not None:
            attrs[DEVICE_ATTR] = self.device
        if self.pruned_at_step is not None:
            attrs[PRUNED_AT_STEP_ATTR] = self.pruned_at_step
        if self.pruned_at_fold is not None:
            attrs[PRUNED_AT_FOLD_ATTR] = self.pruned_at_fold
        if self.cut_fold is not None:
            attrs[CUT_FOLD_ATTR] = self.cut_fold.to_json()
        if self.scores is not None:
            attrs.update(self.scores.to_attrs())
        if self.imported is not None:
            attrs[IMPORTED_ATTR] = self.imported.to_json()
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record of a trial's user attributes (old studies' included)."""
        config = attrs.get(CONFIG_ATTR)
        history = attrs.get(HISTORY_ATTR)
        discarded = attrs.get(DISCARDED_ATTR)
        return cls(
            config=dict(config) if isinstance(config, Mapping) else None,
            worker=WorkerInfo.from_json(attrs.get(WORKER_ATTR)),
            fail_reason=_str(attrs.get(FAIL_REASON_ATTR)),
            discarded=None if DISCARDED_ATTR not in attrs else str(discarded),
            fold_scores=_floats(attrs.get(FOLD_SCORES_ATTR)),
            epochs_trained=_int(attrs.get(EPOCHS_TRAINED_ATTR)),
            history=list(history) if isinstance(history, list) else None,
            seconds=_float(attrs.get(SECONDS_ATTR)),
            device=_str(attrs.get(DEVICE_ATTR)),
            pruned_at_step=_int(attrs.get(PRUNED_AT_STEP_ATTR)),
            pruned_at_fold=_int(attrs.get(PRUNED_AT_FOLD_ATTR)),
            cut_fold=CutFold.from_json(attrs.get(CUT_FOLD_ATTR)),
            scores=ValidationScores.from_attrs(attrs),
            imported=ImportedFrom.from_json(attrs.get(IMPORTED_ATTR)),
        )


@dataclass(frozen=True)
class StudyRecord:
    """What hpo stored on a study; None where nothing is stored.

    Attributes:
        spec: The comparable part of the study file its first worker used
            (``hpo.study.comparable_spec``).
        data_fingerprint: Fingerprint of that worker's data.
        class_names: Class names, index = class id (reports name classes by them).
        enqueued: The Optuna parameters of each ``study.enqueue`` entry enqueued so far.
        warm_starts: The studies imported so far (``hpo run --warm-start``).
        tracker_parents: Tracker key -> id of the run the study's trial runs nest under (an
            MLflow parent run); empty when none.
    """

    spec: dict[str, Any] | None = None
    data_fingerprint: str | None = None
    class_names: tuple[str, ...] | None = None
    enqueued: tuple[dict[str, Any], ...] = ()
    warm_starts: tuple[WarmStartSource, ...] = ()
    tracker_parents: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> StudyRecord:
        spec = attrs.get(SPEC_ATTR)
        names = attrs.get(CLASS_NAMES_ATTR)
        enqueued = attrs.get(ENQUEUED_ATTR)
        sources = attrs.get(WARM_STARTS_ATTR)
        warm = [WarmStartSource.from_json(v) for v in sources or () if isinstance(sources, list)]
        parents = attrs.get(TRACKER_PARENTS_ATTR)
        return cls(
            spec=dict(spec) if isinstance(spec, Mapping) else None,
            data_fingerprint=_str(attrs.get(DATA_FINGERPRINT_ATTR)),
            class_names=tuple(str(v) for v in names) if isinstance(names, list) else None,
            enqueued=tuple(
                dict(v)
                for v in enqueued or ()
                if isinstance(enqueued, list) and isinstance(v, Mapping)
            ),
            warm_starts=tuple(w for w in warm if w is not None),
            tracker_parents=(
                {str(k): str(v) for k, v in parents.items()}
                if isinstance(parents, Mapping)
                else {}
            ),
        )


# ---------------------------------------------------------------------------------------------
# Reading.


def read_trial_record(trial: FrozenTrial | optuna.Trial) -> TrialRecord:
    """The record of a finished trial, or of a running one (read from its local copy)."""
    return TrialRecord.from_attrs(trial.user_attrs)


def is_discarded(trial: FrozenTrial) -> bool:
    """Whether a worker gave ``trial`` up before running it (bookkeeping, not a result)."""
    return DISCARDED_ATTR in trial.user_attrs


def is_imported(trial: FrozenTrial) -> bool:
    """Whether a warm start copied ``trial`` from another study (it was not trained here)."""
    return IMPORTED_ATTR in trial.user_attrs


def imported_trial(
    trial: FrozenTrial,
    *,
    source: ImportedFrom,
    params: Mapping[str, Any],
    distributions: Mapping[str, Any],
) -> FrozenTrial:
    """A copy of another study's finished ``trial`` to add to this one (``study.add_trials``).

    It keeps the value, intermediate values, times and hpo's record of the trial (its
    config, fold scores, history), takes ``params`` with ``distributions`` of this study's
    space, and is marked as imported from ``source``; Optuna's system attributes stay behind.
    """
    attrs = {k: v for k, v in trial.user_attrs.items() if k != DISCARDED_ATTR}
    attrs[IMPORTED_ATTR] = source.to_json()
    return FrozenTrial(
        number=0,  # the storage numbers it
        trial_id=0,
        state=trial.state,
        value=trial.value,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=dict(params),
        distributions=dict(distributions),
        user_attrs=attrs,
        system_attrs={},
        intermediate_values=dict(trial.intermediate_values),
    )


def read_study_record(study: optuna.Study) -> StudyRecord:
    """What hpo stored on ``study`` (one read of the storage)."""
    return StudyRecord.from_attrs(study.user_attrs)


# ---------------------------------------------------------------------------------------------
# Writing.


def _write(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def record_worker(trial: optuna.Trial, worker: WorkerInfo) -> None:
    """Record which process runs ``trial`` (when it starts)."""
    _write(trial, {WORKER_ATTR: worker.to_json()})


def record_config(trial: optuna.Trial, config: TrainConfig) -> None:
    """Record the training config ``trial`` trains."""
    _write(trial, {CONFIG_ATTR: config.to_dict()})


def record_fail_reason(trial: optuna.Trial, reason: str) -> None:
    """Record why ``trial`` failed (one line)."""
    _write(trial, {FAIL_REASON_ATTR: reason})


def record_fail_reason_by_id(storage: BaseStorage, trial_id: int, reason: str) -> None:
    """Record why a trial that another process ran failed (a supervisor failing the trials of
    a worker that died), by its storage id."""
    storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, reason)


def record_discarded(trial: optuna.Trial, reason: str) -> None:
    """Mark ``trial`` as given up before it ran, and why."""
    _write(trial, {DISCARDED_ATTR: reason})


def record_result(
    trial: optuna.Trial,
    *,
    fold_scores: Sequence[float],
    epochs_trained: int,
    history: list[list[dict[str, Any]]],
    seconds: float,
    device: str,
    pruned_at_step: int | None = None,
    pruned_at_fold: int | None = None,
    cut_fold: CutFold | None = None,
    scores: ValidationScores | None = None,
) -> None:
    """Record what ``trial`` trained and scored, when it ends (complete, pruned or failed).

    Args:
        trial: The running trial.
        fold_scores: Validation macro-F1 of each fold finished.
        epochs_trained: Epochs run over all folds.
        history: Per fold run, each epoch's ``EpochResult.to_dict()``.
        seconds: Wall time (stored to 2 decimals).
        device: Where it trained.
        pruned_at_step: The pruner step it was pruned at, if pruned.
        pruned_at_fold: The fold after which a per-fold pruner stopped it, if so.
        cut_fold: The fold it was pruned inside, if any.
        scores: Validation scores of the folds trained (none if no fold got that far).
    """
    record = TrialRecord(
        fold_scores=tuple(fold_scores),
        epochs_trained=epochs_trained,
        history=history,
        seconds=seconds,
        device=device,
        pruned_at_step=pruned_at_step,
        pruned_at_fold=pruned_at_fold,
        cut_fold=cut_fold,
        scores=scores,
    )
    _write(trial, record.to_attrs())


def record_study_spec(study: optuna.Study, spec: Mapping[str, Any], data_fingerprint: str) -> None:
    """Record the study file and data fingerprint the first worker of ``study`` used."""
    study.set_user_attr(SPEC_ATTR, dict(spec))
    study.set_user_attr(DATA_FINGERPRINT_ATTR, data_fingerprint)


def record_enqueued(study: optuna.Study, enqueued: Sequence[Mapping[str, Any]]) -> None:
    """Record the Optuna parameters of every ``study.enqueue`` entry enqueued so far."""
    study.set_user_attr(ENQUEUED_ATTR, [dict(v) for v in enqueued])


def record_warm_start(study: optuna.Study, sources: Sequence[WarmStartSource]) -> None:
    """Record every study imported into ``study`` so far."""
    study.set_user_attr(WARM_STARTS_ATTR, [s.to_json() for s in sources])


def record_class_names(study: optuna.Study, class_names: Sequence[str]) -> None:
    """Record the class names of ``study``'s data, unless it holds exactly these already."""
    names = [str(v) for v in class_names]
    if study.user_attrs.get(CLASS_NAMES_ATTR) != names:
        study.set_user_attr(CLASS_NAMES_ATTR, names)


def record_tracker_parent(study: optuna.Study, key: str, run_id: str) -> None:
    """Record ``run_id`` as the run that ``study``'s trial runs in tracker ``key`` nest under.

    The other trackers' entries are kept (read, then written: one attribute holds them all).
    """
    parents = dict(read_study_record(study).tracker_parents)
    parents[key] = run_id
    study.set_user_attr(TRACKER_PARENTS_ATTR, parents)
