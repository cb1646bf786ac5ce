"""What a worker leaves for people to look at: trial artifacts, dashboard notes, TensorBoard.

``Publisher.wrap(objective)`` runs the objective and, for every trial that ends complete or
pruned, uploads its pictures to the study's artifact store, saves its optuna-dashboard note and
(with ``study.tensorboard``) writes its TensorBoard run. Trial artifacts can only be attached
while the trial still runs, so this happens just before Optuna records the outcome. Nothing
here may cost a trial: any failure is logged as a warning and the trial goes on as it ended.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from hpo.artifacts import artifact_location, open_artifact_store, upload_trial_artifacts
from hpo.exceptions import ConfigError
from hpo.notes import DataSummary, save_study_note, save_trial_note, study_note, trial_note
from hpo.study import StudySpec, read_trial_record, record_class_names

__all__ = ["Publisher", "check_publishing"]

_log = logging.getLogger(__name__)


def check_publishing(spec: StudySpec) -> None:
    """Refuse, before the study is opened, settings a worker could not publish trials with.

    The artifact store and the TensorBoard folder must be folders this process can create or
    write in; nothing is left behind by the check. Without it the study would be created first
    and then refused, or every trial would warn.

    Raises:
        ConfigError: naming ``study.artifacts`` or ``study.tensorboard``, the folder and why.
    """
    studies_dir = spec.path.parent if spec.path is not None else Path("studies")
    location = artifact_location(spec.name, setting=spec.study.artifacts, studies_dir=studies_dir)
    open_artifact_store(location)  # an S3 store without boto3, a URL that is no store
    if "://" not in location:
        _check_writable(Path(location), "study.artifacts")
    if spec.study.tensorboard is not None:
        from hpo.tensorboard import require_tensorboard

        require_tensorboard("study.tensorboard")
        _check_writable(Path(spec.study.tensorboard), "study.tensorboard")


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
        tensorboard: Folder of the study's TensorBoard runs, or None.
    """

    def __init__(
        self,
        study: optuna.Study,
        *,
        store: Any,
        class_names: Sequence[str],
        epochs: int,
        pruner: str,
        tensorboard: Path | None = None,
    ) -> None:
        self.study = study
        self.store = store
        self.class_names = list(class_names)
        self.epochs = epochs
        self.pruner = pruner
        self.tensorboard = tensorboard

    @classmethod
    def create(cls, spec: StudySpec, study: optuna.Study, samples: Any) -> Publisher:
        """The publisher of a study file's worker; saves the study's note.

        Raises:
            ConfigError: the artifact store cannot be opened (boto3 missing for S3, a folder
                that cannot be created) or ``study.tensorboard`` is set without TensorBoard.
        """
        studies_dir = spec.path.parent if spec.path is not None else Path("studies")
        location = artifact_location(
            spec.name, setting=spec.study.artifacts, studies_dir=studies_dir
        )
        store = open_artifact_store(location, create=True)
        if spec.study.tensorboard is not None:
            from hpo.tensorboard import require_tensorboard

            require_tensorboard("study.tensorboard")
        publisher = cls(
            study,
            store=store,
            class_names=samples.class_names,
            epochs=spec.base_config().train.epochs,
            pruner=str(spec.study.pruner.get("name", "")),
            tensorboard=spec.study.tensorboard,
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
        """``objective`` that publishes each trial it finishes (complete or pruned)."""

        def run(trial: optuna.Trial) -> float:
            try:
                value = objective(trial)
            except optuna.TrialPruned as exc:
                self.publish(trial, state="pruned", value=None, reason=str(exc) or None)
                raise
            self.publish(trial, state="complete", value=value)
            return value

        return run

    def publish(
        self, trial: optuna.Trial, *, state: str, value: float | None, reason: str | None = None
    ) -> None:
        """Upload the artifacts, save the note, write TensorBoard events of a running trial.

        Each part fails on its own with a warning; none raises.
        """
        record = read_trial_record(trial)
        params = dict(trial.params)
        try:
            upload_trial_artifacts(
                trial,
                record,
                store=self.store,
                class_names=self.class_names,
                pruned=state == "pruned",
            )
        except Exception as exc:
            _log.warning(
                "trial %d: artifacts not uploaded: %s: %s", trial.number, type(exc).__name__, exc
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
            _log.warning("trial %d: note not saved: %s: %s", trial.number, type(exc).__name__, exc)
        if self.tensorboard is not None:
            try:
                from hpo.tensorboard import write_trial_events

                write_trial_events(
                    self.tensorboard,
                    number=trial.number,
                    params=params,
                    # A pruned trial is compared at the last score it reached.
                    value=value if value is not None else record.last_macro_f1,
                    state=state,
                    history=record.history or [],
                )
            except Exception as exc:
                _log.warning(
                    "trial %d: TensorBoard events not written: %s: %s",
                    trial.number,
                    type(exc).__name__,
                    exc,
                )
