"""Score predictions against true labels: macro-F1 (the competition metric), accuracy, per class.

Predictions are a CSV with an id column and a class column. The competition layout is
``ImageID,ans`` (``eval/info.csv`` filled in, ``eval/answers.csv``); ``hpo predict`` writes
``path,pred,class_name`` for ``folder`` runs (id column ``ImageID`` or ``path``; class column
``ans``, ``pred`` or ``label``, first found wins, and/or ``class_name``).

The truth is such a CSV too (``path,class_name`` names the classes without ids), or a folder of
class folders (``EVAL/<class>/*.jpg``, labels from the folder names; a data root holding
``train/`` and ``eval/`` is read from ``eval/``). Rows are joined on the id: the same
``ImageID`` or path (relative to the folder), else the file name when every file name is unique.
Classes are compared by id when both sides give ids, else by name (``class_name``).

Classes are reported by id and name, as ``metrics.json`` of a run names them: from a
``class_name`` column when a file has one, else the 18 names of the competition
(``wear/male/<30``) for ``ImageID`` files.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from hpo.data import MASK_CLASS_NAMES, NUM_MASK_CLASSES
from hpo.data._folder import SPLIT_FOLDERS, find_class_root, scan_folder
from hpo.data._table import raise_problems
from hpo.exceptions import DataError

__all__ = [
    "ClassScore",
    "Labels",
    "ScoreReport",
    "read_class_names",
    "read_label_source",
    "read_labels",
    "score_files",
    "score_labels",
]

ID_COLUMNS = ("ImageID", "path")
CLASS_COLUMNS = ("ans", "pred", "label")
NAME_COLUMN = "class_name"


@dataclass(frozen=True)
class ClassScore:
    """One class: its F1, precision and recall, true count (support) and predicted count;
    ``name`` is the class's name (``""`` when unknown)."""

    label: int
    f1: float
    precision: float
    recall: float
    support: int
    predicted: int
    name: str = ""


@dataclass(frozen=True)
class ScoreReport:
    """Scores of one prediction file against the truth."""

    n: int
    macro_f1: float
    accuracy: float
    per_class: list[ClassScore]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Labels:
    """The classes one file or folder gives, by key (``ImageID`` or a ``/``-separated path).

    Attributes:
        source: The file or folder read.
        keys: Every key, in the order read.
        ids: Key -> class id; None where the source names its classes only.
        names: Key -> class name; None where it gives ids only.
        id_names: Class id -> name as the source pairs them (its ``class_name`` column, or the
            competition's 18 names for an ``ImageID`` file); empty when it pairs none.
    """

    source: Path
    keys: list[str]
    ids: dict[str, int] | None
    names: dict[str, str] | None
    id_names: dict[int, str]


def _pick(columns: list[str], wanted: tuple[str, ...], path: Path, what: str) -> str:
    for name in wanted:
        if name in columns:
            return name
    raise DataError(
        f"{path}: no {what} column (expected one of {', '.join(wanted)}); "
        f"columns: {', '.join(columns) or 'none'}"
    )


def _class_id(text: str, path: Path, line: int, column: str, num_classes: int | None) -> int:
    value = text.strip()
    if not value:
        raise DataError(f"{path}:{line}: {column} is empty (every row needs a class id)")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    upper = float("inf") if num_classes is None else num_classes
    if not number.is_integer() or not 0 <= number < upper:
        accepted = (
            "a non-negative integer"
            if num_classes is None
            else f"an integer from 0 to {num_classes - 1}"
        )
        raise DataError(f"{path}:{line}: {column} {text!r} is not a class id ({accepted})")
    return int(number)


def _read_csv(path: Path, num_classes: int | None) -> Labels:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not columns:
            raise DataError(f"{path}: empty file (expected a header such as ImageID,ans)")
        reader.fieldnames = columns
        id_col = _pick(columns, ID_COLUMNS, path, "id")
        class_col = next((c for c in CLASS_COLUMNS if c in columns), None)
        has_names = NAME_COLUMN in columns
        if class_col is None and not has_names:
            raise DataError(
                f"{path}: no class column (expected one of {', '.join(CLASS_COLUMNS)}) nor a "
                f"{NAME_COLUMN} column; columns: {', '.join(columns)}"
            )
        if num_classes is None and id_col == "ImageID":
            num_classes = NUM_MASK_CLASSES  # the competition's classes
        keys: list[str] = []
        ids: dict[str, int] = {}
        names: dict[str, str] = {}
        id_names: dict[int, str] = {}
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            key = (row.get(id_col) or "").strip()
            if not key:
                raise DataError(f"{path}:{line}: {id_col} is empty")
            if key in first_line:
                raise DataError(f"{path}:{line}: {id_col} {key!r} repeats line {first_line[key]}")
            first_line[key] = line
            keys.append(key)
            name = (row.get(NAME_COLUMN) or "").strip()
            if class_col is not None:
                ids[key] = _class_id(row.get(class_col) or "", path, line, class_col, num_classes)
                if name:
                    id_names.setdefault(ids[key], name)
            elif not name:
                raise DataError(f"{path}:{line}: {NAME_COLUMN} is empty (every row needs a class)")
            if has_names:
                names[key] = name
    if not keys:
        raise DataError(f"{path}: no rows below the header")
    if not has_names and id_col == "ImageID":
        id_names = dict(enumerate(MASK_CLASS_NAMES))
    if class_col is not None and has_names and any(not names[k] for k in keys):
        names_or_none: dict[str, str] | None = None  # some rows unnamed: compare by id only
    else:
        names_or_none = names if has_names else None
    return Labels(path, keys, ids if class_col is not None else None, names_or_none, id_names)


def _read_folder(path: Path) -> Labels:
    root = path.absolute()
    if find_class_root(root) != root and (root / SPLIT_FOLDERS[1]).is_dir():
        root = root / SPLIT_FOLDERS[1]  # a data root split into train/ and eval/
    scan = scan_folder(root)
    raise_problems(scan.problems, root)
    samples = scan.samples
    keys = [str(g) for g in samples.groups]  # paths relative to the folder of class folders
    names = {k: samples.class_names[int(y)] for k, y in zip(keys, samples.labels, strict=True)}
    return Labels(path, keys, None, names, {})


def read_label_source(path: Path, *, num_classes: int | None = None) -> Labels:
    """Read the classes of a CSV or of a folder of class folders; errors name file and line.

    Args:
        path: A CSV with an id column (``ImageID`` or ``path``) and a class id column (``ans``,
            ``pred`` or ``label``) and/or ``class_name``; or a folder of class folders (or a
            data root holding ``train/`` and ``eval/``: its ``eval/``).
        num_classes: Class ids accepted are 0 to ``num_classes - 1``; None: 0 to 17 for
            ``ImageID`` files (the competition), any non-negative integer otherwise.

    Raises:
        DataError: the file or folder is missing; a CSV is empty, lacks an id or class column,
            repeats an id, or holds a class id outside the accepted range (an unknown class
            would be averaged into the macro-F1); a folder is not a folder of class folders.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return _read_csv(path, num_classes)


def read_labels(path: Path, *, num_classes: int | None = None) -> dict[str, int]:
    """Read ``id -> class id`` from a CSV; errors name the file and line.

    ``num_classes`` as in :func:`read_label_source` (``3`` and ``3.0`` are both class 3).

    Raises:
        DataError: as :func:`read_label_source`, or the file names its classes only.
    """
    labels = read_label_source(path, num_classes=num_classes)
    if labels.ids is None:
        raise DataError(
            f"{path}: no class column (expected one of {', '.join(CLASS_COLUMNS)}); it names "
            f"classes only ({NAME_COLUMN})"
        )
    return labels.ids


def read_class_names(path: Path) -> dict[int, str]:
    """Class id -> name as the file names them: its ``class_name`` column, or the
    competition's 18 names for an ``ImageID`` file; empty when the file names none.

    Call after :func:`read_labels` (which checks the file).
    """
    return read_label_source(path).id_names


def score_labels(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Mapping[int, str] | None = None
) -> ScoreReport:
    """Macro-F1 over the classes present in either array (scikit-learn's convention).

    Args:
        y_true: True class ids.
        y_pred: Predicted class ids.
        class_names: Class id -> name, for the report; ids it lacks get ``""``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = np.union1d(y_true, y_pred)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    predicted = np.array([(y_pred == k).sum() for k in labels])
    per_class = [
        ClassScore(
            label=int(k),
            f1=float(f1[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            support=int(support[i]),
            predicted=int(predicted[i]),
            name=(class_names or {}).get(int(k), ""),
        )
        for i, k in enumerate(labels)
    ]
    return ScoreReport(
        n=len(y_true),
        macro_f1=float(np.mean(f1)),
        accuracy=float(accuracy_score(y_true, y_pred)),
        per_class=per_class,
    )


def _join(pred: Labels, truth: Labels) -> list[tuple[str, str]]:
    """``(truth key, prediction key)`` for every truth key: the same key, else the same file
    name where file names are unique on both sides (predictions of another folder level)."""
    predicted = set(pred.keys)
    missing = [k for k in truth.keys if k not in predicted]
    if not missing:
        extra = [k for k in pred.keys if k not in set(truth.keys)]
        if extra:
            raise DataError(
                f"{pred.source}: {len(extra)} ids are not in {truth.source} (first: "
                f"{extra[0]!r}); is it the truth of the same data set?"
            )
        return [(k, k) for k in truth.keys]
    by_name = _by_file_name(pred.keys)
    truth_names = _by_file_name(truth.keys)
    if (
        by_name is not None
        and truth_names is not None
        and len(pred.keys) == len(truth.keys)
        and set(by_name) == set(truth_names)
    ):
        return [(k, by_name[PurePosixPath(k).name]) for k in truth.keys]
    raise DataError(
        f"{pred.source}: {len(missing)} of {len(truth.keys)} ids in {truth.source} have no "
        f"prediction (first: {missing[0]!r})"
    )


def _by_file_name(keys: list[str]) -> dict[str, str] | None:
    """File name -> key, or None when two keys share a file name."""
    out = {PurePosixPath(k).name: k for k in keys}
    return out if len(out) == len(keys) else None


def _compare_by_name(pred: Labels, truth: Labels) -> tuple[dict[str, int], dict[int, str]]:
    """Class name -> id for scoring by name (the predictions' ids first, then the truth's, then
    new ones in name order), and id -> name."""
    ids: dict[str, int] = {}
    for id_names in (pred.id_names, truth.id_names):
        for k, name in sorted(id_names.items()):
            if name not in ids and k not in ids.values():
                ids[name] = k
    assert pred.names is not None and truth.names is not None
    unnumbered = sorted({*pred.names.values(), *truth.names.values()} - set(ids))
    start = max(ids.values(), default=-1) + 1
    ids.update({name: start + i for i, name in enumerate(unnumbered)})
    return ids, {k: name for name, k in ids.items()}


def score_files(pred: Path, truth: Path, *, num_classes: int | None = None) -> ScoreReport:
    """Join ``pred`` and ``truth`` on the id and score them.

    Args:
        pred: Predictions: a CSV (see :func:`read_label_source`).
        truth: True labels: a CSV, or a folder of class folders.
        num_classes: As in :func:`read_label_source`.

    Raises:
        DataError: a file is unreadable (see :func:`read_label_source`), the ids differ (every
            truth id needs a prediction, and a prediction without truth means the wrong file),
            or one side gives class ids only and the other class names only.
    """
    predicted = read_label_source(pred, num_classes=num_classes)
    true = read_label_source(truth, num_classes=num_classes)
    pairs = _join(predicted, true)
    if predicted.ids is not None and true.ids is not None:
        names = {**true.id_names, **predicted.id_names}
        y_true = [true.ids[t] for t, _ in pairs]
        y_pred = [predicted.ids[p] for _, p in pairs]
    elif predicted.names is not None and true.names is not None:
        ids, names = _compare_by_name(predicted, true)
        y_true = [ids[true.names[t]] for t, _ in pairs]
        y_pred = [ids[predicted.names[p]] for _, p in pairs]
    else:
        named, numbered = (truth, pred) if true.ids is None else (pred, truth)
        raise DataError(
            f"{named} names its classes only and {numbered} gives class ids only: add a "
            f"{NAME_COLUMN} column to {numbered} (hpo predict writes one for folder runs)"
        )
    return score_labels(np.array(y_true), np.array(y_pred), names)
