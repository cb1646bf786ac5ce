"""The data set on the training device: once per process and device, keyed by the cache file
(or the array), replaced by the next set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hpo.exceptions import DataError
from hpo.train import resident

from .helpers import CPU


def _counts() -> tuple[int, int]:
    stats = resident.stats()
    return stats.uploads, stats.hits


def test_the_same_cache_file_is_uploaded_once(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 255, (6, 4, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", images)
    uploads, hits = _counts()
    first = resident.resident_images(np.load(tmp_path / "a.npy", mmap_mode="r"), CPU)
    again = resident.resident_images(np.load(tmp_path / "a.npy", mmap_mode="r"), CPU)
    assert again is first and _counts() == (uploads + 1, hits + 1)
    assert torch.equal(first, torch.from_numpy(images))
    # A part of the mapping is another set.
    part = resident.resident_images(np.load(tmp_path / "a.npy", mmap_mode="r")[2:], CPU)
    assert part.shape[0] == 4 and _counts() == (uploads + 2, hits + 1)


def test_arrays_are_keyed_by_identity_and_the_next_set_replaces_the_last() -> None:
    a = np.zeros((3, 2, 2, 3), dtype=np.uint8)
    b = np.ones((3, 2, 2, 3), dtype=np.uint8)
    uploads, hits = _counts()
    resident.resident_images(a, CPU)
    resident.resident_images(a, CPU)
    assert torch.equal(resident.resident_images(b, CPU), torch.ones(3, 2, 2, 3, dtype=torch.uint8))
    resident.resident_images(a, CPU)  # b took a's place: a is uploaded again
    assert _counts() == (uploads + 3, hits + 1)
    resident.clear()


def test_bad_images_are_data_errors() -> None:
    with pytest.raises(DataError, match=r"expected uint8 images \(N, H, W, 3\)"):
        resident.resident_images(np.zeros((2, 4, 4), dtype=np.uint8), CPU)
    with pytest.raises(DataError, match="float32"):
        resident.resident_images(np.zeros((2, 4, 4, 3), dtype=np.float32), CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (HPO_TEST_CUDA=1)")
def test_a_set_larger_than_the_free_gpu_memory_is_refused_before_any_copy() -> None:
    from hpo.exceptions import TrainingError

    free, _ = torch.cuda.mem_get_info(0)
    rows = free // (256 * 192 * 3) + 1
    # A broadcast view: gigabytes of rows that take no host memory.
    huge = np.broadcast_to(np.zeros((1, 256, 192, 3), dtype=np.uint8), (rows, 256, 192, 3))
    with pytest.raises(TrainingError, match=r"need .* GiB on cuda:0, but only .* GiB of its"):
        resident.resident_images(huge, torch.device("cuda", 0))
