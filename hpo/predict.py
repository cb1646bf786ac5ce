"""Predict with a trained run (one model or a fold ensemble) and write the submission file.

The eval images are decoded once at the run's ``data.image_size`` into the same decoded-image
cache as the training images. A fold ensemble averages the softmax probabilities of its models;
test-time augmentation (``tta``) also averages each model over horizontally flipped views. The
class with the highest mean probability is the prediction.

Two outputs:

* an eval folder with ``info.csv`` (the competition layout, and any folder run whose eval
  folder has one): ``info.csv`` with ``ans`` filled, every original column and row kept in the
  original order;
* a ``folder`` run on a plain folder of images (flat or in class folders, searched
  recursively): ``path,pred,class_name`` rows, ``path`` relative to the folder with ``/``
  separators, sorted, ``pred`` the class index and ``class_name`` its training folder name.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hpo.data import get_layout, load_eval, load_images
from hpo.data._folder import FOLDER_IMAGE_EXTENSIONS
from hpo.data._mask import find_eval_dir, is_metadata
from hpo.exceptions import DataError
from hpo.train import predict_proba
from hpo.train.runner import RunInfo, load_models, load_run

__all__ = [
    "EvalImages",
    "Predictions",
    "ensemble_proba",
    "find_eval_images",
    "predict_run",
    "write_predictions",
]

_log = logging.getLogger(__name__)

INFO_ID, INFO_ANS = "ImageID", "ans"


@dataclass(frozen=True)
class EvalImages:
    """The images to predict: their keys in the output file and their paths.

    Attributes:
        keys: ``ImageID`` (with ``info_csv``) or the path relative to ``root`` (without).
        paths: Image files, in the order of ``keys``.
        root: The eval folder.
        info_csv: The submission template, or None for a plain folder of images.
    """

    keys: list[str]
    paths: list[Path]
    root: Path
    info_csv: Path | None


@dataclass(frozen=True)
class Predictions:
    """What a run predicts for an eval set.

    Attributes:
        images: The eval set.
        proba: ``float32 (N, C)``, mean softmax probabilities over models (and flips with TTA).
        labels: ``int64 (N,)``, argmax of ``proba``; for images that failed to decode (only
            with ``data.skip_bad_files``), the class predicted most often for the others.
        class_names: Names of the classes, index = class id.
        mode: ``full`` (one model on all training data) or ``folds`` (an ensemble).
        n_models: How many models were averaged.
        tta: Whether flipped views were averaged too.
        bad: ``(file, reason)`` of eval images that failed to decode.
    """

    images: EvalImages
    proba: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    mode: str
    n_models: int
    tta: bool
    bad: list[tuple[Path, str]] = field(default_factory=list)


def ensemble_proba(
    models: Sequence[nn.Module],
    images: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 256,
    tta: bool = False,
    amp: bool = True,
    channels_last: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Mean softmax probabilities of ``models`` on ``images`` (``uint8 (N, H, W, 3)``).

    Each model runs in eval mode without gradients (``hpo.train.predict_proba``); with ``tta``
    each model's probabilities are already the mean over the image and its horizontal flip.

    Returns:
        ``float32 (N, C)``; rows sum to 1.
    """
    if not models:
        raise ValueError("ensemble_proba needs at least one model")
    total: np.ndarray | None = None
    for model in models:
        proba = predict_proba(
            model,
            images,
            device=device,
            batch_size=batch_size,
            tta=tta,
            amp=amp,
            channels_last=channels_last,
            progress=progress,
        ).astype(np.float64)
        total = proba if total is None else total + proba
    assert total is not None
    return (total / len(models)).astype(np.float32)


def _list_images(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_metadata(d))
        here = Path(dirpath)
        found.extend(
            here / name
            for name in sorted(filenames)
            if not is_metadata(name)
            and os.path.splitext(name)[1].lower() in FOLDER_IMAGE_EXTENSIONS
        )
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def find_eval_images(data: Path, data_format: str) -> EvalImages:
    """The eval images of ``data`` for a run trained on ``data_format``.

    Args:
        data: ``DATA/eval`` or ``DATA`` (competition layout); for ``folder`` runs also a plain
            folder of images, flat or in class folders.
        data_format: ``mask`` or ``folder`` (the run's ``data.format``).

    Raises:
        DataError: the folder is missing; for ``mask`` runs, ``info.csv`` is missing or
            malformed or an image is missing; for ``folder`` runs, it holds no image.
    """
    data = Path(data)
    eval_dir = find_eval_dir(data)
    if get_layout(data_format).eval_template or (eval_dir / "info.csv").is_file():
        eval_set = load_eval(data)
        return EvalImages(
            keys=list(eval_set.ids),
            paths=list(eval_set.paths),
            root=eval_set.info_csv.parent,
            info_csv=eval_set.info_csv,
        )
    if not data.is_dir():
        raise DataError(f"{data}: folder not found")
    root = data.absolute()
    paths = _list_images(root)
    if not paths:
        exts = "/".join(FOLDER_IMAGE_EXTENSIONS)
        raise DataError(f"{root}: no images found ({exts}, searched recursively)")
    keys = [p.relative_to(root).as_posix() for p in paths]
    return EvalImages(keys=keys, paths=paths, root=root, info_csv=None)


def predict_run(
    run_dir: Path,
    data: Path,
    *,
    device: torch.device,
    tta: bool = False,
    batch_size: int = 256,
    progress: bool = False,
) -> Predictions:
    """Predict every eval image with the run's model(s).

    Args:
        run_dir: A directory written by ``hpo train``.
        data: The eval data (see ``find_eval_images``).
        device: Where the models run.
        tta: Also average over horizontally flipped views.
        batch_size: Images per forward pass.
        progress: Show progress bars (decoding, each model's pass) on stderr.

    Raises:
        ConfigError: ``run_dir`` is not a finished run.
        DataError: the eval data is missing or malformed, or an image does not decode (unless
            the run's config sets ``data.skip_bad_files``).
    """
    info: RunInfo = load_run(Path(run_dir))
    config = info.config
    images = find_eval_images(data, config.data.format)
    decoded = load_images(
        images.paths,
        config.data.image_size,
        cache_dir=config.data.cache_dir,
        skip_bad_files=config.data.skip_bad_files,
        progress=progress,
        crop=config.data.crop,
    )
    models = load_models(info, device)
    _log.info(
        "predicting %d images with %d model(s) (%s)%s on %s",
        len(images.keys),
        len(models),
        info.mode,
        " with TTA" if tta else "",
        device,
    )
    proba = ensemble_proba(
        models,
        np.asarray(decoded.array),
        device=device,
        batch_size=batch_size,
        tta=tta,
        amp=config.train.amp,
        channels_last=config.train.channels_last,
        progress=progress,
    )
    if proba.shape != (len(images.keys), info.num_classes):
        raise DataError(
            f"{run_dir}: models gave probabilities of shape {proba.shape}, expected "
            f"({len(images.keys)}, {info.num_classes})"
        )
    labels = proba.argmax(axis=1).astype(np.int64)
    ok = np.asarray(decoded.ok, dtype=bool)
    if not ok.all():
        # Every row of a submission needs a class: an unreadable image gets the one predicted
        # most often for the others, not a guess from the zero pixels the cache holds for it.
        fallback = (
            int(np.bincount(labels[ok], minlength=info.num_classes).argmax()) if ok.any() else 0
        )
        labels[~ok] = fallback
    return Predictions(
        images=images,
        proba=proba,
        labels=labels,
        class_names=list(info.class_names),
        mode=info.mode,
        n_models=len(models),
        tta=tta,
        bad=list(decoded.bad),
    )


def _write_info_csv(pred: Predictions, template: Path, out: Path) -> None:
    by_id = {key: int(label) for key, label in zip(pred.images.keys, pred.labels, strict=True)}
    with template.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        rows = list(reader)
    if not rows:
        raise DataError(f"{template}: empty file (expected the header ImageID,ans)")
    header = [c.strip() for c in rows[0]]
    for column in (INFO_ID, INFO_ANS):
        if column not in header:
            raise DataError(f"{template}: no {column!r} column; columns: {', '.join(header)}")
    id_col, ans_col = header.index(INFO_ID), header.index(INFO_ANS)
    body = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(header) - len(row))
        key = row[id_col].strip()
        if key not in by_id:
            raise DataError(f"{template}:{line}: ImageID {key!r} was not predicted")
        row[ans_col] = str(by_id[key])
        body.append(row)
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(rows[0])
        writer.writerows(body)


def write_predictions(pred: Predictions, out: Path) -> Path:
    """Write the submission (``info.csv`` with ``ans`` filled) or ``path,pred,class_name`` rows.

    The file is written next to ``out`` and renamed into place, so an interrupted run never
    leaves a half-written submission.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if pred.images.info_csv is not None:
            _write_info_csv(pred, pred.images.info_csv, tmp)
        else:
            with tmp.open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(["path", "pred", "class_name"])
                for key, label in zip(pred.images.keys, pred.labels, strict=True):
                    writer.writerow([key, int(label), pred.class_names[int(label)]])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
