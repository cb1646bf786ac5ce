"""Listing, verifying and pruning the entries of the decoded-image cache."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

from hpo.data import list_cache, load_images, prune_cache, verify_cache

from .helpers import some_paths


def _age(cache: Path, key_of: Path, seconds: float) -> None:
    sidecar = key_of.with_suffix(".json")
    when = time.time() - seconds
    os.utime(sidecar, (when, when))


def test_prune_by_age_and_size_keeps_entries_in_use(demo_root: Path, tmp_path: Path) -> None:
    paths = some_paths(demo_root, 6)
    sizes = [(16, 12), (20, 16), (24, 20), (28, 24)]
    held = None
    for k, size in enumerate(sizes):
        images = load_images(paths, size, cache_dir=tmp_path)
        if k == 0:
            held = images  # mapped: in use
    del images
    gc.collect()
    entries = list_cache(tmp_path)
    assert len(entries) == 4 and [e.in_use for e in entries].count(True) == 1
    by_size = {e.image_size: e for e in entries}
    for age, size in zip((400, 300, 200, 100), sizes, strict=True):
        _age(tmp_path, by_size[size].path, age)
    assert [e.image_size for e in list_cache(tmp_path)] == sizes, "least recently used first"

    removed = prune_cache(tmp_path, older_than=250)
    assert [e.image_size for e in removed] == [(20, 16)], "the oldest is in use and stays"
    assert len(held.array) == 6  # type: ignore[union-attr]
    total = sum(e.size for e in list_cache(tmp_path))
    removed = prune_cache(tmp_path, max_size=total - 1)
    assert [e.image_size for e in removed] == [(24, 20)]
    held = None
    gc.collect()
    removed = prune_cache(tmp_path, max_size=0)
    assert sorted(e.image_size for e in removed) == [(16, 12), (28, 24)]
    assert list_cache(tmp_path) == []
    assert not list(tmp_path.glob("images-*")), "their lock files went with them"
    assert load_images(paths, (16, 12), cache_dir=tmp_path).ok.all(), "rebuilt when used again"


def test_verify_names_a_damaged_entry_and_passes_a_whole_one(
    demo_root: Path, tmp_path: Path
) -> None:
    paths = some_paths(demo_root, 4)
    load_images(paths, (16, 12), cache_dir=tmp_path)
    load_images(paths, (20, 16), cache_dir=tmp_path)
    gc.collect()
    assert verify_cache(tmp_path) == []
    damaged = next(e for e in list_cache(tmp_path) if e.image_size == (20, 16))
    data = bytearray(damaged.path.read_bytes())
    data[-10:] = bytes(b ^ 0xFF for b in data[-10:])
    damaged.path.write_bytes(bytes(data))
    (failed,) = verify_cache(tmp_path)
    assert failed.key == damaged.key and "checksum" in (failed.problem or "")
