"""The demo data generator: real layout and file names, quirks, imbalance, determinism."""

from __future__ import annotations

import csv
import filecmp
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hpo.demo import _people, make_demo_data
from hpo.exceptions import DataError

CliRun = Callable[..., tuple[int, str, str]]

DEMO_PROFILES = 24  # the session's demo_data fixture (tests/conftest.py)
DEMO_EVAL_IMAGES = DEMO_PROFILES * 7 // 2  # half the training images by default
STEMS = {"mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"}


def person_dirs(root: Path) -> list[Path]:
    images = root / "train" / "images"
    return sorted(p for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_real_layout_and_file_names(demo_data: Path) -> None:
    rows = read_rows(demo_data / "train" / "train.csv")
    assert list(rows[0]) == ["id", "gender", "race", "age", "path"]
    assert len(rows) == DEMO_PROFILES
    folders = person_dirs(demo_data)
    assert sorted(r["path"] for r in rows) == [f.name for f in folders]
    for row in rows:
        assert row["path"] == f"{row['id']}_{row['gender']}_{row['race']}_{row['age']}"
        assert re.fullmatch(r"\d{6}(-\d+)?", row["id"]) and row["race"] == "Asian"
        assert row["gender"] in ("male", "female") and 18 <= int(row["age"]) <= 60
    for folder in folders:
        real = [p for p in folder.iterdir() if not p.name.startswith("._")]
        assert {p.stem for p in real} == STEMS and len(real) == 7
        assert {p.suffix for p in real} <= {".jpg", ".jpeg", ".png"}
    with Image.open(next(folders[0].iterdir())) as image:
        assert image.size == (384, 512)


def test_quirks_of_the_real_data(demo_data: Path) -> None:
    rows = read_rows(demo_data / "train" / "train.csv")
    assert any("-" in r["id"] for r in rows), "a suffixed id"
    assert max(Counter(r["id"] for r in rows).values()) == 2, "an id shared by two folders"
    mixed = [
        f
        for f in person_dirs(demo_data)
        if len({p.suffix for p in f.iterdir() if not p.name.startswith("._")}) > 1
    ]
    assert mixed, "a folder mixing extensions"
    images = demo_data / "train" / "images"
    assert list(images.glob("._*")) and list(images.glob("*/._*")), "macOS ._ files"


def test_every_class_and_realistic_shares(demo_data: Path) -> None:
    rows = read_rows(demo_data / "train" / "train.csv")
    cells = Counter((r["gender"], min(int(r["age"]) // 30, 2)) for r in rows)
    assert len(cells) == 6, "all gender x age groups present, so all 18 classes"
    # Allocation at full scale: about 61 % women and 7 % aged exactly 60.
    people = _people(2700, np.random.default_rng(0))
    assert abs(np.mean([p.gender == 1 for p in people]) - 0.614) < 0.01
    assert abs(np.mean([p.age == 60 for p in people]) - 0.071) < 0.01
    assert min(p.age for p in people) == 18 and max(p.age for p in people) == 60


def test_eval_part(demo_data: Path) -> None:
    info = read_rows(demo_data / "eval" / "info.csv")
    answers = read_rows(demo_data / "eval" / "answers.csv")
    assert list(info[0]) == ["ImageID", "ans"] and list(answers[0]) == ["ImageID", "ans"]
    assert len(info) == DEMO_EVAL_IMAGES
    assert all(r["ans"] == "" for r in info)
    assert [r["ImageID"] for r in info] == [r["ImageID"] for r in answers]
    assert all(re.fullmatch(r"[0-9a-f]{40}\.jpg", r["ImageID"]) for r in info)
    assert all(0 <= int(r["ans"]) < 18 for r in answers)
    images = demo_data / "eval" / "images"
    assert {p.name for p in images.iterdir() if not p.name.startswith("._")} == {
        r["ImageID"] for r in info
    }


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = make_demo_data(tmp_path / "a", 8, seed=4, eval_images=5, workers=1)
    b = make_demo_data(tmp_path / "b", 8, seed=4, eval_images=5, workers=2)  # worker processes
    c = make_demo_data(tmp_path / "c", 3, seed=5, eval_images=5, workers=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors
    assert (a / "train" / "train.csv").read_bytes() != (c / "train" / "train.csv").read_bytes()


def test_refuses_to_overwrite(demo_data: Path) -> None:
    with pytest.raises(DataError, match="already exists"):
        make_demo_data(demo_data, 2)
    with pytest.raises(DataError, match="at least 1"):
        make_demo_data(demo_data.parent / "new", 0)


def test_cli(tmp_path: Path, run_cli: CliRun) -> None:
    code, out, err = run_cli(
        "data",
        "synth",
        "--out",
        tmp_path / "d",
        "--profiles",
        "2",
        "--seed",
        "1",
        "--eval-images",
        "3",
    )
    assert code == 0, err
    assert str(tmp_path / "d") in out
    assert len(read_rows(tmp_path / "d" / "eval" / "info.csv")) == 3
    code, _, err = run_cli("data", "synth", "--out", tmp_path / "d")
    assert code == 2 and err.startswith("error: ") and "already exists" in err
