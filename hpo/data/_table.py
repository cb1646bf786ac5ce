"""The one table every layout is read into, the problems readers find, and CSV reading."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.exceptions import DataError

__all__ = ["CsvRow", "EvalSet", "Problem", "Samples", "raise_problems", "read_csv"]


@dataclass(frozen=True)
class Samples:
    """One row per training image: where it is, its class, its person and its stratum.

    Attributes:
        paths: Absolute image paths.
        labels: ``int64 (N,)`` class indices, ``0..num_classes-1``.
        groups: ``object (N,)`` group names: the person folder for ``mask``; for ``folder`` each
            image is its own group (its path relative to the root).
        strata: ``int64 (N,)`` class the folds stratify on: ``gender * 3 + age`` of the person
            for ``mask``, the label for ``folder``.
        class_names: ``mask``: 18 names like ``"wear/male/<30"``; ``folder``: the sorted class
            folder names.
        format: The layout's name (``data.format``; its entry: ``hpo.data.get_layout``).
    """

    paths: list[Path]
    labels: np.ndarray
    groups: np.ndarray
    strata: np.ndarray
    class_names: list[str]
    format: str

    def __post_init__(self) -> None:
        n = len(self.paths)
        if not len(self.labels) == len(self.groups) == len(self.strata) == n:
            raise ValueError(
                f"Samples columns differ in length: paths {n}, labels {len(self.labels)}, "
                f"groups {len(self.groups)}, strata {len(self.strata)}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, idx: np.ndarray) -> Samples:
        """The rows at integer positions ``idx`` (or where a boolean mask is true), in order."""
        index = np.asarray(idx)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return Samples(
            paths=[self.paths[i] for i in index.tolist()],
            labels=self.labels[index],
            groups=self.groups[index],
            strata=self.strata[index],
            class_names=list(self.class_names),
            format=self.format,
        )


@dataclass(frozen=True)
class EvalSet:
    """The images to predict, in ``info.csv`` order.

    Attributes:
        ids: ``ImageID`` of each row (the file name, e.g. ``"cbc5c6e1...f5.jpg"``).
        paths: Absolute path of each image.
        info_csv: The ``info.csv`` the rows come from (the submission template).
    """

    ids: list[str]
    paths: list[Path]
    info_csv: Path

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Problem:
    """Something wrong with a data set, at a file (and line of a CSV file)."""

    file: Path
    problem: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        return f"{where}: {self.problem}"


def raise_problems(problems: Sequence[Problem], root: Path) -> None:
    """Raise a DataError naming the first problem (and how many more) if there is any.

    Raises:
        DataError: ``problems`` is not empty.
    """
    if not problems:
        return
    more = len(problems) - 1
    hint = (
        f" (and {more} more problem{'s' if more > 1 else ''}; `hpo data check {root}` lists all)"
        if more
        else ""
    )
    raise DataError(f"{problems[0]}{hint}")


@dataclass(frozen=True)
class CsvRow:
    """One data row of a CSV file: its values by column and its line number (1 = header)."""

    line: int
    values: dict[str, str]


def read_csv(
    path: Path, required: Sequence[str], problems: list[Problem], *, comments: bool = False
) -> tuple[list[CsvRow], list[str]] | None:
    """Read a CSV file with a header line; values are stripped of surrounding spaces.

    Problems (missing file, missing column, ragged row) are appended to ``problems``.

    Args:
        path: The CSV file.
        required: Columns that must be present.
        problems: Where problems are appended.
        comments: Skip lines whose first value starts with ``#``.

    Returns:
        The data rows and the column names, or None when the file cannot be used at all.
    """
    if not path.is_file():
        problems.append(Problem(path, "file not found"))
        return None
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(Problem(path, f"cannot read CSV: {exc}"))
        return None
    if not lines:
        problems.append(Problem(path, "empty file (expected a header line)", line=1))
        return None
    header = [name.strip() for name in lines[0]]
    missing = [name for name in required if name not in header]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        problems.append(
            Problem(
                path,
                f"missing required column{'s' if len(missing) > 1 else ''} {names} "
                f"(columns found: {', '.join(header) or 'none'})",
                line=1,
            )
        )
        return None
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if comments and cells[0].lstrip().startswith("#"):
            continue
        if len(cells) != len(header):
            problems.append(
                Problem(path, f"expected {len(header)} values, found {len(cells)}", line=number)
            )
            continue
        rows.append(CsvRow(number, {k: v.strip() for k, v in zip(header, cells, strict=True)}))
    return rows, header
