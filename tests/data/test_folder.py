"""Reader of the generic image-folder layout ``ROOT/<class>/*.jpg`` (or ``ROOT/train/<class>``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import check_data, load_samples
from hpo.exceptions import DataError

from .helpers import SHAPES, draw_shapes, image_of, person_dirs


@pytest.fixture
def folder_root(demo_root: Path, tmp_path: Path) -> Path:
    """Three classes of demo images: masked, incorrect, unmasked."""
    root = tmp_path / "pets"
    for k, person in enumerate(person_dirs(demo_root)[:4]):
        for stem, target in [
            ("mask1", "wear"),
            ("incorrect_mask", "incorrect"),
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
    assert "incorrect/0.jpg" in set(samples.groups.tolist())
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


# ---------------------------------------------------------------------------------------------
# Real folders of small JPEGs, as a user's own data set looks (issue 26).


def test_flat_class_folders_of_real_images(tmp_path: Path) -> None:
    draw_shapes(tmp_path / "shapes")
    samples = load_samples(DataConfig(format="folder", root=tmp_path / "shapes"))
    assert samples.class_names == list(SHAPES) and len(samples) == 12
    assert samples.groups.tolist()[0] == "circle/0.jpg"


def test_a_root_split_into_train_and_eval_trains_on_train(tmp_path: Path) -> None:
    # The misread of issue 26: `eval` and `train` used to be the two classes.
    root = tmp_path / "shapes"
    draw_shapes(root / "train", n=4)
    draw_shapes(root / "eval", n=2, seed=1)
    samples = load_samples(DataConfig(format="folder", root=root))
    assert samples.class_names == list(SHAPES) and len(samples) == 12
    assert all(p.is_relative_to(root / "train") for p in samples.paths)
    flat = tmp_path / "flat"
    draw_shapes(flat, n=4)
    # The same images as a flat root: the same groups, so the same folds.
    assert (
        samples.groups.tolist()
        == load_samples(DataConfig(format="folder", root=flat)).groups.tolist()
    )
    report = check_data(root, format="folder")
    assert report.ok and report.class_counts == [4, 4, 4] and report.eval_images == 6


def test_a_train_folder_without_eval_is_split_when_it_holds_class_folders(
    tmp_path: Path,
) -> None:
    draw_shapes(tmp_path / "shapes" / "train")
    samples = load_samples(DataConfig(format="folder", root=tmp_path / "shapes"))
    assert samples.class_names == list(SHAPES)


def test_a_class_named_train_is_still_a_class(tmp_path: Path) -> None:
    root = tmp_path / "vehicles"
    draw_shapes(root)
    (root / "circle").rename(root / "train")
    samples = load_samples(DataConfig(format="folder", root=root))
    assert samples.class_names == ["square", "train", "triangle"]


def test_a_class_folder_holding_folders_is_refused_by_name(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    draw_shapes(root)
    draw_shapes(root / "square" / "more")
    with pytest.raises(DataError) as caught:
        load_samples(DataConfig(format="folder", root=root))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'square'}: class folder holds folders (more)")
    report = check_data(root, format="folder", decode=False)
    assert report.class_names == ["circle", "triangle"]  # never read as a class


def test_a_root_one_level_too_high_is_refused(tmp_path: Path) -> None:
    # data.root pointing above the split: data/ holding shapes/train and shapes/eval.
    draw_shapes(tmp_path / "data" / "shapes" / "train")
    draw_shapes(tmp_path / "data" / "shapes" / "eval")
    with pytest.raises(DataError, match=r"shapes: class folder holds folders \(eval, train\)"):
        load_samples(DataConfig(format="folder", root=tmp_path / "data"))


def test_a_split_root_with_other_folders_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    draw_shapes(root / "train")
    draw_shapes(root / "eval")
    draw_shapes(root / "val")
    with pytest.raises(DataError, match=r"shapes/val: unexpected folder beside train/ and eval/"):
        load_samples(DataConfig(format="folder", root=root))


def test_images_in_a_split_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    draw_shapes(root / "train")
    (root / "eval").mkdir()
    shutil.copy(root / "train" / "circle" / "0.jpg", root / "stray.jpg")
    shutil.copy(root / "train" / "circle" / "0.jpg", root / "train" / "stray.jpg")
    with pytest.raises(DataError, match=r"shapes/stray.jpg: image outside a class folder"):
        load_samples(DataConfig(format="folder", root=root))
    report = check_data(root, format="folder", decode=False)
    assert [p.problem for p in report.problems] == ["image outside a class folder"] * 2
