"""The data layouts (``data.format``) as registry entries carrying what their callers must know.

Every caller that behaves differently per layout reads a fact of its entry instead of testing
its name: the split unit (people or images), the label factors scored on their own, how the
training set and the eval images are read, whether eval images come with a submission template,
what ``hpo data check`` calls the layout and counts, and how a data root is recognised.

- ``mask``: the competition layout, ``train/train.csv`` + one folder per person, 18 classes
  that are mask x gender x age, eval images listed in ``eval/info.csv`` (the template).
- ``folder``: ``ROOT/<class>/*.jpg``, or ``ROOT/train/<class>/*.jpg`` beside ``ROOT/eval/``;
  each image is its own group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hpo.data._corrections import apply_corrections, read_corrections
from hpo.data._folder import FOLDER_IMAGE_EXTENSIONS, find_class_root, scan_folder
from hpo.data._labels import FACTORS, age_class, decode_factors
from hpo.data._mask import (
    Person,
    find_train_dir,
    is_metadata,
    samples_from_people,
    scan_eval,
    scan_train,
)
from hpo.data._table import Problem, Samples
from hpo.exceptions import ConfigError, DataError

__all__ = [
    "LAYOUTS",
    "DataScan",
    "Layout",
    "LayoutCounts",
    "Layouts",
    "detect_layout",
    "get_layout",
    "list_layouts",
]


@dataclass
class DataScan:
    """A training data set as read, with every problem found.

    Attributes:
        root: The data root read.
        format: The layout's name (``data.format``).
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


@dataclass(frozen=True)
class LayoutCounts:
    """What ``hpo data check`` counts beyond images per class.

    Attributes:
        people: Person folders with a readable row; None where images are not grouped by person.
        factor_counts: Images per value of each label factor.
        people_counts: People per value of the person's factors (gender, age).
    """

    people: int | None = None
    factor_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    people_counts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """One data layout: how it is read and what its callers must know about it.

    Attributes:
        name: The ``data.format`` value that selects it.
        description: What ``hpo data check`` calls it (``competition layout``).
        unit: What one group (the split unit, never on both sides of a fold) is: ``people``
            or ``images``.
        factors: Label factors scored on their own (the macro-F1 of each) besides the class;
            empty where the label is just a class.
        eval_template: Eval images are listed in a submission template (``eval/info.csv``)
            whose ``ans`` column predictions fill; otherwise any image under the eval folder.
        detect: Why a data root is in this layout (a short reason), or None when it is not;
            ``auto`` picks the first entry that answers.
        scan: Reads the training set under a root (with a corrections file or None),
            collecting problems instead of raising.
        scan_eval: The eval images beside a data root's training set and the problems with
            them, for ``hpo data check``; None when the root has no eval part.
        count: What ``hpo data check`` counts from a scan beyond images per class.
    """

    name: str
    description: str
    unit: str
    factors: tuple[str, ...]
    eval_template: bool
    detect: Callable[[Path], str | None]
    scan: Callable[[Path, Path | None], DataScan]
    scan_eval: Callable[[Path], tuple[list[Path], list[Problem]] | None]
    count: Callable[[DataScan], LayoutCounts]


class Layouts:
    """The layouts by name, in the order ``auto`` detection tries them."""

    def __init__(self) -> None:
        self._entries: dict[str, Layout] = {}

    def register(self, layout: Layout) -> Layout:
        if layout.name in self._entries:
            raise ValueError(f"layout {layout.name!r} is registered twice")
        self._entries[layout.name] = layout
        return layout

    def names(self) -> list[str]:
        """Registered names, in detection order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Layout]:
        return iter(self._entries.values())

    def get(self, name: str, *, where: str = "data.format") -> Layout:
        """The layout ``name``; ConfigError naming the known layouts when there is none."""
        if name not in self._entries:
            raise ConfigError(
                f"{where}: unknown layout {name!r}; known: {', '.join(self._entries)}"
            )
        return self._entries[name]

    def detect(self, root: Path) -> tuple[Layout, str]:
        """The first layout whose ``detect`` answers for ``root``, and its reason."""
        for layout in self._entries.values():
            reason = layout.detect(root)
            if reason is not None:
                return layout, reason
        raise DataError(f"{root}: no layout recognises this folder; give --format")


LAYOUTS = Layouts()


def get_layout(name: str) -> Layout:
    """The layout entry ``name`` (``data.format``); ConfigError listing the known ones."""
    return LAYOUTS.get(name)


def list_layouts() -> list[str]:
    """Names of the registered layouts."""
    return LAYOUTS.names()


def detect_layout(root: Path) -> tuple[Layout, str]:
    """The layout of data root ``root`` (``auto``) and why it was chosen, in a few words."""
    return LAYOUTS.detect(Path(root))


# ---------------------------------------------------------------------------------------------
# mask: the competition layout


def _detect_mask(root: Path) -> str | None:
    csv_path = find_train_dir(root) / "train.csv"
    if csv_path.is_file():
        return f"found {csv_path.relative_to(root).as_posix()}"
    return None


def _scan_mask(root: Path, corrections: Path | None) -> DataScan:
    scan = scan_train(root)
    n_fixes, corrected = None, 0
    if corrections is not None:
        fixes = read_corrections(Path(corrections), scan.problems)
        corrected = apply_corrections(scan.people, fixes, scan.problems)
        n_fixes = len(fixes)
    return DataScan(
        root,
        "mask",
        samples_from_people(scan.people),
        scan.problems,
        people=scan.people,
        unlabelled_images=scan.unlabelled_images,
        corrections=n_fixes,
        corrected=corrected,
    )


def _scan_mask_eval(root: Path) -> tuple[list[Path], list[Problem]] | None:
    if not (root / "eval").is_dir():
        return None
    eval_set, problems = scan_eval(root / "eval")
    return list(eval_set.paths), problems


def _count_mask(read: DataScan) -> LayoutCounts:
    decoded = decode_factors(read.samples.labels)
    factor_counts = {
        name: dict(
            zip(values, np.bincount(decoded[name], minlength=len(values)).tolist(), strict=True)
        )
        for name, values in FACTORS.items()
    }
    people_counts = {
        "gender": {
            name: sum(p.gender == i for p in read.people)
            for i, name in enumerate(FACTORS["gender"])
        },
        "age": {
            name: sum(age_class(p.age) == i for p in read.people)
            for i, name in enumerate(FACTORS["age"])
        },
    }
    return LayoutCounts(len(read.people), factor_counts, people_counts)


MASK = LAYOUTS.register(
    Layout(
        name="mask",
        description="competition layout",
        unit="people",
        factors=tuple(FACTORS),
        eval_template=True,
        detect=_detect_mask,
        scan=_scan_mask,
        scan_eval=_scan_mask_eval,
        count=_count_mask,
    )
)


# ---------------------------------------------------------------------------------------------
# folder: one folder of images per class


def _detect_folder(root: Path) -> str | None:
    return "no train/train.csv"  # the fallback: any folder of class folders


def _scan_folder(root: Path, corrections: Path | None) -> DataScan:
    if corrections is not None:
        raise DataError(
            "corrections apply to format 'mask' only (the competition layout), not 'folder'"
        )
    folder = scan_folder(root)
    return DataScan(root, "folder", folder.samples, folder.problems)


def _scan_folder_eval(root: Path) -> tuple[list[Path], list[Problem]] | None:
    # Only a root split into train/ and eval/ has an eval part; its images are any images
    # below eval/ (flat or in class folders), as `hpo predict` reads them.
    if find_class_root(root) == root or not (root / "eval").is_dir():
        return None
    paths: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root / "eval"):
        dirnames[:] = sorted(d for d in dirnames if not is_metadata(d))
        paths.extend(
            Path(dirpath) / name
            for name in sorted(filenames)
            if not is_metadata(name)
            and os.path.splitext(name)[1].lower() in FOLDER_IMAGE_EXTENSIONS
        )
    return paths, []


FOLDER = LAYOUTS.register(
    Layout(
        name="folder",
        description="image folders",
        unit="images",
        factors=(),
        eval_template=False,
        detect=_detect_folder,
        scan=_scan_folder,
        scan_eval=_scan_folder_eval,
        count=lambda read: LayoutCounts(),
    )
)
