"""Label corrections applied at load time, and their errors."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import Samples, data_fingerprint, load_samples
from hpo.exceptions import DataError

from .helpers import person_dirs


def _rows_of(samples: Samples, folder: str) -> np.ndarray:
    return np.flatnonzero(samples.groups == folder)


def _load(root: Path, fixes: Path) -> Samples:
    return load_samples(DataConfig(root=root, corrections=fixes))


def test_gender_by_id_applies_to_every_folder_with_that_id(
    demo_root: Path, tmp_path: Path
) -> None:
    plain = load_samples(DataConfig(root=demo_root))
    ids = Counter(g.split("_")[0] for g in set(plain.groups.tolist()))
    shared = next(i for i, n in ids.items() if n == 2)
    folders = sorted(g for g in set(plain.groups.tolist()) if g.startswith(shared + "_"))
    gender = folders[0].split("_")[1]
    flipped = "male" if gender == "female" else "female"
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value,note\n# a comment line\n{shared},gender,{flipped},x\n")
    fixed = _load(demo_root, fixes)
    for folder in folders:
        rows = _rows_of(plain, folder)
        delta = 3 if flipped == "female" else -3
        assert (fixed.labels[rows] == plain.labels[rows] + delta).all()
        assert (fixed.strata[rows] == plain.strata[rows] + delta).all()
    others = ~np.isin(plain.groups, folders)
    assert np.array_equal(fixed.labels[others], plain.labels[others])


def test_age_by_folder_moves_the_age_group(demo_root: Path, tmp_path: Path) -> None:
    plain = load_samples(DataConfig(root=demo_root))
    folder = next(g for g in plain.groups.tolist() if int(g.rsplit("_", 1)[1]) < 30)
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value\n{folder},age,60\n")
    fixed = _load(demo_root, fixes)
    rows = _rows_of(plain, folder)
    assert (fixed.labels[rows] == plain.labels[rows] + 2).all()


def test_swap_exchanges_the_labels_of_two_photos(demo_root: Path, tmp_path: Path) -> None:
    plain = load_samples(DataConfig(root=demo_root))
    folder = person_dirs(demo_root)[0].name
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value\n{folder},swap,incorrect_mask/normal\n")
    fixed = _load(demo_root, fixes)

    def label_of(samples: Samples, stem: str) -> int:
        (i,) = [i for i in _rows_of(samples, folder) if samples.paths[i].stem == stem]
        return int(samples.labels[i])

    assert label_of(fixed, "incorrect_mask") == label_of(plain, "normal")
    assert label_of(fixed, "normal") == label_of(plain, "incorrect_mask")
    assert label_of(fixed, "mask1") == label_of(plain, "mask1")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("999999,gender,male", "unknown target '999999'"),
        ("{folder},colour,red", "unknown field 'colour' (known: gender, age, swap)"),
        ("{folder},gender,robot", "unparseable gender 'robot'"),
        ("{folder},age,old", "unparseable age 'old'"),
        ("{folder},swap,mask1/mask1", "invalid swap 'mask1/mask1'"),
        ("{folder},age,40\n{folder},age,41", "age of {folder} already corrected at line 2"),
    ],
)
def test_bad_correction_names_file_and_line(
    demo_root: Path, tmp_path: Path, line: str, message: str
) -> None:
    folder = person_dirs(demo_root)[1].name
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("target,field,value\n" + line.format(folder=folder) + "\n")
    bad_line = 2 + line.count("\n")
    expected = rf"{re.escape(str(fixes))}:{bad_line}: {re.escape(message.format(folder=folder))}"
    with pytest.raises(DataError, match=expected):
        _load(demo_root, fixes)


def test_corrections_file_without_column(demo_root: Path, tmp_path: Path) -> None:
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("target,value\nx,1\n")
    with pytest.raises(DataError, match=r"fixes.csv:1: missing required column 'field'"):
        _load(demo_root, fixes)


def test_corrections_are_part_of_the_fingerprint(demo_root: Path, tmp_path: Path) -> None:
    folder = person_dirs(demo_root)[0].name
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"target,field,value\n{folder},swap,mask1/mask2\n")  # labels unchanged
    plain_cfg, fixed_cfg = (
        DataConfig(root=demo_root),
        DataConfig(root=demo_root, corrections=fixes),
    )
    plain, fixed = load_samples(plain_cfg), load_samples(fixed_cfg)
    assert np.array_equal(plain.labels, fixed.labels)
    assert data_fingerprint(plain_cfg, plain) != data_fingerprint(fixed_cfg, fixed)
