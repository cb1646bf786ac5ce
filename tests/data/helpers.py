"""Helpers of the data tests: find and edit files of a demo data set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def person_dirs(root: Path) -> list[Path]:
    """The person folders of a competition-layout root, sorted (``._*`` files left out)."""
    images = root / "train" / "images"
    return sorted(p for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))


def image_of(folder: Path, stem: str) -> Path:
    """The file of image ``stem`` (``mask1`` .. ``normal``) in a person folder."""
    (path,) = [p for p in folder.iterdir() if p.stem == stem and not p.name.startswith(".")]
    return path


def rewrite_csv(path: Path, edit: Callable[[list[list[str]]], object]) -> None:
    """Rewrite a small CSV file through ``edit`` of its rows (header included)."""
    rows = [line.split(",") for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("".join(",".join(row) + "\n" for row in rows))
