"""Ensemble selection: which trained runs to average, and with what weights, chosen on their
out-of-fold probabilities.

Every ``hpo train --folds all`` run keeps, in ``oof.npz``, each training image's class
probabilities from the fold model that did not train on it. Greedy forward selection with
replacement (Caruana et al., "Ensemble selection from libraries of models", ICML 2004) starts
from an empty ensemble and, ``size`` times, adds the run whose addition gives the best
macro-F1 of the averaged out-of-fold probabilities; a run can be added again, which raises its
weight. The ensemble kept is the prefix of those steps with the best score (the first one on a
tie), and a run's weight is how often it was added over the steps kept.

The ensemble file ``hpo predict --ensemble`` reads::

    metric: macro_f1
    oof_macro_f1: 0.8412        # score of the kept ensemble on the out-of-fold rows
    size: 10                    # steps run
    runs:                       # paths relative to this file (absolute when elsewhere)
      - {run: runs/trial7, weight: 0.6}
      - {run: runs/trial3, weight: 0.4}
    steps:                      # each step's pick and score, in order
      - {run: runs/trial7, macro_f1: 0.8301}
      ...
    class_weights: [...]        # only with --thresholds: see below
    oof_macro_f1_weighted: 0.85 # the out-of-fold score with them (optimistic: tuned there)

With ``--thresholds`` (off by default), per-class decision weights are tuned on the same
out-of-fold probabilities of the chosen ensemble: the prediction becomes the class with the
highest ``weight * probability`` (a per-class threshold, or a correction of the class priors).
They are tuned by coordinate ascent over a grid and reported separately, since the rows that
tune them also score them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.metrics import f1_score

from hpo.exceptions import ConfigError, DataError
from hpo.files import write_text_atomic
from hpo.predict import check_compatible
from hpo.train.runner import OOF_FILE, load_run

__all__ = [
    "Ensemble",
    "OutOfFold",
    "Selection",
    "align_oof",
    "greedy_select",
    "load_ensemble",
    "load_oof",
    "macro_f1",
    "select_ensemble",
    "tune_class_weights",
    "write_ensemble",
]

METRIC = "macro_f1"


@dataclass(frozen=True)
class OutOfFold:
    """One run's out-of-fold predictions: one row per training image it validated on.

    Attributes:
        run_dir: The run directory.
        paths: Image paths relative to the run's data root (``/`` separators).
        labels: ``int64 (N,)`` true classes.
        proba: ``float32 (N, C)`` class probabilities from the fold that held the image out.
        class_names: Class names, index = class id.
    """

    run_dir: Path
    paths: list[str]
    labels: np.ndarray
    proba: np.ndarray
    class_names: list[str]


@dataclass(frozen=True)
class Selection:
    """The result of :func:`greedy_select`.

    Attributes:
        counts: How often each candidate was added over the kept steps.
        weights: ``counts`` normalized to sum 1.
        score: Macro-F1 of the kept ensemble.
        steps: ``(candidate, score after the step)`` for every step run, kept or not.
        kept: How many of the steps the ensemble keeps (the best prefix).
        alone: Each candidate's own macro-F1 (the first step's scores): on small data the
            steadier way to rank configs than one fold's validation value.
    """

    counts: list[int]
    weights: list[float]
    score: float
    steps: list[tuple[int, float]]
    kept: int
    alone: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Ensemble:
    """Runs and their weights, as written by ``hpo ensemble`` and read by ``hpo predict``.

    Attributes:
        runs: Run directories (resolved against the ensemble file's folder).
        weights: One weight per run, summing to 1.
        score: Out-of-fold macro-F1 of the ensemble.
        steps: ``(run, score)`` of each selection step.
        class_weights: Per-class decision weights (``--thresholds``), or None.
        weighted_score: Out-of-fold macro-F1 with ``class_weights``, or None.
    """

    runs: list[Path]
    weights: list[float]
    score: float
    steps: list[tuple[Path, float]] = field(default_factory=list)
    class_weights: list[float] | None = None
    weighted_score: float | None = None


def macro_f1(labels: np.ndarray, proba: np.ndarray) -> float:
    """Macro-F1 of the argmax of ``proba`` (scikit-learn's, as the objective)."""
    if len(labels) == 0:
        return 0.0
    return float(f1_score(labels, proba.argmax(axis=1), average="macro", zero_division=0))


def load_oof(run_dir: Path) -> OutOfFold:
    """Read a finished run's ``oof.npz``.

    Raises:
        ConfigError: Not a finished run, or a run without out-of-fold predictions (trained
            with ``--full``, or before runs kept them).
        DataError: ``oof.npz`` is corrupt.
    """
    info = load_run(Path(run_dir))
    path = info.run_dir / OOF_FILE
    if info.mode != "folds" or not path.is_file():
        raise ConfigError(
            f"{info.run_dir}: no out-of-fold predictions ({OOF_FILE}); train the run with "
            "`hpo train --folds all`"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            paths = [str(p) for p in npz["path"]]
            labels = np.asarray(npz["label"], dtype=np.int64)
            proba = np.asarray(npz["proba"], dtype=np.float32)
    except Exception as exc:
        raise DataError(
            f"{path}: corrupt out-of-fold file ({type(exc).__name__}: {exc})"
        ) from None
    if proba.shape != (len(paths), info.num_classes) or labels.shape != (len(paths),):
        raise DataError(
            f"{path}: {len(paths)} paths, labels of shape {labels.shape} and probabilities of "
            f"shape {proba.shape} do not fit {info.num_classes} classes"
        )
    return OutOfFold(info.run_dir, paths, labels, proba, list(info.class_names))


def align_oof(oofs: Sequence[OutOfFold]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The runs' out-of-fold rows joined by image path, in the first run's order.

    Returns:
        The labels and each run's probabilities, row for row.

    Raises:
        ConfigError: The runs differ in classes, or do not cover the same images (a run
            trained on other data, or not with ``--folds all``), or label an image differently.
    """
    first = oofs[0]
    index = {p: i for i, p in enumerate(first.paths)}
    if len(index) != len(first.paths):
        raise DataError(f"{first.run_dir / OOF_FILE}: an image path appears twice")
    probas = [first.proba]
    for oof in oofs[1:]:
        if oof.class_names != first.class_names:
            raise ConfigError(
                f"runs {first.run_dir} and {oof.run_dir} differ in classes; only runs with "
                "the same classes can be ensembled"
            )
        theirs = set(oof.paths)
        missing = [p for p in first.paths if p not in theirs]
        extra = [p for p in oof.paths if p not in index]
        if missing or extra or len(oof.paths) != len(first.paths):
            example = (missing or extra or ["(duplicates)"])[0]
            raise ConfigError(
                f"runs {first.run_dir} and {oof.run_dir} do not share their out-of-fold rows "
                f"({len(first.paths)} against {len(oof.paths)} images, e.g. {example!r} is in "
                "only one); train each on the same data with `hpo train --folds all`"
            )
        order = np.asarray([index[p] for p in oof.paths], dtype=np.int64)
        labels = np.empty_like(first.labels)
        labels[order] = oof.labels
        if not np.array_equal(labels, first.labels):
            bad = first.paths[int(np.flatnonzero(labels != first.labels)[0])]
            raise ConfigError(
                f"runs {first.run_dir} and {oof.run_dir} label {bad!r} differently (other "
                "label corrections?); only runs trained on the same labels can be ensembled"
            )
        proba = np.empty_like(oof.proba)
        proba[order] = oof.proba
        probas.append(proba)
    return first.labels, probas


def greedy_select(probas: Sequence[np.ndarray], labels: np.ndarray, *, size: int) -> Selection:
    """Greedy forward selection with replacement maximizing macro-F1 (Caruana et al. 2004).

    Each of ``size`` steps adds the candidate whose addition to the current bag gives the
    highest macro-F1 of the bag's mean probabilities (ties: the lowest index). The kept
    ensemble is the shortest prefix of steps reaching the best score seen.

    Args:
        probas: Each candidate's ``(N, C)`` probabilities, rows aligned with ``labels``.
        labels: ``(N,)`` true classes.
        size: Steps to run (at least 1).
    """
    if not probas:
        raise ValueError("greedy_select needs at least one candidate")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    stack = np.stack([np.asarray(p, dtype=np.float64) for p in probas])
    bag_sum = np.zeros_like(stack[0])
    counts = np.zeros(len(probas), dtype=np.int64)
    steps: list[tuple[int, float]] = []
    alone: list[float] = []
    for step in range(1, size + 1):
        scores = [macro_f1(labels, (bag_sum + candidate) / step) for candidate in stack]
        alone = alone or scores
        pick = int(np.argmax(scores))  # the first of equal scores
        bag_sum += stack[pick]
        counts[pick] += 1
        steps.append((pick, scores[pick]))
    best = max(score for _, score in steps)
    kept = next(k for k, (_, score) in enumerate(steps, start=1) if score == best)
    kept_counts = np.bincount([c for c, _ in steps[:kept]], minlength=len(probas))
    return Selection(
        counts=kept_counts.tolist(),
        weights=(kept_counts / kept).tolist(),
        score=best,
        steps=steps,
        kept=kept,
        alone=alone,
    )


def tune_class_weights(
    proba: np.ndarray, labels: np.ndarray, *, rounds: int = 3
) -> tuple[list[float], float]:
    """Per-class weights maximizing the macro-F1 of ``argmax(weights * proba)``.

    Coordinate ascent: each round tries, class by class, every weight of a grid from
    ``e^-1.5`` to ``e^1.5`` and keeps a strictly better score; it stops after ``rounds`` rounds
    or a round without gain. Starts from 1 for every class (the plain argmax).

    Returns:
        The weights and the macro-F1 they reach.
    """
    proba = np.asarray(proba, dtype=np.float64)
    weights = np.ones(proba.shape[1])
    best = macro_f1(labels, proba)
    grid = np.exp(np.linspace(-1.5, 1.5, 13))
    for _ in range(rounds):
        improved = False
        for c in range(len(weights)):
            for value in grid:
                trial = weights.copy()
                trial[c] = value
                score = macro_f1(labels, proba * trial)
                if score > best + 1e-12:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return [float(w) for w in weights], best


def select_ensemble(
    run_dirs: Sequence[Path], *, size: int, thresholds: bool = False
) -> tuple[Ensemble, Selection]:
    """Load the runs' out-of-fold predictions, check they can be averaged, and select; with
    ``thresholds`` also tune per-class decision weights on the chosen ensemble's rows.

    Raises:
        ConfigError: Fewer than one run, a run without out-of-fold predictions, or runs that
            differ in classes, data layout, image handling or out-of-fold rows.
    """
    if not run_dirs:
        raise ConfigError("name at least one run (--run RUN_DIR)")
    if size < 1:
        raise ConfigError(f"--size {size}: expected at least 1 selection step")
    check_compatible([load_run(Path(r)) for r in run_dirs])
    oofs = [load_oof(Path(r)) for r in run_dirs]
    labels, probas = align_oof(oofs)
    selection = greedy_select(probas, labels, size=size)
    runs = [oof.run_dir for oof in oofs]
    chosen = [k for k, c in enumerate(selection.counts) if c > 0]
    class_weights, weighted_score = None, None
    if thresholds:
        mean = sum(selection.weights[k] * probas[k].astype(np.float64) for k in chosen)
        class_weights, weighted_score = tune_class_weights(np.asarray(mean), labels)
    ensemble = Ensemble(
        runs=[runs[k] for k in chosen],
        weights=[selection.weights[k] for k in chosen],
        score=selection.score,
        steps=[(runs[k], score) for k, score in selection.steps],
        class_weights=class_weights,
        weighted_score=weighted_score,
    )
    return ensemble, selection


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path.absolute(), base.absolute())).as_posix()
    except ValueError:  # another drive on Windows
        return path.absolute().as_posix()


def write_ensemble(ensemble: Ensemble, out: Path, *, size: int) -> Path:
    """Write the ensemble file (atomically: beside ``out``, then renamed into place)."""
    out = Path(out)
    base = out.parent
    data: dict[str, Any] = {
        "metric": METRIC,
        "oof_macro_f1": round(ensemble.score, 6),
        "size": size,
        "runs": [
            {"run": _relative(run, base), "weight": round(weight, 6)}
            for run, weight in zip(ensemble.runs, ensemble.weights, strict=True)
        ],
        "steps": [
            {"run": _relative(run, base), METRIC: round(score, 6)} for run, score in ensemble.steps
        ],
    }
    if ensemble.class_weights is not None:
        data["class_weights"] = [round(w, 6) for w in ensemble.class_weights]
        data["oof_macro_f1_weighted"] = round(float(ensemble.weighted_score or 0.0), 6)
    return write_text_atomic(out, yaml.safe_dump(data, sort_keys=False))


def load_ensemble(path: Path) -> Ensemble:
    """Read an ensemble file written by :func:`write_ensemble`.

    Raises:
        ConfigError: The file is missing or malformed (the message names the key at fault).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--ensemble {path}: file not found (write it with `hpo ensemble`)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    entries = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty 'runs' list of {{run: DIR, weight: W}}")
    runs, weights = [], []
    for k, entry in enumerate(entries):
        try:
            run, weight = Path(str(entry["run"])), float(entry["weight"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{path}: runs[{k}] must be {{run: DIR, weight: W}}, got {entry!r}"
            ) from None
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{path}: runs[{k}].weight must be >= 0, got {weight}")
        runs.append(run if run.is_absolute() else path.parent / run)
        weights.append(weight)
    if sum(weights) <= 0:
        raise ConfigError(f"{path}: every run has weight 0")
    score = data.get("oof_macro_f1")
    class_weights = data.get("class_weights")
    if class_weights is not None:
        try:
            class_weights = [float(w) for w in class_weights]
        except (TypeError, ValueError):
            class_weights = None
        if class_weights is None or any(not math.isfinite(w) or w <= 0 for w in class_weights):
            raise ConfigError(f"{path}: class_weights must be a list of numbers > 0")
    return Ensemble(
        runs=runs,
        weights=[w / sum(weights) for w in weights],
        score=float(score) if isinstance(score, int | float) else float("nan"),
        class_weights=class_weights,
    )
