"""Metrics: macro-F1 equals scikit-learn's on the same predictions; per-class and factor F1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from hpo.data import decode_factors
from hpo.train.metrics import classification_metrics


@pytest.mark.parametrize("seed", range(5))
def test_macro_f1_equals_sklearn_on_random_predictions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, classes = int(rng.integers(5, 300)), 18
    y_true = rng.integers(0, classes, n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, classes, n))
    got = classification_metrics(y_true, y_pred, classes)
    assert got["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["per_class_f1"] == pytest.approx(
        list(f1_score(y_true, y_pred, labels=range(classes), average=None, zero_division=0))
    )
    assert got["confusion"] == confusion_matrix(y_true, y_pred, labels=range(classes)).tolist()


def test_missing_classes_count_like_sklearn() -> None:
    # Class 3 is never true but predicted; classes 4 and 5 are neither true nor predicted.
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 3, 1, 1, 2, 0])
    got = classification_metrics(y_true, y_pred, 6)
    want = f1_score(y_true, y_pred, average="macro")  # over classes 0-3: present or predicted
    assert got["macro_f1"] == pytest.approx(want, abs=1e-12)
    assert got["macro_f1"] == pytest.approx((1 / 2 + 1 + 2 / 3 + 0) / 4)
    assert len(got["per_class_f1"]) == 6
    assert got["per_class_f1"][3:] == [0.0, 0.0, 0.0]
    assert np.array(got["confusion"]).sum() == 6
    assert np.array(got["confusion"])[0, 3] == 1


def test_single_class_and_empty_inputs() -> None:
    got = classification_metrics([2, 2, 2], [2, 2, 2], 18)
    assert got["macro_f1"] == 1.0 and got["accuracy"] == 1.0
    empty = classification_metrics([], [], 3)
    assert empty["macro_f1"] == 0.0 and empty["per_class_f1"] == [0.0] * 3


def test_factor_f1_is_macro_f1_of_each_decoded_factor() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 18, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 18, 200))
    got = classification_metrics(y_true, y_pred, 18, mask_factors=True)
    true_f, pred_f = decode_factors(y_true), decode_factors(y_pred)
    for name in ("mask", "gender", "age"):
        want = f1_score(true_f[name], pred_f[name], average="macro")
        assert got[f"f1_{name}"] == pytest.approx(want, abs=1e-12)
    assert "f1_mask" not in classification_metrics(y_true, y_pred, 18)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        classification_metrics([0, 1], [0], 2)
