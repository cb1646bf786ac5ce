"""Classification metrics: macro-F1 (the objective), accuracy, per-class and per-factor F1.

Macro-F1 is scikit-learn's ``f1_score(average="macro")`` with its default label set (the classes
present in the targets or the predictions), the competition's scoring; per-class F1 and the
confusion matrix cover every class, ``0..num_classes-1``. The competition's labels are split
into their factors by the data layer (``hpo.data.decode_factors``), where the label arithmetic
lives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from hpo.data import FACTORS, decode_factors

__all__ = ["classification_metrics", "macro_f1"]


def macro_f1(y_true: Any, y_pred: Any) -> float:
    """``sklearn.metrics.f1_score(y_true, y_pred, average="macro")``, without warnings."""
    if len(y_true) == 0:
        return 0.0
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def classification_metrics(
    y_true: Any, y_pred: Any, num_classes: int, *, mask_factors: bool = False
) -> dict[str, Any]:
    """Metrics of predictions ``y_pred`` against targets ``y_true`` (class indices).

    Returns:
        ``macro_f1``, ``accuracy``, ``per_class_f1`` (one per class; 0 for a class neither
        present nor predicted), ``confusion`` (rows: true class, columns: predicted), and with
        ``mask_factors`` also ``f1_mask``, ``f1_gender`` and ``f1_age``: macro-F1 over each
        factor of the competition's labels.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}"
        )
    labels = np.arange(num_classes)
    empty = len(y_true) == 0
    out: dict[str, Any] = {
        "macro_f1": macro_f1(y_true, y_pred),
        "accuracy": 0.0 if empty else float(accuracy_score(y_true, y_pred)),
        "per_class_f1": [0.0] * num_classes
        if empty
        else [
            float(v)
            for v in f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        ],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist()
        if not empty
        else [[0] * num_classes for _ in range(num_classes)],
    }
    if mask_factors:
        true_f, pred_f = decode_factors(y_true), decode_factors(y_pred)
        for name in FACTORS:
            out[f"f1_{name}"] = macro_f1(true_f[name], pred_f[name])
    return out
