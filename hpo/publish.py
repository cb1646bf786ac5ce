"""What a worker leaves for people to look at: trial artifacts, dashboard notes, trackers.

``Publisher.wrap(objective)`` runs the objective and, for every trial that ends complete or
pruned, uploads its pictures to the study's artifact store and saves its optuna-dashboard note.
Each trial is also one run in each experiment tracker of ``study.trackers`` (TensorBoard,
MLflow, W&B; ``hpo.trackers``): started at its first epoch, told every epoch as it ends
(``Publisher.epoch``, the objective's ``on_epoch``), and ended with its outcome and pictures,
failed and stopped trials included. Trial artifacts can only be attached while the trial still
runs, so this happens just before Optuna records the outcome. Nothing here may cost a trial:
any failure is logged as a warning and the trial goes on as it ended.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from hpo.artifacts import (
    artifact_location,
    draw_trial_files,
    open_artifact_store,
    upload_trial_artifacts,
)
from hpo.exceptions import ConfigError
from hpo.notes import DataSummary, save_study_note, save_trial_note, study_note, trial_note
from hpo.study import StudySpec, TrialRecord, read_trial_record, record_class_names
from hpo.trackers import (
    RunEnd,
    RunInfo,
    TrackerContext,
    TrackerSet,
    flat_settings,
    open_trackers,
    require_trackers,
    sqlite_path,
)

__all__ = ["Publisher", "check_publishing", "prepare_trackers"]

_log = logging.getLogger(__name__)


def check_publishing(spec: StudySpec) -> None:
    """Refuse, before the study is opened, settings a worker could not publish trials with.

    The artifact store and the trackers' local folders (TensorBoard's, W&B's ``dir``, the
    folder of an MLflow ``sqlite:///`` file) must be folders this process can create or write
    in, and every tracker's library must be installed; nothing is left behind by the check.
    Without it the study would be created first and then refused, or every trial would warn.

    Raises:
        ConfigError: naming ``study.artifacts``, ``study.tensorboard`` or
            ``study.trackers[i]``, the folder or the missing package and why.
    """
    studies_dir = spec.path.parent if spec.path is not None else Path("studies")
    location = artifact_location(spec.name, setting=spec.study.artifacts, studies_dir=studies_dir)
    open_artifact_store(location)  # an S3 store without boto3, a URL that is no store
    if "://" not in location:
        _check_writable(Path(location), "study.artifacts")
    if spec.study.tensorboard is not None:
        require_trackers(spec.study.all_trackers()[-1:], where="study.tensorboard")
        _check_writable(Path(spec.study.tensorboard), "study.tensorboard")
    for i, tracker in enumerate(spec.study.trackers):
        where = f"study.trackers[{i}]"
        require_trackers([tracker], where=where)
        folder = tracker.params.get("dir")
        database = sqlite_path(str(tracker.params.get("tracking_uri") or ""))
        if folder is not None:
            _check_writable(Path(folder), f"{where}.dir")
        elif database is not None:
            _check_writable(database.parent, f"{where}.tracking_uri")


def prepare_trackers(spec: StudySpec, study: optuna.Study) -> None:
    """Create what the study's workers share in its trackers, once, before they start.

    An MLflow tracker makes its experiment (creating a new SQLite store's tables, which
    several processes must not do at once) and the study's parent run here. A tracker that
    cannot be reached is a warning: each trial tries again.
    """
    trackers = spec.study.all_trackers()
    if trackers:
        open_trackers(trackers, TrackerContext(spec.name, study)).prepare_study(study)


def _check_writable(folder: Path, key: str) -> None:
    """Raise unless ``folder`` is a folder, or can be made one, this process can write in."""
    existing = folder.absolute()
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {folder}: {existing} is not a folder")
    try:  # a real write: permission bits do not tell (root, read-only mounts, /proc)
        os.rmdir(tempfile.mkdtemp(prefix=".hpo-write-check-", dir=existing))
    except OSError as exc:
        raise ConfigError(
            f"{key}: {folder}: cannot write in {existing} ({exc.strerror}); choose a folder "
            "this user can write"
        ) from None


class Publisher:
    """Publishes the finished trials of one worker of a study.

    Args:
        study: The shared study.
        store: Artifact store (``hpo.artifacts.open_artifact_store``).
        class_names: Class names, index = class id.
        epochs: Epochs per fold (to name the fold and epoch of a pruning step).
        pruner: Name of the study's pruner.
        trackers: The study's experiment trackers.
    """

    def __init__(
        self,
        study: optuna.Study,
        *,
        store: Any,
        class_names: Sequence[str],
        epochs: int,
        pruner: str,
        trackers: TrackerSet | None = None,
    ) -> None:
        self.study = study
        self.store = store
        self.class_names = list(class_names)
        self.epochs = epochs
        self.pruner = pruner
        self.trackers = trackers if trackers is not None else TrackerSet([])
        self._trial: optuna.Trial | None = None

    @classmethod
    def create(cls, spec: StudySpec, study: optuna.Study, samples: Any) -> Publisher:
        """The publisher of a study file's worker; saves the study's note.

        Raises:
            ConfigError: the artifact store cannot be opened (boto3 missing for S3, a folder
                that cannot be created) or a tracker's library is not installed.
        """
        studies_dir = spec.path.parent if spec.path is not None else Path("studies")
        location = artifact_location(
            spec.name, setting=spec.study.artifacts, studies_dir=studies_dir
        )
        store = open_artifact_store(location, create=True)
        trackers = spec.study.all_trackers()
        require_trackers(trackers, where="study.trackers")
        publisher = cls(
            study,
            store=store,
            class_names=samples.class_names,
            epochs=spec.base_config().train.epochs,
            pruner=str(spec.study.pruner.get("name", "")),
            trackers=open_trackers(trackers, TrackerContext(spec.name, study)),
        )
        publisher.publish_study(spec, DataSummary.of(samples))
        return publisher

    def publish_study(self, spec: StudySpec, data: DataSummary | None) -> None:
        """Save the study note and the class names (reports read them); warn on failure."""
        try:
            record_class_names(self.study, self.class_names)
            body = study_note(
                spec.name,
                search_space=spec.search_space,
                fixed=spec.fixed_dict(),
                pruner=spec.study.pruner,
                sampler=spec.study.sampler,
                data=data,
            )
            save_study_note(self.study, body)
        except Exception as exc:
            _log.warning("study note not saved: %s: %s", type(exc).__name__, exc)

    def wrap(self, objective: Callable[[optuna.Trial], float]) -> Callable[[optuna.Trial], float]:
        """``objective`` that publishes each trial it finishes (complete or pruned), and ends
        every trial's tracker runs however it ends (failed and stopped ones too).

        Epochs reach the trackers through :meth:`epoch`, which the caller hands to the
        objective (``Objective.on_epoch``).
        """

        def run(trial: optuna.Trial) -> float:
            self._trial = trial
            try:
                value = objective(trial)
            except optuna.TrialPruned as exc:
                self.publish(trial, state="pruned", value=None, reason=str(exc) or None)
                raise
            except Exception as exc:
                reason = read_trial_record(trial).fail_reason or f"{type(exc).__name__}: {exc}"
                self._end_trackers(trial, RunEnd(state="FAIL", detail=reason))
                raise
            except KeyboardInterrupt as exc:
                reason = getattr(exc, "reason", None) or "interrupted (Ctrl-C)"
                self._end_trackers(trial, RunEnd(state="STOPPED", detail=str(reason)))
                raise
            finally:
                self._trial = None
            self.publish(trial, state="complete", value=value)
            return value

        return run

    def epoch(self, trial_number: int, fold: int, result: dict[str, Any]) -> None:
        """One epoch of the running trial (``EpochResult.to_dict()``) to every tracker; the
        trial's runs start at its first epoch, when its settings are known."""
        trial = self._trial
        if not self.trackers or trial is None or trial.number != trial_number:
            return
        if not self.trackers.running:
            self.trackers.start(self._run_info(trial))
        self.trackers.epoch(f"fold_{fold}", result)

    def _run_info(self, trial: optuna.Trial) -> RunInfo:
        record = read_trial_record(trial)
        config = dict(record.config or {})
        config.pop("provenance", None)
        config.pop("trackers", None)
        worker = record.worker.to_json() if record.worker is not None else {}
        tags = {k: str(v) for k, v in worker.items() if v is not None}
        return RunInfo(
            kind="trial",
            name=f"{self.study.study_name}-trial-{trial.number}",
            trial=trial.number,
            params=dict(trial.params),
            config=flat_settings(config),
            tags=tags,
        )

    def _end_trackers(self, trial: optuna.Trial, outcome: RunEnd) -> None:
        if not self.trackers:
            return
        if not self.trackers.running:
            self.trackers.start(self._run_info(trial))
        self.trackers.end(outcome)

    def publish(
        self, trial: optuna.Trial, *, state: str, value: float | None, reason: str | None = None
    ) -> None:
        """Upload the artifacts, save the note and end the tracker runs of a running trial.

        Each part fails on its own with a warning; none raises.
        """
        record = read_trial_record(trial)
        params = dict(trial.params)
        with tempfile.TemporaryDirectory(prefix="hpo-artifacts-") as tmp:
            files: list[Path] = []
            try:
                files = draw_trial_files(
                    trial.number,
                    record,
                    class_names=self.class_names,
                    pruned=state == "pruned",
                    folder=Path(tmp),
                )
                upload_trial_artifacts(trial, files, store=self.store)
            except Exception as exc:
                _log.warning(
                    "trial %d: artifacts not uploaded: %s: %s",
                    trial.number,
                    type(exc).__name__,
                    exc,
                )
            try:
                body = trial_note(
                    trial.number,
                    state=state,
                    value=value,
                    params=params,
                    record=record,
                    epochs=self.epochs,
                    pruner=self.pruner,
                    prune_reason=reason,
                )
                save_trial_note(trial, body)
            except Exception as exc:
                _log.warning(
                    "trial %d: note not saved: %s: %s", trial.number, type(exc).__name__, exc
                )
            pictures = [p for p in files if p.is_file()]
            if state == "pruned":
                outcome = RunEnd(
                    state="PRUNED",
                    last_score=record.last_macro_f1,
                    detail=_pruned_detail(record, reason),
                    pictures=pictures,
                )
            else:
                outcome = RunEnd(state="COMPLETE", value=value, pictures=pictures)
            self._end_trackers(trial, outcome)


def _pruned_detail(record: TrialRecord, reason: str | None) -> str:
    """``at epoch 2 (fold 0): macro-F1 ...`` or ``after fold 1: ...``."""
    if record.cut_fold is not None:
        where = f"at epoch {record.cut_fold.epoch} (fold {record.cut_fold.fold})"
    elif record.pruned_at_fold is not None:
        where = f"after fold {record.pruned_at_fold}"
    else:
        where = f"at step {record.pruned_at_step}"
    return f"{where}: {reason}" if reason else where
