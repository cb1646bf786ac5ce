"""Decoded-image cache: decode once, share through a memory-mapped file, never drop data."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import decode_image, load_images, load_samples, load_training_data
from hpo.exceptions import DataError

from .helpers import image_of, person_dirs

SIZE = (32, 24)


def some_paths(root: Path, n: int = 12) -> list[Path]:
    return load_samples(DataConfig(root=root)).paths[:n]


def npy_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("images-*.npy"))


def corrupt(path: Path) -> None:
    path.write_bytes(b"definitely not an image" * 10)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_decodes_once_then_memory_maps(demo_root: Path, tmp_path: Path) -> None:
    paths = some_paths(demo_root)
    first = load_images(paths, SIZE, cache_dir=tmp_path)
    assert first.array.shape == (12, 32, 24, 3) and first.array.dtype == np.uint8
    assert first.ok.all() and first.bad == []
    assert first.array.std() > 5, "real pixels, not zeros"
    (cache,) = npy_files(tmp_path)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name], "no temporary files left"
    mtime = cache.stat().st_mtime_ns
    second = load_images(paths, SIZE, cache_dir=tmp_path)
    assert isinstance(second.array, np.memmap) and not second.array.flags.writeable
    assert np.array_equal(first.array, second.array)
    assert cache.stat().st_mtime_ns == mtime, "the cache was reused, not rebuilt"
    for i in (0, 5, 11):
        assert np.array_equal(second.array[i], decode_image(paths[i], SIZE))


def test_png_and_jpeg_decode_alike(demo_root: Path, tmp_path: Path) -> None:
    paths = [p for p in load_samples(DataConfig(root=demo_root)).paths if p.suffix != ".jpg"]
    assert {p.suffix for p in paths} == {".png", ".jpeg"}
    images = load_images(paths, SIZE, cache_dir=tmp_path)
    assert images.ok.all() and images.array.std() > 5


def test_key_follows_files_and_size(demo_root: Path, tmp_path: Path) -> None:
    paths, cache = [], tmp_path / "cache"
    for k, source in enumerate(some_paths(demo_root, 2)):  # private copies to touch
        target = tmp_path / f"{k}{source.suffix}"
        target.write_bytes(source.read_bytes())
        paths.append(target)
    load_images(paths, SIZE, cache_dir=cache)
    load_images(paths, (16, 12), cache_dir=cache)
    assert len(npy_files(cache)) == 2, "another size is another cache"
    os.utime(paths[0], ns=(1, 1))
    load_images(paths, SIZE, cache_dir=cache)
    assert len(npy_files(cache)) == 3, "a changed file is another cache"


def test_default_cache_dir_from_environment(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path / "env-cache"))
    load_images(some_paths(demo_root, 3), SIZE)
    assert len(npy_files(tmp_path / "env-cache")) == 1


def test_concurrent_workers_share_one_build(demo_root: Path, tmp_path: Path) -> None:
    paths = some_paths(demo_root, 20)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: load_images(paths, SIZE, cache_dir=tmp_path), range(3)))
    assert len(npy_files(tmp_path)) == 1
    assert all(np.array_equal(results[0].array, r.array) for r in results[1:])
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_unwritable_cache_falls_back_to_memory(
    demo_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        images = load_images(some_paths(demo_root, 3), SIZE, cache_dir=blocker / "cache")
    assert images.ok.all() and images.array.shape == (3, 32, 24, 3)
    assert "decoding into memory" in caplog.text


def test_empty_list(tmp_path: Path) -> None:
    images = load_images([], SIZE, cache_dir=tmp_path)
    assert images.array.shape == (0, 32, 24, 3) and len(images.ok) == 0


# ---------------------------------------------------------------------------------------------
# A corrupt image stops a run with a clear error unless skip_bad_files, and is then listed.


@pytest.mark.parametrize("damage", [corrupt, truncate])
def test_bad_image_raises_naming_the_file(data_copy: Path, tmp_path: Path, damage: object) -> None:
    paths = some_paths(data_copy)
    damage(paths[4])  # type: ignore[operator]
    with pytest.raises(DataError, match=rf"{paths[4]}: cannot decode image.*skip_bad_files"):
        load_images(paths, SIZE, cache_dir=tmp_path / "cache")
    # The cache remembers the failure: asking again without skipping still raises.
    with pytest.raises(DataError, match=str(paths[4])):
        load_images(paths, SIZE, cache_dir=tmp_path / "cache")
    skipped = load_images(paths, SIZE, cache_dir=tmp_path / "cache", skip_bad_files=True)
    assert skipped.ok.tolist() == [i != 4 for i in range(12)]
    assert [p for p, _ in skipped.bad] == [paths[4]]
    assert "cannot decode image" in skipped.bad[0][1]
    assert not skipped.array[4].any()


def test_missing_file_is_a_bad_file(data_copy: Path, tmp_path: Path) -> None:
    paths = some_paths(data_copy)
    paths[2].unlink()
    with pytest.raises(DataError, match=rf"{paths[2]}: file not found"):
        load_images(paths, SIZE, cache_dir=tmp_path)


def test_training_data_stops_on_a_corrupt_image(data_copy: Path) -> None:
    bad = image_of(person_dirs(data_copy)[5], "mask2")
    corrupt(bad)
    with pytest.raises(DataError, match=rf"{bad}: cannot decode image"):
        load_training_data(DataConfig(root=data_copy, image_size=SIZE))


def test_training_data_skips_and_lists_bad_files_when_asked(
    data_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [
        image_of(person_dirs(data_copy)[5], "mask2"),
        image_of(person_dirs(data_copy)[9], "normal"),
    ]
    for path in bad:
        corrupt(path)
    cfg = DataConfig(root=data_copy, image_size=SIZE, skip_bad_files=True)
    with caplog.at_level(logging.WARNING):
        loaded = load_training_data(cfg)
    full = load_samples(cfg)
    assert len(loaded.samples) == len(full) - 2
    assert len(loaded.images.array) == len(loaded.samples) and loaded.images.ok.all()
    assert [p for p, _ in loaded.images.bad] == bad
    assert not set(loaded.samples.paths) & set(bad)
    assert all(str(p) in caplog.text for p in bad), "skipped files are listed in the log"
    # Rows stay aligned: each kept image is the decoded pixels of its own path.
    for i in (0, len(loaded.samples) - 1):
        assert np.array_equal(loaded.images.array[i], decode_image(loaded.samples.paths[i], SIZE))


def test_training_data_rows_match_samples(demo_root: Path) -> None:
    loaded = load_training_data(DataConfig(root=demo_root, image_size=SIZE))
    assert len(loaded.images.array) == len(loaded.samples) == len(loaded.images.ok)
    assert loaded.images.bad == []
