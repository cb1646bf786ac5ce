"""Reader of the generic image-folder layout ``ROOT/<class>/*.jpg``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import load_samples
from hpo.exceptions import DataError

from .helpers import image_of, person_dirs


@pytest.fixture
def folder_root(demo_root: Path, tmp_path: Path) -> Path:
    """Three classes of demo images: masked, incorrect (in a nested folder), unmasked."""
    root = tmp_path / "pets"
    for k, person in enumerate(person_dirs(demo_root)[:4]):
        for stem, target in [
            ("mask1", "wear"),
            ("incorrect_mask", "incorrect/sub"),
            ("normal", "no_mask"),
        ]:
            source = image_of(person, stem)
            (root / target).mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / target / f"{k}{source.suffix}")
    (root / "README.txt").write_text("ignored: not in a class folder")
    (root / "wear" / "._0.jpg").write_bytes(b"\0")
    return root


def test_reads_class_folders(folder_root: Path) -> None:
    samples = load_samples(DataConfig(format="folder", root=folder_root))
    assert samples.format == "folder"
    assert samples.class_names == ["incorrect", "no_mask", "wear"]
    assert len(samples) == 12
    names = [samples.class_names[i] for i in samples.labels]
    assert names == [p.relative_to(folder_root).parts[0] for p in samples.paths]
    # Each image is its own group; folds stratify on the label.
    assert len(set(samples.groups.tolist())) == len(samples)
    assert "incorrect/sub/0.jpg" in set(samples.groups.tolist())
    assert np.array_equal(samples.strata, samples.labels)


def test_stray_file_in_a_class_folder(folder_root: Path) -> None:
    (folder_root / "wear" / "labels.csv").write_text("x")
    with pytest.raises(DataError, match=r"wear/labels.csv: unexpected file"):
        load_samples(DataConfig(format="folder", root=folder_root))


def test_image_outside_class_folders(folder_root: Path) -> None:
    shutil.copy(next((folder_root / "wear").glob("0.*")), folder_root / "lost.jpg")
    with pytest.raises(DataError, match=r"lost.jpg: image outside a class folder"):
        load_samples(DataConfig(format="folder", root=folder_root))


def test_needs_two_classes(folder_root: Path) -> None:
    shutil.rmtree(folder_root / "wear")
    shutil.rmtree(folder_root / "no_mask")
    with pytest.raises(DataError, match="found 1 class folder"):
        load_samples(DataConfig(format="folder", root=folder_root))


def test_empty_class_folder(folder_root: Path) -> None:
    (folder_root / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: class folder without images"):
        load_samples(DataConfig(format="folder", root=folder_root))


def test_corrections_are_for_the_competition_layout(folder_root: Path, tmp_path: Path) -> None:
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("target,field,value\n")
    with pytest.raises(DataError, match="format 'mask' only"):
        load_samples(DataConfig(format="folder", root=folder_root, corrections=fixes))
