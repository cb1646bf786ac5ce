"""Predict with a trained run (one model or a fold ensemble) and write the submission file.

The eval images are decoded once at the run's ``data.image_size`` into the same decoded-image
cache as the training images, and go to the device once for every model of every run. A fold
ensemble averages the softmax probabilities of its models; several runs (``--run A --run B``,
or an ``hpo ensemble`` file) average their runs' probabilities, with weights. Test-time
augmentation averages each model over views of each image that the run was trained to be
invariant to (:data:`TTA_VIEWS`): ``hflip`` only for runs trained with ``augment.hflip``,
``scale`` (a centre crop resized back) only for runs trained with random crops
(``augment.crop_scale`` < 1). All views of a batch go through the model in one forward pass.
The class with the highest mean probability is the prediction.

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
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hpo.config import TrainConfig
from hpo.data import get_layout, load_eval, load_images, prepare_batch
from hpo.data._folder import FOLDER_IMAGE_EXTENSIONS, find_class_root
from hpo.data._mask import find_eval_dir, is_metadata
from hpo.exceptions import ConfigError, DataError
from hpo.files import atomic_path
from hpo.train.loop import StepProgress, amp_dtype, decoding_progress
from hpo.train.runner import RunInfo, load_models, load_run

__all__ = [
    "TTA_VIEWS",
    "EvalImages",
    "Predictions",
    "check_compatible",
    "ensemble_proba",
    "find_eval_images",
    "predict_run",
    "predict_runs",
    "resolve_views",
    "safe_views",
    "upload_images",
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
        proba: ``float32 (N, C)``, mean softmax probabilities over models (and TTA views).
        labels: ``int64 (N,)``, argmax of ``proba`` (times the class weights, if any); for
            images that failed to decode (only with ``data.skip_bad_files``), the class
            predicted most often for the others.
        class_names: Names of the classes, index = class id.
        mode: ``full`` (one model on all training data), ``folds`` (a fold ensemble) or
            ``runs`` (several runs averaged).
        n_models: How many models were averaged.
        tta: Whether views other than the image itself were averaged too.
        bad: ``(file, reason)`` of eval images that failed to decode.
        runs: The run directories, in the order given.
        weights: Each run's weight in the average (they sum to 1).
        views: Each run's TTA views (empty without TTA).
    """

    images: EvalImages
    proba: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    mode: str
    n_models: int
    tta: bool
    bad: list[tuple[Path, str]] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    views: list[tuple[str, ...]] = field(default_factory=list)


TTA_VIEWS = ("hflip", "scale")
"""Test-time views: ``hflip`` the mirror image, ``scale`` a centre crop resized back (keeping
``(1 + crop_scale) / 2`` of each side, the middle of the crops the run trained on). Several
views combine: ``hflip,scale`` averages the image, its zoom and the mirror image of both."""


def safe_views(config: TrainConfig) -> dict[str, str | None]:
    """Each TTA view and why it is unsafe for a run trained with ``config`` (None: safe).

    A view is safe when training showed the model such images: flips only when
    ``train.augment.hflip`` is on, zooms only with random crops (``crop_scale`` < 1).
    """
    augment = config.train.augment
    return {
        "hflip": None if augment.hflip else "train.augment.hflip: false (never flipped)",
        "scale": None
        if augment.crop_scale < 1.0
        else f"train.augment.crop_scale: {augment.crop_scale:g} (never cropped)",
    }


def resolve_views(
    config: TrainConfig, tta: bool | str | Sequence[str] | None, run: str = "the run"
) -> tuple[str, ...]:
    """The TTA views to use for a run: ``True``/``"all"`` every view safe for it, ``False``/None
    none, a list (or ``"hflip,scale"``) exactly those, each checked against the run's config.

    Raises:
        ConfigError: An unknown view, or a view the run was not trained to be invariant to.
    """
    if tta is None or tta is False or tta == "":
        return ()
    safety = safe_views(config)
    if tta is True or (isinstance(tta, str) and tta.strip().lower() == "all"):
        return tuple(v for v in TTA_VIEWS if safety[v] is None)
    names = [v.strip() for v in tta.split(",")] if isinstance(tta, str) else list(tta)
    names = [v for v in names if v]
    for name in names:
        if name not in safety:
            raise ConfigError(
                f"--tta {name}: unknown view; views: {', '.join(TTA_VIEWS)} (or all)"
            )
        reason = safety[name]
        if reason is not None:
            ok = [v for v in TTA_VIEWS if safety[v] is None]
            raise ConfigError(
                f"--tta {name}: unsafe for {run}, trained with {reason}; views safe for it: "
                f"{', '.join(ok) or 'none'}"
            )
    return tuple(v for v in TTA_VIEWS if v in names)


def zoom_of(config: TrainConfig) -> float:
    """Fraction of each side the ``scale`` view keeps for a run trained with ``config``."""
    return (1.0 + config.train.augment.crop_scale) / 2.0


_SHARED: tuple[tuple[str, Callable[[RunInfo], Any]], ...] = (
    ("classes", lambda info: list(info.class_names)),
    ("data.format", lambda info: info.config.data.format),
    ("data.image_size", lambda info: list(info.config.data.image_size)),
    (
        "data.crop",
        lambda info: None if info.config.data.crop is None else list(info.config.data.crop),
    ),
)
"""What runs averaged together must share. Normalization is not configurable (every run uses
the ImageNet mean and standard deviation, ``hpo.data.prepare_batch``), so it always agrees."""


def _short(value: Any) -> str:
    if isinstance(value, list) and len(value) > 4 and all(isinstance(v, str) for v in value):
        return f"{len(value)} classes {value[0]!r}..{value[-1]!r}"
    return str(value)


def check_compatible(infos: Sequence[RunInfo]) -> None:
    """Refuse runs that cannot be averaged: their classes, data layout or image handling differ.

    Raises:
        ConfigError: One line naming two runs, the setting and both values.
    """
    first = infos[0]
    for info in infos[1:]:
        for name, get in _SHARED:
            a, b = get(first), get(info)
            if a != b:
                raise ConfigError(
                    f"runs {first.run_dir} and {info.run_dir} differ in {name} "
                    f"({_short(a)} against {_short(b)}); only runs with the same classes, data "
                    "layout and image handling can be averaged"
                )


def upload_images(images: np.ndarray, device: torch.device) -> np.ndarray | torch.Tensor:
    """The eval images where every model reads them: on CUDA one ``uint8`` tensor on the device
    (copied once, in pinned chunks), on the CPU the array itself (sliced per batch)."""
    if device.type != "cuda":
        return images
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    chunk = 1024
    for begin in range(0, len(images), chunk):
        part = torch.from_numpy(np.array(images[begin : begin + chunk])).pin_memory()
        out[begin : begin + chunk].copy_(part, non_blocking=True)
    return out


def _batch(
    images: np.ndarray | torch.Tensor, begin: int, end: int, device: torch.device
) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[begin:end].to(device)
    return torch.from_numpy(np.array(images[begin:end])).to(device)


def _zoom(x: torch.Tensor, keep: float) -> torch.Tensor:
    """The centre ``keep`` of each side of ``x`` (``B, 3, H, W``), resized back to ``H, W``."""
    height, width = x.shape[-2:]
    h, w = max(1, round(height * keep)), max(1, round(width * keep))
    top, left = (height - h) // 2, (width - w) // 2
    crop = x[..., top : top + h, left : left + w]
    return F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)


def _with_views(x: torch.Tensor, views: Sequence[str], zoom: float) -> torch.Tensor:
    """``x`` followed by every combination of ``views``: ``(V * B, 3, H, W)``, plain first."""
    out = [x]
    if "scale" in views:
        out += [_zoom(v, zoom) for v in out]
    if "hflip" in views:
        out += [v.flip(3) for v in out]
    return torch.cat(out) if len(out) > 1 else x


def ensemble_proba(
    models: Sequence[nn.Module],
    images: np.ndarray | torch.Tensor,
    *,
    device: torch.device,
    batch_size: int = 256,
    tta: bool | Sequence[str] = False,
    zoom: float = 0.95,
    amp: bool = True,
    channels_last: bool = True,
    progress: StepProgress | None = None,
) -> np.ndarray:
    """Mean softmax probabilities of ``models`` on ``images`` (``uint8 (N, H, W, 3)``, a host
    array or a tensor from :func:`upload_images`).

    Each model runs in eval mode without gradients. With ``tta`` (``True``: the mirror image;
    or view names from :data:`TTA_VIEWS`) each image's probabilities are the mean over its
    views, all views of a batch in one forward pass of at most ``batch_size`` inputs.
    ``amp`` and ``channels_last`` apply on CUDA only.

    Returns:
        ``float32 (N, C)``; rows sum to 1.
    """
    if not models:
        raise ValueError("ensemble_proba needs at least one model")
    if isinstance(tta, bool):
        views: tuple[str, ...] = ("hflip",) if tta else ()
    else:
        views = tuple(v.strip() for v in (tta.split(",") if isinstance(tta, str) else tta))
    unknown = sorted(set(views) - set(TTA_VIEWS))
    if unknown:
        raise ValueError(f"unknown TTA view {unknown[0]!r}; views: {', '.join(TTA_VIEWS)}")
    n_views = 2 ** len(set(views))
    step = max(1, batch_size // n_views)
    dtype = amp_dtype(device, amp)
    channels_last = channels_last and device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    n = len(images)
    if n == 0:
        raise DataError("no images to predict")
    total = torch.zeros((), dtype=torch.float64, device=device)
    for model in models:
        model.eval()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        chunks = []
        starts = range(0, n, step)
        if progress is not None:
            progress("predict", 0, len(starts))
        with torch.inference_mode():
            for done, begin in enumerate(starts, 1):
                x = prepare_batch(_batch(images, begin, begin + step, device), augment=None)
                x = _with_views(x, views, zoom).contiguous(memory_format=memory_format)
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = model(x)
                probs = logits.float().softmax(1)
                chunks.append(probs.view(n_views, -1, probs.shape[1]).mean(0))
                if progress is not None:
                    progress("predict", done, len(starts))
        total = total + torch.cat(chunks).double()
    return (total / len(models)).cpu().numpy().astype(np.float32)


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
            folder of images, flat or in class folders, or a data root holding ``train/`` and
            ``eval/`` (its ``eval/`` images are predicted).
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
    if find_class_root(root) != root and (root / "eval").is_dir():
        # A data root split into train/ and eval/ (as the run trained on): predict eval/ only.
        root = root / "eval"
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
    tta: bool | str | Sequence[str] | None = False,
    batch_size: int = 256,
    progress: StepProgress | None = None,
) -> Predictions:
    """Predict every eval image with the run's model(s): :func:`predict_runs` of one run."""
    return predict_runs(
        [run_dir], data, device=device, tta=tta, batch_size=batch_size, progress=progress
    )


def _weights(weights: Sequence[float] | None, runs: Sequence[Path]) -> list[float]:
    if weights is None:
        return [1.0 / len(runs)] * len(runs)
    values = [float(w) for w in weights]
    text = ",".join(f"{w:g}" for w in values)
    if len(values) != len(runs):
        raise ConfigError(
            f"--weights {text}: {len(values)} weight(s) for {len(runs)} run(s); give one per --run"
        )
    if any(not math.isfinite(w) or w < 0 for w in values) or sum(values) <= 0:
        raise ConfigError(f"--weights {text}: weights must be >= 0, finite, and not all 0")
    return [w / sum(values) for w in values]


def predict_runs(
    run_dirs: Sequence[Path],
    data: Path,
    *,
    device: torch.device,
    weights: Sequence[float] | None = None,
    tta: bool | str | Sequence[str] | None = False,
    batch_size: int = 256,
    progress: StepProgress | None = None,
    class_weights: Sequence[float] | None = None,
) -> Predictions:
    """Predict every eval image with the weighted mean of several runs' probabilities.

    Each run is itself the mean of its models (a fold ensemble or one full model). The runs
    must share classes, data layout and image handling (:func:`check_compatible`); the eval
    images are decoded once and go to the device once for all of them.

    Args:
        run_dirs: Directories written by ``hpo train``.
        data: The eval data (see ``find_eval_images``).
        device: Where the models run.
        weights: One weight per run (normalized to sum 1); default equal weights.
        tta: ``True`` or ``"all"``: every view safe for each run; a list or comma-separated
            names (``"hflip,scale"``): those views, each of which must be safe for every run
            (:func:`resolve_views`); ``False``/None: no TTA.
        batch_size: Inputs per forward pass (views included).
        progress: Told of each model's pass (``hpo.train.loop.StepProgress``); with it,
            decoding shows its own progress too.
        class_weights: Per-class decision weights (``hpo ensemble --thresholds``): the
            predicted class is the argmax of ``class_weights * proba``; ``proba`` stays the
            plain mean.

    Raises:
        ConfigError: A run is not a finished run, the runs differ in what they must share,
            the weights do not fit, or a TTA view is unknown or unsafe for a run.
        DataError: The eval data is missing or malformed, or an image does not decode (unless
            the first run's config sets ``data.skip_bad_files``).
    """
    if not run_dirs:
        raise ConfigError("name at least one run (--run RUN_DIR)")
    infos = [load_run(Path(r)) for r in run_dirs]
    check_compatible(infos)
    shares = _weights(weights, [i.run_dir for i in infos])
    n_classes = infos[0].num_classes
    if class_weights is not None and len(class_weights) != n_classes:
        raise ConfigError(f"class_weights: {len(class_weights)} weight(s) for {n_classes} classes")
    views = [resolve_views(i.config, tta, f"run {i.run_dir}") for i in infos]
    first = infos[0]
    config = first.config
    images = find_eval_images(data, config.data.format)
    decoded = load_images(
        images.paths,
        config.data.image_size,
        cache_dir=config.data.cache_dir,
        skip_bad_files=config.data.skip_bad_files,
        advance=decoding_progress(progress),
        crop=config.data.crop,
    )
    on_device = upload_images(np.asarray(decoded.array), device)
    total: np.ndarray | None = None
    n_models = 0
    for info, share, run_views in zip(infos, shares, views, strict=True):
        if share == 0:
            continue
        models = load_models(info, device)
        _log.info(
            "predicting %d images with %s: %d model(s) (%s)%s on %s",
            len(images.keys),
            info.run_dir,
            len(models),
            info.mode,
            f" with TTA ({', '.join(run_views)})" if run_views else "",
            device,
        )
        proba = ensemble_proba(
            models,
            on_device,
            device=device,
            batch_size=batch_size,
            tta=run_views,
            zoom=zoom_of(info.config),
            amp=info.config.train.amp,
            channels_last=info.config.train.channels_last,
            progress=progress,
        )
        n_models += len(models)
        del models
        if proba.shape != (len(images.keys), info.num_classes):
            raise DataError(
                f"{info.run_dir}: models gave probabilities of shape {proba.shape}, expected "
                f"({len(images.keys)}, {info.num_classes})"
            )
        weighted = share * proba.astype(np.float64)
        total = weighted if total is None else total + weighted
    assert total is not None
    proba = total.astype(np.float32)
    decide = total if class_weights is None else total * np.asarray(class_weights)
    labels = decide.argmax(axis=1).astype(np.int64)
    ok = np.asarray(decoded.ok, dtype=bool)
    if not ok.all():
        # Every row of a submission needs a class: an unreadable image gets the one predicted
        # most often for the others, not a guess from the zero pixels the cache holds for it.
        fallback = (
            int(np.bincount(labels[ok], minlength=first.num_classes).argmax()) if ok.any() else 0
        )
        labels[~ok] = fallback
    return Predictions(
        images=images,
        proba=proba,
        labels=labels,
        class_names=list(first.class_names),
        mode=first.mode if len(infos) == 1 else "runs",
        n_models=n_models,
        tta=any(views),
        bad=list(decoded.bad),
        runs=[i.run_dir for i in infos],
        weights=shares,
        views=views,
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
    with atomic_path(out) as tmp:
        if pred.images.info_csv is not None:
            _write_info_csv(pred, pred.images.info_csv, tmp)
        else:
            with tmp.open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(["path", "pred", "class_name"])
                for key, label in zip(pred.images.keys, pred.labels, strict=True):
                    writer.writerow([key, int(label), pred.class_names[int(label)]])
    return out
