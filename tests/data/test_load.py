"""Loading a training data set: samples, decoded rows and bad files, kept aligned."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import ImageRows, decode_image, load_samples, load_training_data
from hpo.exceptions import DataError

from .helpers import corrupt, image_of, person_dirs

SIZE = (32, 24)


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


def test_skipping_bad_files_keeps_the_shared_map(data_copy: Path) -> None:
    corrupt(image_of(person_dirs(data_copy)[5], "mask2"))
    cfg = DataConfig(root=data_copy, image_size=SIZE, skip_bad_files=True)
    loaded = load_training_data(cfg)
    rows = loaded.images.array
    assert isinstance(rows, ImageRows) and isinstance(rows.base, np.memmap)
    assert rows.shape == (len(loaded.samples), *SIZE, 3) and len(rows) == len(loaded.samples)
    assert len(rows.base) == len(loaded.samples) + 1, "the whole shared map, no private copy"
    assert np.shares_memory(rows[0], rows.base), "a row is read from the map itself"
    for i in (0, 6, len(rows) - 1):
        assert np.array_equal(rows[i], decode_image(loaded.samples.paths[i], SIZE))
    idx = np.array([3, 0, 9])
    assert np.array_equal(rows[idx], np.stack([rows[3], rows[0], rows[9]]))
    assert np.array_equal(rows[2:4, 0], np.asarray(rows)[2:4, 0])
    assert rows[5, 1, 2].tolist() == np.asarray(rows)[5, 1, 2].tolist()
