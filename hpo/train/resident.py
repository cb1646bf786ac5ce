"""The decoded data set kept on the training device, uploaded once per process and device.

A worker trains many folds and trials on the same images. Each ``fit`` used to copy its
samples to the GPU again (about 2.6 GiB for the competition set at 256x192, every trial, in
every worker); here the whole ``uint8`` set goes to each device once, and a ``fit`` slices it by
index there. On the CPU the array is used where it lies (a memory-mapped cache stays shared
between the workers of a machine, and nothing is copied).

One set is kept per device: asking for another set on that device releases the previous one
first. Images must not change in place while they are resident.
"""

from __future__ import annotations

import mmap
import os
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hpo.exceptions import DataError, TrainingError

__all__ = ["HEADROOM_BYTES", "ResidentStats", "clear", "resident_images", "stats"]

HEADROOM_BYTES = 1 << 30
"""Free device memory that must remain after the upload, for the model, its activations and
the optimizer (a small model at batch 64 needs well under this; a large one says so itself)."""


@dataclass(frozen=True)
class ResidentStats:
    """How often this process uploaded a data set (``uploads``) and found one resident
    (``hits``)."""

    uploads: int
    hits: int


@dataclass
class _Entry:
    key: tuple[Any, ...]
    source: weakref.ref[np.ndarray] | None  # None: keyed by its memory-mapped file
    tensor: torch.Tensor


_lock = threading.Lock()
_entries: dict[str, _Entry] = {}
_counts = {"uploads": 0, "hits": 0}


def resident_images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """``images`` (``uint8 (N, H, W, 3)``) as a tensor on ``device``, uploaded at most once.

    The same memory-mapped cache file (or the same array object) on the same device returns
    the tensor already there.

    Raises:
        DataError: ``images`` is not ``uint8 (N, H, W, 3)``.
        TrainingError: ``device`` lacks the free memory to hold the set with
            :data:`HEADROOM_BYTES` to spare.
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    key = _key(images, device)
    slot = str(device)
    with _lock:
        entry = _entries.get(slot)
        same = entry is not None and entry.key == key
        if entry is not None and same and (entry.source is None or entry.source() is images):
            _counts["hits"] += 1
            return entry.tensor
        # Release the previous set before uploading the next one: both may not fit.
        _entries.pop(slot, None)
        del entry
        tensor = _upload(images, device)
        source = None if _file_of(images) is not None else weakref.ref(images)
        _entries[slot] = _Entry(key, source, tensor)
        _counts["uploads"] += 1
        return tensor


def stats() -> ResidentStats:
    """Uploads and hits of this process so far."""
    with _lock:
        return ResidentStats(**_counts)


def clear() -> None:
    """Release every resident set (their device memory is freed once no model holds a slice)."""
    with _lock:
        _entries.clear()


def _file_of(images: np.ndarray) -> str | None:
    """The file ``images`` maps as a whole (not a view of part of a mapping), else None."""
    if not isinstance(images, np.memmap) or not isinstance(images.base, mmap.mmap):
        return None
    filename = images.filename  # a str or a Path, as the caller opened it
    return None if filename is None else os.path.abspath(os.fspath(filename))


def _key(images: np.ndarray, device: torch.device) -> tuple[Any, ...]:
    filename = _file_of(images)
    shape = tuple(int(n) for n in images.shape)
    if filename is not None:
        assert isinstance(images, np.memmap)
        # A rewritten cache file is another data set: its modification time tells.
        stat = os.stat(filename)
        return ("file", filename, stat.st_mtime_ns, int(images.offset), shape, str(device))
    return ("array", id(images), shape, str(device))


def _upload(images: np.ndarray, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # before any copy: the set may not fit
        torch.cuda.empty_cache()  # the previous set, just released
        _check_free_memory(int(images.nbytes), device, tuple(images.shape))
    array = np.ascontiguousarray(images)
    with warnings.catch_warnings():
        # A read-only memmap: the tensor is only ever read (indexing copies).
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        host = torch.from_numpy(array)
    if device.type != "cuda":
        return host
    # Through pinned memory in chunks: a pageable copy of gigabytes is several times slower,
    # and pinning the whole set at once would double the host memory it takes.
    out = torch.empty(host.shape, dtype=torch.uint8, device=device)
    rows = max(1, (256 << 20) // max(1, host[:1].nbytes))
    for begin in range(0, len(host), rows):
        out[begin : begin + rows].copy_(host[begin : begin + rows].pin_memory(), non_blocking=True)
    torch.cuda.synchronize(device)
    return out


def _check_free_memory(nbytes: int, device: torch.device, shape: tuple[int, ...]) -> None:
    free, total = torch.cuda.mem_get_info(device)
    # Memory this process's caching allocator holds but does not use is free for the upload.
    free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if nbytes + HEADROOM_BYTES > free:
        gib = 1 << 30
        raise TrainingError(
            f"the training images {shape} need {nbytes / gib:.2f} GiB on {device}, but only "
            f"{free / gib:.2f} GiB of its {total / gib:.2f} GiB is free (1 GiB must remain for "
            f"the model); run fewer workers per GPU, a smaller data.image_size, or free the GPU"
        )
