"""Final training runs: one model on all data or a K-fold ensemble, written to a run directory.

A run directory holds::

    config.yaml          the resolved TrainConfig the run trained with; ``train.kfold.folds``
                         names the folds trained (``all`` or their numbers)
    metrics.json         mode, folds, classes, image size, data root, and per fold every
                         epoch's loss, macro-F1 and accuracy, the per-class F1 and the
                         confusion matrix
    fold_K/model.pt      state dict of fold K's model (``torch.load(weights_only=True)``)
    fold_K/val_predictions.csv   path, label, pred of fold K's validation images; ``path``
                         relative to ``data_root`` of metrics.json, with ``/``
    oof.npz              out-of-fold class probabilities of every fold trained so far:
                         ``path``, ``label``, ``fold`` and ``proba`` (float32, one row per
                         validation image, in the data set's order); with ``--folds all`` the
                         whole training set (what ``hpo ensemble`` selects on)
    full/model.pt        instead of the folds, with ``full`` (all data, no validation)

One convention throughout: folds count from 0 (``fold_0``, ``--folds 0,2``), epochs from 1
(``epoch 1/8`` on the console is ``"epoch": 1`` in metrics.json), classes are ids with names
(``class_names[id]``).

``metrics.json`` is rewritten after every fold, so an interrupted run keeps what it finished;
``status`` says ``complete`` once every fold is done. The folds train with the engine's
cross-validation runner (``hpo.train.crossval``), the one the tuning objective uses.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.config import TrainConfig, load_yaml, train_config_from_dict
from hpo.data import load_training_data
from hpo.exceptions import ConfigError, DataError
from hpo.files import atomic_path, make_dir, write_bytes_atomic, write_text_atomic
from hpo.train.crossval import FoldRun, cross_validate, fold_name, make_splits, resolve_folds
from hpo.train.loop import EpochResult, StepProgress, decoding_progress
from hpo.train.models import build_model, check_weights

__all__ = ["RunInfo", "load_models", "load_run", "resolve_folds", "train_run"]

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
MODEL_FILE = "model.pt"
PREDICTIONS_FILE = "val_predictions.csv"
OOF_FILE = "oof.npz"


@dataclass
class RunInfo:
    """What ``hpo predict`` needs to know about a finished run.

    Attributes:
        run_dir: The run directory.
        config: The resolved config the run trained with.
        mode: ``full`` (one model, all data) or ``folds`` (one model per fold: an ensemble).
        folds: The folds trained (empty for ``full``).
        num_classes: Number of classes the models predict.
        class_names: Class names, index = class id.
        model_paths: One ``model.pt`` per model, in ``folds`` order.
    """

    run_dir: Path
    config: TrainConfig
    mode: str
    folds: list[int]
    num_classes: int
    class_names: list[str]
    model_paths: list[Path]


def train_run(
    config: TrainConfig,
    out_dir: Path,
    *,
    device: torch.device,
    full: bool = False,
    folds: Sequence[int] | None = None,
    progress: StepProgress | None = None,
    on_epoch_end: Callable[[str, EpochResult], None] | None = None,
) -> dict[str, Any]:
    """Train and write a run directory; returns what ``metrics.json`` holds.

    Args:
        config: The resolved training config.
        out_dir: The run directory to create (it must not exist, or be empty).
        device: Where to train.
        full: Train one model on all the data, without validation.
        folds: Folds to train as an ensemble (default: the first ``train.kfold.folds``);
            ignored with ``full``.
        progress: Told of each epoch's steps (:data:`hpo.train.loop.StepProgress`); with
            it, decoding the images shows its own progress too.
        on_epoch_end: Called with the part's name (``fold_0``, ``full``) and each epoch's
            result.

    Raises:
        ConfigError: ``out_dir`` holds files, or a fold does not exist.
        DataError: The data cannot be read or split.
        TrainingError: The loss became NaN or infinite.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"--out {out_dir}: already exists and is not empty; choose a new one")
    chosen = [] if full else resolve_folds(config, folds)
    check_weights(config.train.model)  # before decoding any image
    loaded = load_training_data(config.data, advance=decoding_progress(progress))
    samples = loaded.samples
    kfold = config.train.kfold
    # Split before creating the run directory: a data set too small to split leaves nothing.
    splits = None if full else make_splits(config, samples)

    make_dir(out_dir)
    # config.yaml says what was trained: `--folds all` is `folds: all`, not the default 1.
    (config if full else _with_folds(config, chosen, kfold.n_splits)).save(out_dir / CONFIG_FILE)
    data_root = Path(config.data.root).absolute()
    report: dict[str, Any] = {
        "status": "running",
        "mode": "full" if full else "folds",
        "folds": chosen,
        "n_splits": kfold.n_splits,
        "num_classes": samples.num_classes,
        "class_names": list(samples.class_names),
        "image_size": list(config.data.image_size),
        "data_format": samples.format,
        "data_root": str(data_root),
        "num_samples": len(samples),
        "device": str(device),
        "mean_macro_f1": None,
        "mean_accuracy": None,
        "seconds": 0.0,
        "results": [],
    }
    started = time.perf_counter()
    oof: dict[int, np.ndarray] = {}  # sample position -> its fold's validation probabilities
    oof_fold: dict[int, int] = {}

    def save_fold(fold: int | None, run: FoldRun) -> None:
        part_dir = out_dir / run.name
        make_dir(part_dir)
        _save_model(run.fit.model, part_dir / MODEL_FILE)
        if run.val_idx is not None and run.fit.val_pred is not None:
            _write_predictions(
                part_dir / PREDICTIONS_FILE,
                [_relative(samples.paths[i], data_root) for i in run.val_idx],
                samples.labels[run.val_idx],
                run.fit.val_pred,
            )
        if fold is not None and run.val_idx is not None and run.fit.val_probs is not None:
            for i, row in zip(run.val_idx.tolist(), run.fit.val_probs, strict=True):
                oof[i], oof_fold[i] = row, fold
            _write_oof(out_dir / OOF_FILE, oof, oof_fold, samples.paths, samples.labels, data_root)
        report["results"].append(run.result().to_dict())
        _summarise(report, started)
        _write_json(out_dir / METRICS_FILE, report)

    cross_validate(
        config,
        loaded,
        device=device,
        folds=None if full else chosen,
        full=full,
        splits=splits,
        on_epoch_end=None if on_epoch_end is None else _by_name(on_epoch_end),
        on_fold_end=save_fold,
        progress=progress,
    )
    report["status"] = "complete"
    _summarise(report, started)
    _write_json(out_dir / METRICS_FILE, report)
    return report


def load_run(run_dir: Path) -> RunInfo:
    """Read a finished run directory written by :func:`train_run`.

    Raises:
        ConfigError: ``run_dir`` is not a run directory, or the run did not finish.
        DataError: ``metrics.json`` is corrupt or a model file is missing.
    """
    run_dir = Path(run_dir)
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory of `hpo train` (no {METRICS_FILE})")
    try:
        report = json.loads(metrics_path.read_text())
        mode, folds = str(report["mode"]), [int(k) for k in report["folds"]]
        num_classes, class_names = int(report["num_classes"]), list(report["class_names"])
        status = report["status"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{metrics_path}: corrupt run metrics ({type(exc).__name__}: {exc})"
        ) from None
    if mode not in ("full", "folds"):
        raise DataError(f"{metrics_path}: unknown mode {mode!r}; expected full or folds")
    if status != "complete":
        done = [r.get("part") for r in report.get("results", [])]
        raise ConfigError(
            f"{run_dir}: the run did not finish (status {status!r}; finished: "
            f"{', '.join(map(str, done)) or 'nothing'}); train it again"
        )
    config = train_config_from_dict(load_yaml(run_dir / CONFIG_FILE), str(run_dir / CONFIG_FILE))
    names = ["full"] if mode == "full" else [f"fold_{k}" for k in folds]
    model_paths = [run_dir / name / MODEL_FILE for name in names]
    for path in model_paths:
        if not path.is_file():
            raise DataError(f"{path}: model file missing from the run")
    return RunInfo(
        run_dir=run_dir,
        config=config,
        mode=mode,
        folds=folds,
        num_classes=num_classes,
        class_names=class_names,
        model_paths=model_paths,
    )


def load_models(info: RunInfo, device: torch.device) -> list[nn.Module]:
    """The run's models, on ``device``, in eval mode (channels_last on CUDA when configured).

    Raises:
        DataError: A model file is unreadable or does not fit the run's model.
    """
    # The run's weights replace everything: the pretrained file it started from is not needed.
    spec = info.config.train.model.model_copy(update={"weights": None})
    channels_last = info.config.train.channels_last and device.type == "cuda"
    models = []
    for path in info.model_paths:
        model = build_model(spec, info.num_classes, info.config.data.image_size)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            # PyTorch's own message advises weights_only=False: unsafe for a file from
            # elsewhere, and never what a run directory of ours needs.
            raise DataError(
                f"{path}: not a valid model state dict (corrupt, truncated or not written by "
                "`hpo train`)"
            ) from None
        try:
            model.load_state_dict(state)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"{path}: the state dict does not fit the model in config.yaml ({first})"
            ) from None
        model = model.to(device).eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        models.append(model)
    return models


# ---------------------------------------------------------------------------------------------


def _by_name(
    callback: Callable[[str, EpochResult], None],
) -> Callable[[int | None, EpochResult], None]:
    """The runner's callbacks name the part (``fold_0``, ``full``) where the engine's number it."""
    return lambda fold, result: callback(fold_name(fold), result)


def _save_model(model: nn.Module, path: Path) -> None:
    # Plain CPU tensors only: loadable with torch.load(weights_only=True) on any machine.
    state = {
        k: v.detach().to("cpu", memory_format=torch.contiguous_format)
        for k, v in model.state_dict().items()
    }
    # Serialised in memory, then written atomically: torch.save's own file errors (a full disk)
    # are RuntimeErrors that name no file.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getbuffer())


def _with_folds(config: TrainConfig, folds: list[int], n_splits: int) -> TrainConfig:
    """``config`` with ``train.kfold.folds`` naming exactly ``folds`` (``all`` for every one)."""
    value: list[int] | str = "all" if folds == list(range(n_splits)) else list(folds)
    kfold = config.train.kfold.model_copy(update={"folds": value})
    return config.model_copy(update={"train": config.train.model_copy(update={"kfold": kfold})})


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to the data root with ``/`` (portable), else absolute."""
    try:
        return path.absolute().relative_to(root).as_posix()
    except ValueError:
        return path.absolute().as_posix()


def _write_predictions(path: Path, paths: list[str], labels: np.ndarray, pred: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "pred"])
        writer.writerows(zip(paths, labels.tolist(), pred.tolist(), strict=True))


def _write_oof(
    path: Path,
    oof: dict[int, np.ndarray],
    folds: dict[int, int],
    paths: Sequence[Path],
    labels: np.ndarray,
    root: Path,
) -> None:
    # Written atomically, like metrics.json; plain arrays (no pickle) in sample order.
    order = sorted(oof)
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez(
            f,
            path=np.asarray([_relative(paths[i], root) for i in order], dtype=str),
            label=np.asarray(labels, dtype=np.int64)[order],
            fold=np.asarray([folds[i] for i in order], dtype=np.int64),
            proba=np.stack([oof[i] for i in order]).astype(np.float32),
        )


def _summarise(report: dict[str, Any], started: float) -> None:
    scored = [r for r in report["results"] if r.get("macro_f1") is not None]
    if scored:
        report["mean_macro_f1"] = float(np.mean([r["macro_f1"] for r in scored]))
        report["mean_accuracy"] = float(np.mean([r["accuracy"] for r in scored]))
    report["seconds"] = round(time.perf_counter() - started, 3)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # Written atomically: a crash never leaves half a metrics.json.
    write_text_atomic(path, json.dumps(_finite(data), indent=2) + "\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such floats are written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
