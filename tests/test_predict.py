"""hpo predict: ensemble averaging, TTA views, eval listings, the submission rows and format."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.exceptions import DataError
from hpo.predict import (
    EvalImages,
    Predictions,
    ensemble_proba,
    find_eval_images,
    write_predictions,
)
from hpo.train import predict_proba
from hpo.train.models import MODELS

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models() -> list[torch.nn.Module]:
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        out.append(MODELS.create("small_cnn", num_classes=18, width=8))
    return out


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 32, 24, 3), dtype=np.uint8)


@pytest.mark.parametrize("tta", [False, True])
def test_ensemble_is_mean_of_single_models(
    models: list[torch.nn.Module], images: np.ndarray, tta: bool
) -> None:
    ens = ensemble_proba(models, images, device=CPU, batch_size=4, tta=tta)
    singles = [predict_proba(m, images, device=CPU, batch_size=4, tta=tta) for m in models]
    assert ens.shape == (10, 18)
    np.testing.assert_allclose(ens, np.mean(singles, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ens.sum(axis=1), 1.0, rtol=1e-5)
    # The models differ, so the mean is not just one of them.
    assert not np.allclose(singles[0], singles[1], atol=1e-4)


def test_tta_averages_the_horizontal_flip(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    plain = ensemble_proba(models, images, device=CPU)
    flipped = ensemble_proba(models, np.ascontiguousarray(images[:, :, ::-1]), device=CPU)
    tta = ensemble_proba(models, images, device=CPU, tta=True)
    np.testing.assert_allclose(tta, (plain + flipped) / 2, rtol=1e-4, atol=1e-6)


def test_ensemble_does_not_train_or_keep_grads(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    model = models[0]
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ensemble_proba([model], images, device=CPU)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics unchanged
    assert all(p.grad is None for p in model.parameters())


def test_ensemble_needs_a_model(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="at least one model"):
        ensemble_proba([], images, device=CPU)


def _info_csv(eval_dir: Path, ids: list[str], extra: bool = True) -> None:
    (eval_dir / "images").mkdir(parents=True)
    for image_id in ids:
        (eval_dir / "images" / image_id).write_bytes(b"")
    header = "ImageID,ans,note\n" if extra else "ImageID,ans\n"
    rows = "".join(f"{i},,n{k}\n" if extra else f"{i},\n" for k, i in enumerate(ids))
    (eval_dir / "info.csv").write_text(header + rows)


def _predictions(images: EvalImages, labels: list[int], classes: int = 18) -> Predictions:
    proba = np.eye(classes, dtype=np.float32)[labels]
    return Predictions(
        images=images,
        proba=proba,
        labels=np.asarray(labels),
        class_names=[f"c{k}" for k in range(classes)],
        mode="folds",
        n_models=2,
        tta=False,
    )


def test_submission_keeps_rows_order_and_columns(tmp_path: Path) -> None:
    ids = ["f3.jpg", "a1.jpg", "0b.jpg", "e9.jpg"]  # not sorted: order must be info.csv's
    _info_csv(tmp_path / "data" / "eval", ids)
    images = find_eval_images(tmp_path / "data", "mask")
    assert images.keys == ids
    assert images.info_csv == (tmp_path / "data" / "eval" / "info.csv").absolute()
    out = write_predictions(_predictions(images, [17, 0, 5, 5]), tmp_path / "sub" / "s.csv")
    text = out.read_text()
    assert text == "ImageID,ans,note\nf3.jpg,17,n0\na1.jpg,0,n1\n0b.jpg,5,n2\ne9.jpg,5,n3\n"
    assert not list(out.parent.glob(".*tmp"))


def test_submission_rows_match_by_id_not_position(tmp_path: Path) -> None:
    _info_csv(tmp_path / "eval", ["x.jpg", "y.jpg"], extra=False)
    images = find_eval_images(tmp_path / "eval", "mask")
    swapped = EvalImages(
        keys=images.keys[::-1],
        paths=images.paths[::-1],
        root=images.root,
        info_csv=images.info_csv,
    )
    out = write_predictions(_predictions(swapped, [1, 2]), tmp_path / "s.csv")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["ImageID"], r["ans"]) for r in rows] == [("x.jpg", "2"), ("y.jpg", "1")]


def test_folder_eval_lists_images_recursively(tmp_path: Path) -> None:
    root = tmp_path / "holdout"
    for rel in ["cat/1.jpg", "cat/._1.jpg", "dog/b/2.PNG", "z.jpeg", "notes.txt", ".DS_Store"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    images = find_eval_images(root, "folder")
    assert images.info_csv is None
    assert images.keys == ["cat/1.jpg", "dog/b/2.PNG", "z.jpeg"]
    out = write_predictions(_predictions(images, [1, 0, 1], classes=2), tmp_path / "p.csv")
    assert out.read_text() == (
        "path,pred,class_name\ncat/1.jpg,1,c1\ndog/b/2.PNG,0,c0\nz.jpeg,1,c1\n"
    )


def test_folder_run_uses_info_csv_when_present(tmp_path: Path) -> None:
    _info_csv(tmp_path / "eval", ["a.jpg"])
    assert find_eval_images(tmp_path / "eval", "folder").info_csv is not None


def test_eval_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        find_eval_images(tmp_path / "empty", "folder")
    with pytest.raises(DataError, match=r"info\.csv"):
        find_eval_images(tmp_path / "empty", "mask")
    with pytest.raises(DataError, match="not found"):
        find_eval_images(tmp_path / "missing", "folder")
