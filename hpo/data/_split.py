"""K-fold splits grouped by person, stratified by the person's class, reproducible from a seed."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from hpo.data._table import Samples
from hpo.exceptions import DataError

__all__ = ["kfold_splits"]

logger = logging.getLogger(__name__)


def kfold_splits(
    samples: Samples, n_splits: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train, validation) index pairs; no group is ever on both sides of a fold.

    Uses scikit-learn's ``StratifiedGroupKFold(shuffle=True, random_state=seed)`` on
    ``samples.strata`` and ``samples.groups``: every image of a person lands in the same fold,
    and each fold gets about the same share of every stratum (gender x age of the person for
    the competition layout). The same samples and seed give the same folds on every machine.

    Args:
        samples: The table to split.
        n_splits: Number of folds, at least 2.
        seed: Seed of the shuffle.

    Returns:
        One ``(train_idx, val_idx)`` pair of sorted ``int64`` positions per fold.

    Raises:
        DataError: fewer groups than folds.
    """
    # Imported here: scikit-learn takes a second to import and `hpo data check` never splits.
    from sklearn.model_selection import StratifiedGroupKFold

    if n_splits < 2:
        raise DataError(f"n_splits must be at least 2, got {n_splits}")
    n_groups = len(set(samples.groups.tolist()))
    if n_groups < n_splits:
        raise DataError(
            f"cannot make {n_splits} folds from {n_groups} group(s) "
            f"({'people' if samples.format == 'mask' else 'images'}); lower kfold.n_splits"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    # scikit-learn wants one hashable label per group; folder names are strings already.
    groups = samples.groups.astype(str)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folds = [
            (np.sort(train).astype(np.int64), np.sort(val).astype(np.int64))
            for train, val in splitter.split(np.zeros(len(samples)), samples.strata, groups)
        ]
    for warning in caught:
        logger.warning("k-fold split: %s", warning.message)
    return folds
