"""Reader of the generic image-folder layout: ``ROOT/<class>/*.jpg``, one folder per class.

A root split into ``train/`` (class folders) and ``eval/`` is read from ``train/``. A class
folder that holds folders is refused, never read as one class: that is how a root one level
too high (``ROOT/train/<class>``, ``ROOT/eval/<class>``) would otherwise look, and it would
train on the eval images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpo.data._mask import is_metadata
from hpo.data._table import Problem, Samples

__all__ = [
    "FOLDER_IMAGE_EXTENSIONS",
    "SPLIT_FOLDERS",
    "FolderScan",
    "find_class_root",
    "scan_folder",
]

FOLDER_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SPLIT_FOLDERS = ("train", "eval")
"""The folders of a split root: class folders to train on, and the images to predict."""


@dataclass
class FolderScan:
    """The images found under a class-folder root, and every problem with it."""

    root: Path
    samples: Samples
    problems: list[Problem]


def _list(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return sorted((e for e in entries if not is_metadata(e.name)), key=lambda e: e.name)


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in FOLDER_IMAGE_EXTENSIONS


def find_class_root(root: Path) -> Path:
    """``root/train`` when ``root`` is split into ``train/`` and ``eval/``, else ``root``.

    ``train/`` without ``eval/`` beside it is a split folder when it holds folders, and a
    class named ``train`` when it holds only images.
    """
    train = root / "train"
    if not train.is_dir():
        return root
    if (root / "eval").is_dir() or any(entry.is_dir() for entry in _list(train)):
        return train
    return root


def _class_images(class_dir: Path, problems: list[Problem]) -> list[Path] | None:
    """The images of one class folder; None (and one problem) when it holds folders."""
    images = []
    folders = []
    for entry in _list(class_dir):
        if entry.is_dir():
            folders.append(entry.name)
        elif _is_image(entry.name):
            images.append(class_dir / entry.name)
        else:
            exts = "/".join(FOLDER_IMAGE_EXTENSIONS)
            problems.append(
                Problem(class_dir / entry.name, f"unexpected file (expected {exts} images)")
            )
    if folders:
        shown = ", ".join(folders[:3]) + (
            f" (+{len(folders) - 3} more)" if len(folders) > 3 else ""
        )
        problems.append(
            Problem(
                class_dir,
                f"class folder holds folders ({shown}), not read as a class: images go directly "
                f"in class folders; data.root is the folder of class folders, or holds "
                f"train/ (and eval/)",
            )
        )
        return None
    return images


def scan_folder(root: Path) -> FolderScan:
    """Read every class folder under ``root``, collecting problems instead of raising.

    Each image is its own group (its path relative to the class root) and its label is its
    stratum. When ``root`` holds ``train/`` with class folders, classes are read from
    ``train/``; ``eval/`` beside it holds the images to predict, and any other folder there is
    a problem. Images directly in the class root have no class and are problems; other files
    there (a README) are ignored.
    """
    root = Path(root).absolute()
    problems: list[Problem] = []
    class_root = find_class_root(root)
    if class_root != root:
        for entry in _list(root):
            if entry.is_dir() and entry.name not in SPLIT_FOLDERS:
                problems.append(
                    Problem(
                        root / entry.name,
                        "unexpected folder beside train/ and eval/ (a data root holding train/ "
                        "is read as train/<class>/ images and eval/ images to predict)",
                    )
                )
            elif not entry.is_dir() and _is_image(entry.name):
                problems.append(Problem(root / entry.name, "image outside a class folder"))
    classes: list[str] = []
    per_class: list[list[Path]] = []
    for entry in _list(class_root):
        if entry.is_dir():
            images = _class_images(class_root / entry.name, problems)
            if images is None:
                continue
            if not images:
                problems.append(Problem(class_root / entry.name, "class folder without images"))
                continue
            classes.append(entry.name)
            per_class.append(images)
        elif _is_image(entry.name):
            problems.append(Problem(class_root / entry.name, "image outside a class folder"))
    if len(classes) < 2:
        problems.append(
            Problem(
                class_root, f"found {len(classes)} class folder(s) with images, need at least 2"
            )
        )
    paths = [p for images in per_class for p in images]
    labels = np.asarray(
        [label for label, images in enumerate(per_class) for _ in images], dtype=np.int64
    )
    groups = np.asarray([p.relative_to(class_root).as_posix() for p in paths], dtype=object)
    samples = Samples(
        paths=paths,
        labels=labels,
        groups=groups,
        strata=labels.copy(),
        class_names=classes,
        format="folder",
    )
    return FolderScan(root, samples, problems)
