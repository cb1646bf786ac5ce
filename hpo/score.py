"""Score predictions against true labels: macro-F1 (the competition metric), accuracy, per class.

Both files are CSVs with an id column and a class column, joined on the id. The competition
layout is ``ImageID,ans`` (``eval/info.csv`` filled in, ``eval/answers.csv``); the ``path,pred``
files ``hpo predict`` writes for ``folder`` runs are read as well (id column ``ImageID`` or
``path``; class column ``ans``, ``pred`` or ``label``, first found wins).

Classes are reported by id and name, as ``metrics.json`` of a run names them: from a
``class_name`` column when a file has one (``hpo predict`` writes it for ``folder`` runs), else
the 18 names of the competition (``wear/male/<30``) for ``ImageID`` files.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from hpo.data import MASK_CLASS_NAMES, NUM_MASK_CLASSES
from hpo.exceptions import DataError

__all__ = [
    "ClassScore",
    "ScoreReport",
    "read_class_names",
    "read_labels",
    "score_files",
    "score_labels",
]

ID_COLUMNS = ("ImageID", "path")
CLASS_COLUMNS = ("ans", "pred", "label")


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


def _pick(columns: list[str], wanted: tuple[str, ...], path: Path, what: str) -> str:
    for name in wanted:
        if name in columns:
            return name
    raise DataError(
        f"{path}: no {what} column (expected one of {', '.join(wanted)}); "
        f"columns: {', '.join(columns) or 'none'}"
    )


def _class_id(text: str, path: Path, line: int, column: str, num_classes: int) -> int:
    value = text.strip()
    if not value:
        raise DataError(f"{path}:{line}: {column} is empty (every row needs a class id)")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number.is_integer() or not 0 <= number < num_classes:
        raise DataError(
            f"{path}:{line}: {column} {text!r} is not a class id (an integer from 0 to "
            f"{num_classes - 1})"
        )
    return int(number)


def read_labels(path: Path, *, num_classes: int = NUM_MASK_CLASSES) -> dict[str, int]:
    """Read ``id -> class`` from a CSV; errors name the file and line.

    Raises:
        DataError: the file is missing or empty, lacks an id or class column, repeats an id,
            or holds a class that is not an integer from 0 to ``num_classes - 1`` (``3`` and
            ``3.0`` are fine): an unknown class would be averaged into the macro-F1.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        if not columns:
            raise DataError(f"{path}: empty file (expected a header such as ImageID,ans)")
        reader.fieldnames = columns
        id_col = _pick(columns, ID_COLUMNS, path, "id")
        class_col = _pick(columns, CLASS_COLUMNS, path, "class")
        out: dict[str, int] = {}
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            key = (row.get(id_col) or "").strip()
            if not key:
                raise DataError(f"{path}:{line}: {id_col} is empty")
            if key in out:
                raise DataError(f"{path}:{line}: {id_col} {key!r} repeats line {first_line[key]}")
            out[key] = _class_id(row.get(class_col) or "", path, line, class_col, num_classes)
            first_line[key] = line
    if not out:
        raise DataError(f"{path}: no rows below the header")
    return out


def read_class_names(path: Path) -> dict[int, str]:
    """Class id -> name as the file names them: its ``class_name`` column, or the
    competition's 18 names for an ``ImageID`` file; empty when the file names none.

    Call after :func:`read_labels` (which checks the file); unreadable rows are skipped.
    """
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        class_col = next((c for c in CLASS_COLUMNS if c in columns), None)
        if class_col is not None and "class_name" in columns:
            names: dict[int, str] = {}
            for row in reader:
                try:
                    names[int(float(row[class_col]))] = (row["class_name"] or "").strip()
                except (TypeError, ValueError):
                    continue
            return names
    if "ImageID" in columns:
        return dict(enumerate(MASK_CLASS_NAMES))
    return {}


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


def score_files(pred: Path, truth: Path, *, num_classes: int = NUM_MASK_CLASSES) -> ScoreReport:
    """Join ``pred`` and ``truth`` on the id and score them.

    Raises:
        DataError: a file is unreadable (see ``read_labels``) or the ids differ: every truth id
            needs a prediction, and a prediction without truth means the wrong file.
    """
    predicted = read_labels(pred, num_classes=num_classes)
    true = read_labels(truth, num_classes=num_classes)
    missing = [k for k in true if k not in predicted]
    if missing:
        raise DataError(
            f"{pred}: {len(missing)} of {len(true)} ids in {truth} have no prediction "
            f"(first: {missing[0]!r})"
        )
    extra = [k for k in predicted if k not in true]
    if extra:
        raise DataError(
            f"{pred}: {len(extra)} ids are not in {truth} (first: {extra[0]!r}); "
            "is it the truth of the same data set?"
        )
    keys = list(true)
    names = {**read_class_names(truth), **read_class_names(pred)}
    return score_labels(
        np.array([true[k] for k in keys]), np.array([predicted[k] for k in keys]), names
    )
