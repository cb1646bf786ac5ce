"""The data fingerprint: same data anywhere -> same value; any change that matters -> another."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import hpo.data._digests as digests_module
from hpo.config import DataConfig
from hpo.data import data_fingerprint, load_samples

from .helpers import image_of, person_dirs, rewrite_csv


def fingerprint(**kwargs: object) -> str:
    cfg = DataConfig(**kwargs)  # type: ignore[arg-type]
    return data_fingerprint(cfg, load_samples(cfg))


def test_short_hex_and_stable(demo_root: Path) -> None:
    value = fingerprint(root=demo_root)
    assert len(value) == 16 and int(value, 16) >= 0
    assert fingerprint(root=demo_root) == value


def test_same_data_mounted_elsewhere_matches(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = fingerprint(root=demo_root)
    elsewhere = Path(shutil.copytree(demo_root, tmp_path / "mnt" / "other-name"))
    assert fingerprint(root=elsewhere) == value
    monkeypatch.chdir(tmp_path)
    assert fingerprint(root=Path("mnt/other-name/")) == value
    assert fingerprint(root=elsewhere / "train") == value
    os.utime(image_of(person_dirs(elsewhere)[0], "mask1"), ns=(1, 1))  # copies lose mtimes
    assert fingerprint(root=elsewhere) == value
    assert fingerprint(root=demo_root, cache_dir=tmp_path, skip_bad_files=True) == value


def test_changes_with_what_training_sees(data_copy: Path) -> None:
    value = fingerprint(root=data_copy)
    assert fingerprint(root=data_copy, image_size=(64, 48)) != value
    image = image_of(person_dirs(data_copy)[0], "mask1")
    image.write_bytes(image.read_bytes() + b"\0")
    changed_file = fingerprint(root=data_copy)
    assert changed_file != value

    def relabel(rows: list[list[str]]) -> None:
        folder = rows[1][4]
        age = 60 if int(rows[1][3]) < 30 else 20
        new = folder.rsplit("_", 1)[0] + f"_{age}"
        (data_copy / "train" / "images" / folder).rename(data_copy / "train" / "images" / new)
        rows[1][3], rows[1][4] = str(age), new

    rewrite_csv(data_copy / "train" / "train.csv", relabel)
    assert fingerprint(root=data_copy) not in (value, changed_file)


def test_edit_in_place_with_mtime_restored_changes_it(data_copy: Path) -> None:
    value = fingerprint(root=data_copy)
    image = image_of(person_dirs(data_copy)[0], "mask1")
    before = os.stat(image)
    with open(image, "r+b") as handle:  # same inode, same size: one byte of the data changed
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p / rsync -a do
    after = os.stat(image)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert fingerprint(root=data_copy) != value


def test_content_digests_are_remembered_per_file_stamp(
    data_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "memo"
    value = fingerprint(root=data_copy, cache_dir=cache)
    assert list(cache.glob("digests-*.json")), "digests remembered in the cache folder"
    read: list[Path] = []
    real = digests_module._digest
    monkeypatch.setattr(digests_module, "_digest", lambda p: read.append(p) or real(p))
    assert fingerprint(root=data_copy, cache_dir=cache) == value
    assert read == [], "an unchanged file is not read again"
    image = image_of(person_dirs(data_copy)[1], "normal")
    os.utime(image, ns=(1, 1))  # a touch: read again, same content, same fingerprint
    assert fingerprint(root=data_copy, cache_dir=cache) == value
    assert read == [image]
