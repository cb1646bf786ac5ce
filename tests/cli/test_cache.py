"""``hpo cache ls | prune | check`` on a real cache folder."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hpo.config import DataConfig
from hpo.data import list_cache, load_images, load_samples

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cache(tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder (HPO_CACHE_DIR) with two entries, 16x12 used a day ago, 20x16 now."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HPO_CACHE_DIR", str(folder))
    paths = load_samples(DataConfig(root=demo_data)).paths[:5]
    for size in ((16, 12), (20, 16)):
        load_images(paths, size)
    gc.collect()  # nothing holds the maps: neither entry is in use
    (old,) = [e for e in list_cache(folder) if e.image_size == (16, 12)]
    day_ago = time.time() - 86400
    os.utime(old.path.with_suffix(".json"), (day_ago, day_ago))
    return folder


def test_ls_lists_entries(cache: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("cache", "ls")
    assert code == 0
    assert "16x12" in out and "20x16" in out and "1 d ago" in out and "2 entries" in out
    assert out.index("16x12") < out.index("20x16"), "least recently used first"


def test_ls_of_an_empty_cache(tmp_path: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("cache", "ls", "--cache-dir", tmp_path / "none")
    assert code == 0 and "no cache entries" in out


def test_prune_older_than(cache: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("cache", "prune", "--older-than", "12h", "--dry-run")
    assert code == 0 and "would delete 1 entries" in out
    assert len(list_cache(cache)) == 2
    code, out, _ = run_cli("cache", "prune", "--older-than", "12h")
    assert code == 0 and "deleted 1 entries" in out
    assert [e.image_size for e in list_cache(cache)] == [(20, 16)]


def test_prune_to_a_size(cache: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("cache", "prune", "--max-size", "0")
    assert code == 0 and "deleted 2 entries" in out and list_cache(cache) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--older-than", "soon"), "expected a duration like 30s"),
        (("--max-size", "lots"), "expected a size like 20G"),
        ((), "give --older-than, --max-size or both"),
    ],
)
def test_prune_refuses_bad_arguments(
    cache: Path, run_cli: CliRun, args: tuple[str, ...], expected: str
) -> None:
    code, _, err = run_cli("cache", "prune", *args)
    assert code == 2 and expected in err
    assert len(list_cache(cache)) == 2


def test_check_finds_damaged_entries(cache: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("cache", "check")
    assert code == 0 and "2 of 2 entries intact" in out
    (entry,) = [e for e in list_cache(cache) if e.image_size == (20, 16)]
    data = bytearray(entry.path.read_bytes())
    data[-100:] = bytes(100)
    entry.path.write_bytes(bytes(data))
    code, out, err = run_cli("cache", "check")
    assert code == 2 and "1 of 2 entries intact" in out
    assert f"{entry.path}: chunk 1 of 1 fails its checksum" in err
