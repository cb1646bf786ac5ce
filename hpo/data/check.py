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
from typing import Any

import numpy as np
from PIL import Image

from hpo.data._cache import decode_error
from hpo.data._layouts import detect_layout, get_layout
from hpo.data._read import read_data
from hpo.data._table import Problem
from hpo.exceptions import DataError

__all__ = ["CheckReport", "check_data", "verify_images"]


@dataclass
class CheckReport:
    """What ``hpo data check`` prints.

    Attributes:
        root: The data root checked.
        format: The layout read (``data.format``).
        layout: What the layout is called (``competition layout``, ``image folders``).
        detected: Why ``auto`` chose the layout (``no train/train.csv``); None when given.
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
    layout: str
    detected: str | None
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
            "layout": self.layout,
            "detected": self.detected,
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


def check_data(
    root: Path,
    *,
    format: str = "auto",
    corrections: Path | None = None,
    decode: bool = True,
    advance: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Validate a data set and count its images; problems are collected, never raised.

    Args:
        root: Data root: ``DATA`` for the competition layout, the class-folder root otherwise.
        format: Layout name, or ``auto``: ``mask`` when ``root`` holds ``train/train.csv``
            (or ``train.csv``), else ``folder``; the report says which and why.
        corrections: Optional corrections file (competition layout), checked and applied
            before counting.
        decode: Decode every image (the slow part) to find corrupt files.
        advance: Called as ``advance(done, total)`` while images are decoded, for progress.

    Raises:
        ConfigError: ``format`` names no layout.
        DataError: ``root`` is not a folder, or ``corrections`` is given for ``folder``.
    """
    start = time.perf_counter()
    root = Path(root).absolute()
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    if format == "auto":
        layout, detected = detect_layout(root)
    else:
        layout, detected = get_layout(format), None
    read = read_data(root, layout.name, corrections=corrections)
    samples = read.samples
    problems = list(read.problems)
    counts = layout.count(read)
    report = CheckReport(
        root=root,
        format=layout.name,
        layout=layout.description,
        detected=detected,
        people=counts.people,
        images=len(samples) + read.unlabelled_images,
        class_names=list(samples.class_names),
        class_counts=np.bincount(samples.labels, minlength=samples.num_classes).tolist(),
        factor_counts=counts.factor_counts,
        people_counts=counts.people_counts,
        corrections=read.corrections,
    )
    eval_paths: list[Path] = []
    eval_problems: list[Problem] = []
    eval_part = layout.scan_eval(root)
    if eval_part is not None:
        eval_paths, eval_problems = eval_part
        report.eval_images = len(eval_paths)
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
