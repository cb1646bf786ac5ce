"""K-fold splits: grouped by person, stratified, reproducible."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import Samples, kfold_splits, load_samples
from hpo.exceptions import DataError


def real_sized_samples(seed: int = 0, scale: float = 1.0) -> Samples:
    """2,700 people x 7 images with the real per-person class counts (no files needed)."""
    people = {0: 549, 1: 410, 2: 83, 3: 732, 4: 817, 5: 109}
    strata = np.repeat(list(people), [round(n * scale) for n in people.values()])
    np.random.default_rng(seed).shuffle(strata)
    folders = [f"{i:06d}_person" for i in range(len(strata))]
    masks = np.array([0, 0, 0, 0, 0, 1, 2])
    return Samples(
        paths=[Path(f"/d/{f}/{k}.jpg") for f in folders for k in range(7)],
        labels=(np.tile(masks, len(strata)) * 6 + np.repeat(strata, 7)).astype(np.int64),
        groups=np.repeat(np.array(folders, dtype=object), 7),
        strata=np.repeat(strata, 7).astype(np.int64),
        class_names=[str(i) for i in range(18)],
        format="mask",
    )


def assert_valid_folds(samples: Samples, folds: list[tuple[np.ndarray, np.ndarray]]) -> None:
    everything = np.arange(len(samples))
    seen_in_val = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(seen_in_val), everything), "each row validates exactly once"
    for train, val in folds:
        assert train.dtype == np.int64 and val.dtype == np.int64
        assert len(val) > 0 and len(train) > 0
        assert np.array_equal(np.union1d(train, val), everything)
        assert not set(samples.groups[train].tolist()) & set(samples.groups[val].tolist()), (
            "a person is in both the training and the validation part of a fold"
        )


@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_no_person_on_both_sides_of_any_fold(demo_root: Path, n_splits: int) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    folds = kfold_splits(samples, n_splits, seed=0)
    assert len(folds) == n_splits
    assert_valid_folds(samples, folds)


def test_real_sized_split_is_grouped_stratified_and_fast() -> None:
    samples = real_sized_samples()
    start = time.perf_counter()
    folds = kfold_splits(samples, 5, seed=3)
    assert time.perf_counter() - start < 10
    assert_valid_folds(samples, folds)
    overall = np.bincount(samples.strata, minlength=6) / len(samples)
    for _, val in folds:
        share = np.bincount(samples.strata[val], minlength=6) / len(val)
        assert np.abs(share - overall).max() < 0.01, "each fold keeps the stratum shares"
        assert abs(len(val) / len(samples) - 0.2) < 0.01


def test_reproducible_from_the_seed(demo_root: Path) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    a, b = kfold_splits(samples, 3, seed=7), kfold_splits(samples, 3, seed=7)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    big = real_sized_samples(scale=0.2)
    c, d = kfold_splits(big, 5, seed=0), kfold_splits(big, 5, seed=1)
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(c, d, strict=True))


def test_folder_format_groups_each_image_alone() -> None:
    labels = np.array([0, 1] * 10, dtype=np.int64)
    samples = Samples(
        paths=[Path(f"/d/{i}.jpg") for i in range(20)],
        labels=labels,
        groups=np.array([f"c/{i}.jpg" for i in range(20)], dtype=object),
        strata=labels.copy(),
        class_names=["a", "b"],
        format="folder",
    )
    folds = kfold_splits(samples, 5, seed=0)
    assert_valid_folds(samples, folds)
    for _, val in folds:
        assert np.bincount(labels[val]).tolist() == [2, 2]


def test_fewer_groups_than_folds(demo_root: Path) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    few = samples.subset(np.flatnonzero(np.isin(samples.groups, samples.groups[:14])))
    with pytest.raises(DataError, match="cannot make 3 folds from 2 group"):
        kfold_splits(few, 3, seed=0)


@pytest.mark.parametrize(
    ("seed", "n_splits", "scale"), [(0, 5, 0.1), (1, 3, 0.1), (42, 5, 0.1), (7, 2, 0.1)]
)
def test_same_folds_as_scikit_learn(
    demo_root: Path, seed: int, n_splits: int, scale: float
) -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    for samples in (load_samples(DataConfig(root=demo_root)), real_sized_samples(seed, scale)):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        groups = samples.groups.astype(str)
        expected = list(splitter.split(np.zeros(len(samples)), samples.strata, groups))
        ours = kfold_splits(samples, n_splits, seed=seed)
        for (train, val), (want_train, want_val) in zip(ours, expected, strict=True):
            assert np.array_equal(val, want_val) and np.array_equal(train, want_train)
