"""Validation of a data set: counts a user looks at first, and every problem with file and line.

``check_data`` reads a data set with the reader training uses (``hpo.data._read.read_data``),
so it counts exactly the table a run trains on, but never stops at the first problem: it lists
missing and extra files, malformed CSV files, unreadable genders and ages, bad corrections, an
empty data set, and images that do not decode (each image is decoded at an eighth of its size,
which reads the whole file at a fraction of the cost), for the training part and, when
present, the eval part.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from hpo.data._cache import decode_error
from hpo.data._labels import FACTORS, age_class, decode_factors
from hpo.data._mask import scan_eval
from hpo.data._read import read_data
from hpo.data._table import Problem, Samples
from hpo.exceptions import DataError

__all__ = ["CheckReport", "check_data", "detect_format", "verify_images"]


@dataclass
class CheckReport:
    """What ``hpo data check`` prints.

    Attributes:
        root: The data root checked.
        format: ``"mask"`` or ``"folder"``.
        people: Person folders with a readable row (``mask``); None for ``folder``.
        images: Training images found (including ones that do not decode).
        class_names: Name of each class.
        class_counts: Training images per class (18 for ``mask``).
        factor_counts: Images per value of each factor (``mask``: mask, gender, age).
        people_counts: People per gender and per age group (``mask``).
        eval_images: Images listed in ``eval/info.csv`` and present; None without ``eval/``.
        corrections: Corrections read from the corrections file; None without one.
        problems: Every problem found.
        seconds: Time the check took.
    """

    root: Path
    format: str
    people: int | None
    images: int
    class_names: list[str]
    class_counts: list[int]
    factor_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    people_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    eval_images: int | None = None
    corrections: int | None = None
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def relative(self, path: Path) -> str:
        """``path`` relative to the root when inside it (how problems are shown)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types; problem files are relative to ``root``."""
        return {
            "root": str(self.root),
            "format": self.format,
            "ok": self.ok,
            "people": self.people,
            "images": self.images,
            "eval_images": self.eval_images,
            "class_names": list(self.class_names),
            "class_counts": list(self.class_counts),
            "factor_counts": self.factor_counts,
            "people_counts": self.people_counts,
            "corrections": self.corrections,
            "problems": [
                {"file": self.relative(p.file), "line": p.line, "problem": p.problem}
                for p in self.problems
            ],
            "seconds": round(self.seconds, 3),
        }


def detect_format(root: Path) -> Literal["mask", "folder"]:
    """``mask`` when ``root`` holds ``train/`` (or ``train.csv``), else ``folder``."""
    if (root / "train").is_dir() or (root / "train.csv").is_file():
        return "mask"
    return "folder"


def _verify_one(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            width, height = image.size
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
    except Exception as exc:  # any decoder failure is a problem with this file
        return decode_error(path, exc)
    return None


def verify_images(
    paths: Sequence[Path], *, advance: Callable[[], None] | None = None
) -> list[Problem]:
    """Decode every image cheaply in parallel; one problem per image that fails."""
    workers = min(32, (os.cpu_count() or 1) + 2)
    problems = []
    with ThreadPoolExecutor(workers) as pool:
        for path, reason in zip(paths, pool.map(_verify_one, paths), strict=True):
            if reason is not None:
                problems.append(Problem(path, reason))
            if advance is not None:
                advance()
    return problems


def _factor_counts(samples: Samples) -> dict[str, dict[str, int]]:
    decoded = decode_factors(samples.labels)
    return {
        name: dict(
            zip(values, np.bincount(decoded[name], minlength=len(values)).tolist(), strict=True)
        )
        for name, values in FACTORS.items()
    }


def check_data(
    root: Path,
    *,
    format: Literal["auto", "mask", "folder"] = "auto",
    corrections: Path | None = None,
    decode: bool = True,
    advance: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Validate a data set and count its images; problems are collected, never raised.

    Args:
        root: Data root: ``DATA`` for the competition layout, the class-folder root otherwise.
        format: Layout; ``auto`` picks ``mask`` when ``root`` holds ``train/``.
        corrections: Optional corrections file (competition layout), checked and applied
            before counting.
        decode: Decode every image (the slow part) to find corrupt files.
        advance: Called as ``advance(done, total)`` while images are decoded, for progress.

    Raises:
        DataError: ``root`` is not a folder, or ``corrections`` is given for ``folder``.
    """
    start = time.perf_counter()
    root = Path(root).absolute()
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    fmt = detect_format(root) if format == "auto" else format
    read = read_data(root, fmt, corrections=corrections)
    samples = read.samples
    problems = list(read.problems)
    eval_paths: list[Path] = []
    eval_problems: list[Problem] = []
    report = CheckReport(
        root=root,
        format=read.format,
        people=None,
        images=len(samples) + read.unlabelled_images,
        class_names=list(samples.class_names),
        class_counts=np.bincount(samples.labels, minlength=samples.num_classes).tolist(),
        corrections=read.corrections,
    )
    if fmt == "mask":
        report.people = len(read.people)
        report.factor_counts = _factor_counts(samples)
        report.people_counts = {
            "gender": {
                name: sum(p.gender == i for p in read.people)
                for i, name in enumerate(FACTORS["gender"])
            },
            "age": {
                name: sum(age_class(p.age) == i for p in read.people)
                for i, name in enumerate(FACTORS["age"])
            },
        }
        if (root / "eval").is_dir():
            eval_set, eval_problems = scan_eval(root / "eval")
            eval_paths = eval_set.paths
            report.eval_images = len(eval_set)
    if decode:
        total = len(samples) + len(eval_paths)
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if advance is not None:
                advance(done, total)

        problems += verify_images(samples.paths, advance=step)
        eval_problems += verify_images(eval_paths, advance=step)
    report.problems = problems + eval_problems
    report.seconds = time.perf_counter() - start
    return report
