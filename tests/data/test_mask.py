"""Reader of the competition layout, against a drawn demo data set and broken copies of it."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import load_eval, load_samples
from hpo.exceptions import DataError

from .conftest import DEMO_EVAL_IMAGES, DEMO_PROFILES
from .helpers import image_of, person_dirs, rewrite_csv

MASK = {"mask1": 0, "mask2": 0, "mask3": 0, "mask4": 0, "mask5": 0, "incorrect_mask": 1}


def expected_label(path: Path) -> int:
    """The label from the folder name and file name alone, as the competition defines it."""
    _, gender, _, age = path.parent.name.rsplit("_", 3)
    mask = MASK.get(path.stem, 2)
    group = 0 if int(age) < 30 else 1 if int(age) < 60 else 2
    return mask * 6 + ("male", "female").index(gender) * 3 + group


def test_reads_every_image_with_its_label_and_person(demo_root: Path) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    assert samples.format == "mask"
    assert len(samples) == DEMO_PROFILES * 7
    assert samples.num_classes == 18
    assert samples.labels.dtype == np.int64 and samples.strata.dtype == np.int64
    assert all(p.is_absolute() and p.is_file() for p in samples.paths)
    assert [int(x) for x in samples.labels] == [expected_label(p) for p in samples.paths]
    assert list(samples.groups) == [p.parent.name for p in samples.paths]
    # Strata: gender x age of the person, the label without its mask part.
    assert np.array_equal(samples.strata, samples.labels % 6)
    counts = Counter(samples.groups.tolist())
    assert len(counts) == DEMO_PROFILES and set(counts.values()) == {7}
    assert set(samples.labels.tolist()) == set(range(18))


def test_survives_the_quirks_of_the_real_data(demo_root: Path) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    groups = set(samples.groups.tolist())
    assert any(re.match(r"^\d{6}-\d+_", g) for g in groups), "a suffixed id"
    ids = Counter(g.split("_")[0] for g in groups)
    assert max(ids.values()) == 2, "one id shared by two folders, kept as two people"
    extensions = Counter(p.suffix for p in samples.paths)
    assert set(extensions) == {".jpg", ".jpeg", ".png"}
    mixed = [g for g in groups if len({p.suffix for p in samples.paths if p.parent.name == g}) > 1]
    assert mixed, "a folder mixing extensions"
    assert not any(p.name.startswith("._") for p in samples.paths)
    assert list((demo_root / "train" / "images").glob("._*")), "demo has macOS files to skip"


def test_accepts_the_train_folder_as_root(demo_root: Path) -> None:
    a = load_samples(DataConfig(root=demo_root))
    b = load_samples(DataConfig(root=demo_root / "train"))
    assert a.paths == b.paths and np.array_equal(a.labels, b.labels)


def test_skips_macos_folders_and_os_metadata(data_copy: Path) -> None:
    images = data_copy / "train" / "images"
    junk = images / "._000001_female_Asian_45"
    junk.mkdir()
    (junk / "mask1.jpg").write_bytes(b"\0")
    folder = person_dirs(data_copy)[0]
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "._normal.jpg").write_bytes(b"\0")
    assert len(load_samples(DataConfig(root=data_copy))) == DEMO_PROFILES * 7


# ---------------------------------------------------------------------------------------------
# Every bad input names the file (and the line of a CSV file).


def _csv_line_of(root: Path, folder: str) -> int:
    lines = (root / "train" / "train.csv").read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.endswith(folder))


def test_missing_image(data_copy: Path) -> None:
    folder = person_dirs(data_copy)[3]
    image_of(folder, "mask3").unlink()
    with pytest.raises(DataError, match=rf"{re.escape(str(folder))}: missing image mask3"):
        load_samples(DataConfig(root=data_copy))


@pytest.mark.parametrize("name", ["mask6.jpg", "notes.txt", "normal.gif"])
def test_extra_file_in_a_person_folder(data_copy: Path, name: str) -> None:
    folder = person_dirs(data_copy)[0]
    (folder / name).write_bytes(b"x")
    with pytest.raises(DataError, match=rf"{re.escape(str(folder / name))}: unexpected file"):
        load_samples(DataConfig(root=data_copy))


def test_two_files_for_one_image(data_copy: Path) -> None:
    folder = person_dirs(data_copy)[0]
    shutil.copy(image_of(folder, "mask1"), folder / "mask1.png")
    with pytest.raises(DataError, match="several files for mask1"):
        load_samples(DataConfig(root=data_copy))


def test_csv_without_a_required_column(data_copy: Path) -> None:
    path = data_copy / "train" / "train.csv"
    rewrite_csv(path, lambda rows: [row.pop(3) for row in rows])  # drop "age"
    with pytest.raises(
        DataError, match=rf"{re.escape(str(path))}:1: missing required column 'age'"
    ):
        load_samples(DataConfig(root=data_copy))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [(3, "forty", "unparseable age 'forty'"), (1, "unknown", "unparseable gender 'unknown'")],
)
def test_unparseable_value_names_the_line(
    data_copy: Path, column: int, value: str, message: str
) -> None:
    path = data_copy / "train" / "train.csv"

    def edit(rows: list[list[str]]) -> None:
        rows[4][column] = value

    rewrite_csv(path, edit)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:5: {message}"):
        load_samples(DataConfig(root=data_copy))


def test_listed_folder_missing(data_copy: Path) -> None:
    folder = person_dirs(data_copy)[2]
    line = _csv_line_of(data_copy, folder.name)
    shutil.rmtree(folder)
    with pytest.raises(
        DataError, match=rf"train.csv:{line}: person folder images/{folder.name} not"
    ):
        load_samples(DataConfig(root=data_copy))


def test_folder_not_listed(data_copy: Path) -> None:
    folder = person_dirs(data_copy)[2]
    shutil.copytree(folder, folder.with_name("009999_male_Asian_33"))
    with pytest.raises(DataError, match=r"009999_male_Asian_33: folder not listed in train\.csv"):
        load_samples(DataConfig(root=data_copy))


def test_folder_listed_twice(data_copy: Path) -> None:
    path = data_copy / "train" / "train.csv"
    rewrite_csv(path, lambda rows: rows.append(list(rows[1])))
    with pytest.raises(DataError, match=r"train.csv:\d+: folder .* already listed at line 2"):
        load_samples(DataConfig(root=data_copy))


def test_row_disagreeing_with_folder_name(data_copy: Path) -> None:
    path = data_copy / "train" / "train.csv"

    def edit(rows: list[list[str]]) -> None:
        rows[2][3] = str(int(rows[2][3]) + 1)

    rewrite_csv(path, edit)
    with pytest.raises(DataError, match=r"train.csv:3: age '\d+' disagrees with folder name"):
        load_samples(DataConfig(root=data_copy))


def test_missing_train_csv_and_root(data_copy: Path, tmp_path: Path) -> None:
    (data_copy / "train" / "train.csv").unlink()
    with pytest.raises(DataError, match=r"train.csv: file not found"):
        load_samples(DataConfig(root=data_copy))
    with pytest.raises(DataError, match="data folder not found"):
        load_samples(DataConfig(root=tmp_path / "nowhere"))


def test_error_counts_further_problems(data_copy: Path) -> None:
    for folder in person_dirs(data_copy)[:3]:
        image_of(folder, "normal").unlink()
    with pytest.raises(DataError, match=r"and 2 more problems; `hpo data check .*` lists all"):
        load_samples(DataConfig(root=data_copy))


# ---------------------------------------------------------------------------------------------
# Eval part


def test_eval_rows_in_info_csv_order(demo_root: Path) -> None:
    eval_set = load_eval(demo_root / "eval")
    with (demo_root / "eval" / "info.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert eval_set.ids == [row["ImageID"] for row in rows]
    assert len(eval_set) == DEMO_EVAL_IMAGES
    assert all(re.fullmatch(r"[0-9a-f]{40}\.jpg", i) for i in eval_set.ids)
    assert eval_set.paths == [demo_root / "eval" / "images" / i for i in eval_set.ids]
    assert eval_set.info_csv == demo_root / "eval" / "info.csv"
    assert load_eval(demo_root).ids == eval_set.ids  # the data root works too


def test_eval_missing_image_names_the_line(data_copy: Path) -> None:
    eval_set = load_eval(data_copy)
    eval_set.paths[6].unlink()
    with pytest.raises(DataError, match=rf"info.csv:8: image images/{eval_set.ids[6]} not found"):
        load_eval(data_copy)


def test_eval_csv_without_image_id(data_copy: Path) -> None:
    rewrite_csv(data_copy / "eval" / "info.csv", lambda rows: rows[0].__setitem__(0, "id"))
    with pytest.raises(DataError, match=r"info.csv:1: missing required column 'ImageID'"):
        load_eval(data_copy)


def test_eval_unlisted_file(data_copy: Path) -> None:
    (data_copy / "eval" / "images" / "extra.jpg").write_bytes(b"x")
    with pytest.raises(DataError, match=r"extra.jpg: file not listed in info.csv"):
        load_eval(data_copy / "eval")
