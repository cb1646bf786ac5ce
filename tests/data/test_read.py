"""The one reader of a training data set: a table plus every problem, for loading and checking."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.data._read import read_data
from hpo.exceptions import ConfigError

from .conftest import DEMO_PROFILES
from .helpers import draw_shapes, image_of, person_dirs


def test_reads_a_whole_data_set_without_problems(demo_root: Path) -> None:
    scan = read_data(demo_root, "mask")
    assert scan.problems == [] and scan.format == "mask"
    assert len(scan.samples) == DEMO_PROFILES * 7


def test_collects_problems_instead_of_raising(data_copy: Path) -> None:
    image_of(person_dirs(data_copy)[3], "mask3").unlink()
    scan = read_data(data_copy, "mask")
    assert any("missing image mask3" in str(p) for p in scan.problems)


def test_a_data_set_without_images_is_a_problem(tmp_path: Path) -> None:
    draw_shapes(tmp_path / "shapes", n=1)
    assert read_data(tmp_path / "shapes", "folder").problems == []
    (tmp_path / "empty" / "train" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "train.csv").write_text("id,gender,race,age,path\n")
    scan = read_data(tmp_path / "empty", "mask")
    assert [str(p) for p in scan.problems] == [f"{tmp_path / 'empty'}: no images found"]


def test_an_unknown_format_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mask"):
        read_data(tmp_path, "nope")
