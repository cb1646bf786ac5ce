"""The study's artifact store (a folder or S3) and the files a finished trial uploads to it.

Every finished trial uploads with ``optuna.artifacts``: ``confusion_matrix.png``,
``learning_curves.png`` and ``per_class_f1.csv``. The store is ``study.artifacts`` of the study
file (a folder, shared by the workers of several machines, or ``s3://bucket/prefix`` where boto3
is installed), by default the folder ``<study file dir>/<name>.artifacts`` beside the default
SQLite study. ``hpo dashboard`` serves the same store. A trial pruned inside a fold draws that
fold as it stood at the epoch it was pruned at (``TrialRecord.cut_fold``), and its confusion
matrix says so.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from hpo.exceptions import ConfigError
from hpo.study import TrialRecord, read_study_record, study_file

__all__ = [
    "ARTIFACT_FILES",
    "PrefixedStore",
    "artifact_location",
    "artifact_location_for",
    "class_names_of",
    "draw_trial_files",
    "open_artifact_store",
    "scores_source",
    "upload_trial_artifacts",
]

CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "learning_curves.png"
PER_CLASS_CSV = "per_class_f1.csv"
ARTIFACT_FILES = (CONFUSION_PNG, CURVES_PNG, PER_CLASS_CSV)
_SUFFIX = ".artifacts"


def scores_source(record: TrialRecord) -> str | None:
    """Where a pruned trial's confusion matrix, per-class F1 and factor F1s come from, in words
    (``fold 0 at epoch 1/3, where the trial was pruned``); None unless a fold was cut short.

    The scores of a trial pruned inside a fold include that fold as it stood at that epoch (the
    loop validates every epoch, so nothing is recomputed).
    """
    cut = record.cut_fold
    if cut is None:
        return None
    where = f"epoch {cut.epoch}/{cut.epochs}"
    text = f"fold {cut.fold} at {where}, where the trial was pruned"
    done = len(record.fold_scores or ())
    if done:
        text = f"{done} finished fold{'s' if done > 1 else ''} + {text}"
    return text


def artifact_location(name: str, *, setting: str | None, studies_dir: Path) -> str:
    """Where study ``name`` keeps its artifacts: ``setting`` or ``studies_dir/NAME.artifacts``."""
    if setting:
        return setting
    return str(studies_dir / f"{name}{_SUFFIX}")


def artifact_location_for(name: str, *, config: Path | None = None) -> str:
    """Artifact location of an existing study, for commands that read it (dashboard, report).

    Reads ``study.artifacts`` of the study file when it exists, like ``hpo.study.storage_for``
    does for the storage.
    """
    from hpo.config import load_yaml

    path = study_file(name, config=config)
    setting = None
    if path.is_file():
        section = load_yaml(path).get("study") or {}
        value = section.get("artifacts") if isinstance(section, dict) else None
        setting = str(value) if value else None
    return artifact_location(name, setting=setting, studies_dir=path.parent)


class PrefixedStore:
    """An artifact store that keeps every artifact under ``prefix/`` of another store's keys.

    Optuna's ``Boto3ArtifactStore`` writes to the bucket's root; ``s3://bucket/prefix`` keeps
    several studies apart in one bucket.
    """

    def __init__(self, store: Any, prefix: str) -> None:
        self._store = store
        self._prefix = prefix.strip("/")

    def _key(self, artifact_id: str) -> str:
        return f"{self._prefix}/{artifact_id}" if self._prefix else artifact_id

    def open_reader(self, artifact_id: str) -> BinaryIO:
        reader: BinaryIO = self._store.open_reader(self._key(artifact_id))
        return reader

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self._store.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._key(artifact_id))


def open_artifact_store(location: str, *, create: bool = False) -> Any:
    """The artifact store at ``location``: a folder, or ``s3://bucket/prefix``.

    Args:
        location: Folder path or S3 URL.
        create: Create the folder (workers do; the dashboard only reads).

    Raises:
        ConfigError: an S3 store without boto3 installed, or a folder that cannot be created.
    """
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigError(f"artifact store {location!r}: expected s3://bucket/prefix")
        try:
            import boto3  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"artifact store {location}: boto3 is not installed; pip install boto3"
            ) from None
        from optuna.artifacts import Boto3ArtifactStore

        return PrefixedStore(Boto3ArtifactStore(bucket), prefix)
    if "://" in location:
        raise ConfigError(f"artifact store {location!r}: expected a folder or s3://bucket/prefix")
    path = Path(location)
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"artifact store {path}: cannot create the folder ({exc.strerror})"
            ) from None
    return FileSystemArtifactStore(path)


def per_class_rows(
    per_class_f1: Sequence[float],
    class_names: Sequence[str],
    confusion: Sequence[Sequence[float]] | None,
) -> list[dict[str, Any]]:
    """One row per class: id, name, F1 and (from the confusion matrix) validation images."""
    support = (
        np.asarray(confusion).sum(axis=1).astype(int).tolist()
        if confusion is not None
        else [None] * len(per_class_f1)
    )
    return [
        {
            "class": k,
            "name": class_names[k] if k < len(class_names) else str(k),
            "f1": round(float(f1), 4),
            "support": support[k] if k < len(support) else None,
        }
        for k, f1 in enumerate(per_class_f1)
    ]


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["class", "name", "f1", "support"])
        writer.writeheader()
        writer.writerows(rows)


def draw_trial_files(
    number: int,
    record: TrialRecord,
    *,
    class_names: Sequence[str],
    pruned: bool,
    folder: Path,
) -> list[Path]:
    """Draw a trial's pictures from its record into ``folder``.

    Args:
        number: The trial's number (in the titles).
        record: Its record (``history`` and ``scores``).
        class_names: Class names, index = class id.
        pruned: Mark the pruning point on the learning curves.
        folder: Where the files go (``ARTIFACT_FILES`` names, those the record allows).

    Returns:
        The files written: ``learning_curves.png``, ``confusion_matrix.png``,
        ``per_class_f1.csv``.
    """
    from hpo.plots import confusion_figure, learning_curves_figure, save_png

    names = list(class_names)
    files: list[Path] = []
    history = record.history or []
    scores = record.scores
    confusion = scores.confusion if scores is not None else None
    per_class = scores.per_class_f1 if scores is not None else ()
    if history:
        title = f"trial {number} learning curves"
        fig = learning_curves_figure(history, pruned=pruned, title=title)
        files.append(save_png(fig, folder / CURVES_PNG))
    if confusion:
        if len(names) != len(confusion):
            names = [str(k) for k in range(len(confusion))]
        title = f"trial {number}: validation confusion matrix"
        source = scores_source(record)
        if source:
            title += f"\n{source}"
        fig = confusion_figure(confusion, names, title=title)
        files.append(save_png(fig, folder / CONFUSION_PNG))
    if per_class:
        _write_csv(folder / PER_CLASS_CSV, per_class_rows(per_class, names, confusion))
        files.append(folder / PER_CLASS_CSV)
    return files


def upload_trial_artifacts(
    trial: optuna.Trial, files: Sequence[Path], *, store: Any
) -> dict[str, str]:
    """Upload a running trial's pictures (:func:`draw_trial_files`) to the artifact store.

    A trial's artifacts can only be attached while it runs (finished trials are read-only in
    the storage), so this runs just before the trial is told its outcome.

    Returns:
        File name -> artifact id of what was uploaded.
    """
    return {
        path.name: upload_artifact(
            artifact_store=store, file_path=os.fspath(path), study_or_trial=trial
        )
        for path in files
    }


def read_artifact(store: Any, artifact_id: str) -> bytes:
    """The bytes of one artifact (for tests and reports).

    Raises:
        ConfigError: the store holds no such artifact.
    """
    try:
        with store.open_reader(artifact_id) as reader:
            data: bytes = reader.read()
            return data
    except (ArtifactNotFound, FileNotFoundError):
        raise ConfigError(f"artifact {artifact_id} not found in the artifact store") from None


def class_names_of(study: optuna.Study, n: int) -> list[str]:
    """The class names the workers stored on the study, or ``0..n-1``."""
    names = read_study_record(study).class_names
    if names is not None and len(names) == n:
        return list(names)
    return [str(k) for k in range(n)]
