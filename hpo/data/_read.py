"""The one reader of a training data set, shared by loading and checking: scan, table, problems.

``load_samples`` raises the first problem :func:`read_data` finds and ``check_data`` lists them
all, so the table a run trains on is exactly the one ``hpo data check`` counted.
"""

from __future__ import annotations

from pathlib import Path

from hpo.data._layouts import DataScan, get_layout
from hpo.data._table import Problem

__all__ = ["DataScan", "read_data"]


def read_data(root: Path, format: str, *, corrections: Path | None = None) -> DataScan:
    """Read the data set under ``root`` into one table, collecting problems instead of raising.

    A data set without any problem but also without any image gets the problem
    ``no images found``: it cannot be trained on.

    Args:
        root: Data root: ``DATA`` (or ``DATA/train``) for ``mask``, the class-folder root (or
            the root holding ``train/`` and ``eval/``) for ``folder``; it must exist.
        format: The layout's name (``data.format``).
        corrections: Optional corrections file (``mask`` only), checked and applied.

    Raises:
        ConfigError: ``format`` names no layout.
        DataError: ``corrections`` is given for a layout that takes none.
    """
    root = Path(root)
    read = get_layout(format).scan(root, corrections)
    if not read.problems and len(read.samples) == 0:
        read.problems.append(Problem(root, "no images found"))
    return read
