"""Reader of the generic image-folder layout: ``ROOT/<class>/**/*.jpg``, one folder per class."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.data._mask import is_metadata
from hpo.data._table import Problem, Samples

__all__ = ["FOLDER_IMAGE_EXTENSIONS", "FolderScan", "scan_folder"]

FOLDER_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class FolderScan:
    """The images found under a class-folder root, and every problem with it."""

    root: Path
    samples: Samples
    problems: list[Problem]


def _walk_images(class_dir: Path, problems: list[Problem]) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not is_metadata(d))
        here = Path(dirpath)
        for name in sorted(filenames):
            if is_metadata(name):
                continue
            if os.path.splitext(name)[1].lower() in FOLDER_IMAGE_EXTENSIONS:
                found.append(here / name)
            else:
                exts = "/".join(FOLDER_IMAGE_EXTENSIONS)
                problems.append(Problem(here / name, f"unexpected file (expected {exts} images)"))
    return found


def scan_folder(root: Path) -> FolderScan:
    """Read every class folder under ``root``, collecting problems instead of raising.

    Each image is its own group and its label is its stratum. Images directly in ``root`` have
    no class and are problems; other files directly in ``root`` (a README) are ignored.
    """
    root = Path(root).absolute()
    problems: list[Problem] = []
    classes: list[str] = []
    per_class: list[list[Path]] = []
    with os.scandir(root) as entries:
        listing = sorted((e for e in entries if not is_metadata(e.name)), key=lambda e: e.name)
    for entry in listing:
        if entry.is_dir():
            images = _walk_images(root / entry.name, problems)
            if not images:
                problems.append(Problem(root / entry.name, "class folder without images"))
                continue
            classes.append(entry.name)
            per_class.append(images)
        elif os.path.splitext(entry.name)[1].lower() in FOLDER_IMAGE_EXTENSIONS:
            problems.append(Problem(root / entry.name, "image outside a class folder"))
    if len(classes) < 2:
        problems.append(
            Problem(root, f"found {len(classes)} class folder(s) with images, need at least 2")
        )
    paths = [p for images in per_class for p in images]
    labels = np.asarray(
        [label for label, images in enumerate(per_class) for _ in images], dtype=np.int64
    )
    groups = np.asarray([p.relative_to(root).as_posix() for p in paths], dtype=object)
    samples = Samples(
        paths=paths,
        labels=labels,
        groups=groups,
        strata=labels.copy(),
        class_names=classes,
        format="folder",
    )
    return FolderScan(root, samples, problems)
