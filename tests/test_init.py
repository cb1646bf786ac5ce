"""hpo init's library: what is read from a folder of images and the study file chosen from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from hpo.exceptions import ConfigError, DataError
from hpo.scaffold import (
    init_study,
    pick_image_size,
    scaffold_study,
    study_name_for,
    summarize_data,
)
from hpo.study import load_study_spec


def make_images(root: Path, counts: dict[str, int], size: tuple[int, int] = (24, 32)) -> Path:
    """Real PNG files: ``root/<class>/<k>.png`` of ``size`` (height, width)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    return root


def test_reads_classes_counts_and_sizes_of_a_flat_folder(tmp_path: Path) -> None:
    root = make_images(tmp_path / "shapes", {"circle": 3, "square": 4, "triangle": 5})
    summary = summarize_data(root)
    assert summary.layout == "folder"
    assert summary.class_counts == {"circle": 3, "square": 4, "triangle": 5}
    assert summary.median_size == (24, 32)
    assert summary.sizes_read == 12
    assert summary.groups == 3  # images of the smallest class: the most folds


def test_a_split_root_is_read_from_train(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    make_images(root / "train", {"circle": 4, "square": 4})
    make_images(root / "eval", {"circle": 2, "square": 2})
    summary = summarize_data(root)
    # Never classes named train and eval.
    assert summary.class_counts == {"circle": 4, "square": 4}
    made = scaffold_study(root, studies_dir=tmp_path / "studies")
    assert made.name == "shapes"
    assert made.n_splits == 4


def test_study_file_loads_and_says_what_was_chosen(tmp_path: Path) -> None:
    root = make_images(tmp_path / "My Shapes!", {"circle": 3, "square": 9})
    made = init_study(root, studies_dir=tmp_path / "studies")
    assert made.name == "my-shapes"
    assert made.path == tmp_path / "studies" / "my-shapes.yaml"
    assert made.path.read_text() == made.text
    spec = load_study_spec(made.path)
    config = spec.base_config()
    assert config.data.format == "folder"
    assert config.data.root == root
    assert config.data.image_size == (32, 40)  # 24x32 images: the CPU floor, 3:4 kept
    assert config.train.model.name == "small_cnn"
    assert config.train.kfold.n_splits == 3  # the smallest class has 3 images
    # 3x more squares than circles: losses for imbalance are searched.
    losses = spec.search_space["train.loss"]["choice"]
    assert {"focal", "label_smoothing"} <= set(losses)
    # Comments say what choices do; the next commands are listed.
    assert "# K-fold split, stratified by class" in made.text
    assert "# The classes are imbalanced (3.0x" in made.text
    assert made.next_commands == [
        f"hpo data check '{root.as_posix()}'",
        "hpo run --study my-shapes --dry-run",
        "hpo run --study my-shapes --n-trials 30",
    ]
    lines = [line for line in made.text.splitlines() if root.name not in line]
    assert all(len(line) <= 99 for line in lines)


def test_balanced_classes_and_gpu_settings(tmp_path: Path) -> None:
    root = make_images(tmp_path / "pets", {"cat": 6, "dog": 6}, size=(300, 400))
    made = scaffold_study(root, gpu=True, studies_dir=tmp_path)
    data = yaml.safe_load(made.text)
    assert data["data"]["image_size"] == [224, 304]  # multiples of 16, aspect 3:4 kept
    assert data["train"]["model"]["weights"] == "imagenet"
    models = data["search_space"]["train.model"]["choice"]
    assert all(params["weights"] == "imagenet" for params in models.values())
    assert data["train"]["kfold"] == {"n_splits": 5, "folds": 1}  # at most 5
    assert set(data["search_space"]["train.loss"]["choice"]) == {
        "cross_entropy",
        "label_smoothing",
    }
    assert made.next_commands[0].startswith("hpo models download efficientnet_b0")
    # Loads and validates like any study file.
    (tmp_path / "pets.yaml").write_text(made.text)
    assert load_study_spec(tmp_path / "pets.yaml").base_config().train.amp


@pytest.mark.parametrize(
    ("size", "gpu", "n", "expected"),
    [
        ((512, 384), False, 100, (128, 96)),
        ((512, 384), False, 10_000, (88, 64)),
        ((384, 512), True, 100, (224, 304)),
        ((100, 1000), True, 100, (224, 448)),  # aspect capped at 2:1
        ((20, 20), False, 100, (32, 32)),  # never below 32
        ((60, 90), False, 100, (56, 88)),  # never above the images' short side
    ],
)
def test_image_size(size: tuple[int, int], gpu: bool, n: int, expected: tuple[int, int]) -> None:
    height, width = pick_image_size(*size, gpu=gpu, n_images=n)
    assert (height, width) == expected
    assert height % (16 if gpu else 8) == 0 and width % (16 if gpu else 8) == 0


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("shapes", "shapes"), ("My Shapes!", "my-shapes"), ("data.v2", "data.v2"), ("__", "images")],
)
def test_study_name_from_the_folder(tmp_path: Path, folder: str, expected: str) -> None:
    assert study_name_for(tmp_path / folder) == expected
    assert study_name_for(tmp_path / "pets" / "train") == "pets"


def test_refusals_write_nothing(tmp_path: Path) -> None:
    studies = tmp_path / "studies"
    one = make_images(tmp_path / "one", {"a": 3, "b": 1})
    with pytest.raises(
        DataError, match=r"one: class 'b' has 1 image; every class needs at least 2"
    ):
        init_study(one, studies_dir=studies)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: found 0 class folder\(s\) with images"):
        init_study(tmp_path / "empty", studies_dir=studies)
    with pytest.raises(DataError, match=r"missing: folder not found"):
        init_study(tmp_path / "missing", studies_dir=studies)
    with pytest.raises(ConfigError, match="study name 'a/b' is not allowed"):
        init_study(one, name="a/b", studies_dir=studies)
    assert not studies.exists()
    ok = make_images(tmp_path / "ok", {"a": 2, "b": 2})
    studies.mkdir()
    (studies / "ok.yaml").write_text("mine\n")
    with pytest.raises(ConfigError, match=r"ok.yaml exists: pass --force to overwrite it"):
        init_study(ok, studies_dir=studies)
    assert (studies / "ok.yaml").read_text() == "mine\n"
    assert sorted(p.name for p in studies.iterdir()) == ["ok.yaml"]  # no temp file left
    init_study(ok, studies_dir=studies, force=True)
    assert (studies / "ok.yaml").read_text().startswith("# Study ok:")
