"""Helpers of the data tests: find, list and edit files of a demo data set."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from hpo.config import DataConfig
from hpo.data import load_samples


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


SHAPES = ("circle", "square", "triangle")


def draw_shapes(folder: Path, n: int = 4, seed: int = 0) -> None:
    """``folder/<shape>/<k>.jpg``: ``n`` small JPEGs of each shape."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (folder / shape).mkdir(parents=True)
        for k in range(n):
            image = Image.new("RGB", (32, 24), tuple(int(v) for v in rng.integers(0, 255, 3)))
            draw = ImageDraw.Draw(image)
            box = (4 + k, 4, 24, 20)
            if shape == "circle":
                draw.ellipse(box, fill="white")
            elif shape == "square":
                draw.rectangle(box, fill="white")
            else:
                draw.polygon([(4, 20), (24, 20), (14, 4)], fill="white")
            image.save(folder / shape / f"{k}.jpg", quality=90)


def some_paths(root: Path, n: int = 12) -> list[Path]:
    """The first ``n`` image paths of the data set at ``root``."""
    return load_samples(DataConfig(root=root)).paths[:n]


def corrupt(path: Path) -> None:
    """Overwrite an image with bytes no decoder reads."""
    path.write_bytes(b"definitely not an image" * 10)
