"""The layout registry: every entry reads, detects and describes its own example data set."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

import hpo
from hpo.config import DataConfig, DataFormat
from hpo.data import (
    FACTORS,
    LAYOUTS,
    Layout,
    Layouts,
    check_data,
    detect_layout,
    get_layout,
    kfold_splits,
    list_layouts,
    load_samples,
)
from hpo.exceptions import ConfigError, DataError

from .helpers import draw_shapes


def _mask_example(demo_root: Path, tmp_path: Path) -> Path:
    return demo_root


def _folder_example(demo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "shapes"
    draw_shapes(root / "train", n=3)
    draw_shapes(root / "eval", n=1, seed=1)
    return root


# One example data root per layout: a new entry without one fails test_every_entry_has_an_example.
EXAMPLES: dict[str, Callable[[Path, Path], Path]] = {
    "mask": _mask_example,
    "folder": _folder_example,
}


def test_every_entry_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(list_layouts())


def test_the_config_accepts_exactly_the_registered_layouts() -> None:
    assert list(get_args(DataFormat)) == list_layouts()
    assert DataConfig().format in LAYOUTS


def test_unknown_layout_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown layout 'coco'; known: mask, folder"):
        get_layout("coco")
    with pytest.raises(ConfigError, match="unknown layout 'coco'"):
        check_data(tmp_path, format="coco")


def test_registering_a_name_twice_is_refused() -> None:
    layouts = Layouts()
    layouts.register(get_layout("folder"))
    with pytest.raises(ValueError, match="registered twice"):
        layouts.register(get_layout("folder"))


@pytest.mark.parametrize("name", list_layouts())
def test_entry_reads_and_detects_its_example(name: str, demo_root: Path, tmp_path: Path) -> None:
    layout = get_layout(name)
    assert isinstance(layout, Layout) and layout.name == name
    root = EXAMPLES[name](demo_root, tmp_path)
    detected, reason = detect_layout(root)
    assert detected is layout and reason
    samples = load_samples(DataConfig(format=name, root=root))
    assert samples.format == name and len(samples) > 0
    # The unit names what a group is: several images per person, one image per image.
    groups = np.unique(samples.groups.astype(str))
    assert layout.unit in ("people", "images")
    assert (len(groups) < len(samples)) == (layout.unit == "people")
    assert set(layout.factors) <= set(FACTORS)
    report = check_data(root, format=name)
    assert report.ok, report.problems
    assert report.format == name and report.layout == layout.description
    assert report.eval_images is not None and report.eval_images > 0
    assert bool(report.factor_counts) == bool(layout.factors)
    assert (report.people is not None) == (layout.unit == "people")


@pytest.mark.parametrize("name", list_layouts())
def test_too_few_groups_names_the_unit(name: str, demo_root: Path, tmp_path: Path) -> None:
    samples = load_samples(DataConfig(format=name, root=EXAMPLES[name](demo_root, tmp_path)))
    n_splits = len(set(samples.groups.tolist())) + 1
    with pytest.raises(DataError, match=rf"\({get_layout(name).unit}\)"):
        kfold_splits(samples, n_splits, seed=0)


def test_no_layout_is_tested_by_name_outside_its_entry() -> None:
    # Callers read an entry's facts; only hpo/data/_layouts.py (and the readers it names) may
    # spell a layout, and nobody compares against one.
    compare = re.compile(r"""[=!]=\s*["'](mask|folder)["']|["'](mask|folder)["']\s*[=!]=""")
    package = Path(hpo.__file__).parent
    found = [
        f"{path.relative_to(package)}:{number}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if compare.search(line)
    ]
    assert found == []
