"""The one reader of a training data set, shared by loading and checking: scan, table, problems.

``load_samples`` raises the first problem :func:`read_data` finds and ``check_data`` lists them
all, so the table a run trains on is exactly the one ``hpo data check`` counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hpo.data._corrections import apply_corrections, read_corrections
from hpo.data._folder import scan_folder
from hpo.data._mask import Person, samples_from_people, scan_train
from hpo.data._table import Problem, Samples
from hpo.exceptions import DataError

__all__ = ["DataScan", "read_data"]


@dataclass
class DataScan:
    """A training data set as read, with every problem found.

    Attributes:
        root: The data root read.
        format: ``"mask"`` or ``"folder"``.
        samples: The table of every labelled image found (corrections applied).
        problems: Everything wrong, in the order found; empty when the data set loads.
        people: Person rows with a readable gender and age (``mask``; empty for ``folder``).
        unlabelled_images: Images of listed people whose gender or age is unreadable.
        corrections: Corrections read from the corrections file; None without one.
        corrected: Person folders the corrections changed.
    """

    root: Path
    format: str
    samples: Samples
    problems: list[Problem]
    people: list[Person] = field(default_factory=list)
    unlabelled_images: int = 0
    corrections: int | None = None
    corrected: int = 0


def read_data(
    root: Path, format: Literal["mask", "folder"], *, corrections: Path | None = None
) -> DataScan:
    """Read the data set under ``root`` into one table, collecting problems instead of raising.

    A data set without any problem but also without any image gets the problem
    ``no images found``: it cannot be trained on.

    Args:
        root: Data root: ``DATA`` (or ``DATA/train``) for ``mask``, the class-folder root for
            ``folder``; it must exist.
        format: The layout.
        corrections: Optional corrections file (``mask`` only), checked and applied.

    Raises:
        DataError: ``corrections`` is given for ``folder``.
    """
    root = Path(root)
    if format == "mask":
        scan = scan_train(root)
        n_fixes, corrected = None, 0
        if corrections is not None:
            fixes = read_corrections(Path(corrections), scan.problems)
            corrected = apply_corrections(scan.people, fixes, scan.problems)
            n_fixes = len(fixes)
        read = DataScan(
            root,
            "mask",
            samples_from_people(scan.people),
            scan.problems,
            people=scan.people,
            unlabelled_images=scan.unlabelled_images,
            corrections=n_fixes,
            corrected=corrected,
        )
    else:
        if corrections is not None:
            raise DataError(
                f"corrections apply to format 'mask' only (the competition layout), not {format!r}"
            )
        folder = scan_folder(root)
        read = DataScan(root, "folder", folder.samples, folder.problems)
    if not read.problems and len(read.samples) == 0:
        read.problems.append(Problem(root, "no images found"))
    return read
