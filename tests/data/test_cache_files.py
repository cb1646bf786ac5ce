"""The cache's files and settings: environment settings, sizes, durations, checksums."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from hpo.data import load_images
from hpo.data._cache_files import (
    EntryFiles,
    cache_settings,
    checksums,
    parse_duration,
    parse_size,
)
from hpo.exceptions import DataError

from .helpers import some_paths

SIZE = (32, 24)


def test_cache_settings_that_do_not_parse_are_one_line_errors(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (
        ("HPO_CACHE_MAX_SIZE", "lots"),
        ("HPO_CACHE_WAIT", "soon"),
        ("HPO_CACHE_SHARED", "world"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, value)
            with pytest.raises(DataError, match=rf"^{name}.*{value}"):
                load_images(some_paths(demo_root, 2), SIZE, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists(), "nothing written before the settings are checked"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1000000", 1_000_000),
        ("20G", 20 << 30),
        ("500M", 500 << 20),
        ("1.5k", 1536),
        ("2GiB", 2 << 30),
    ],
)
def test_sizes_parse_in_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30.0), ("90s", 90.0), ("10m", 600.0), ("12h", 43200.0), ("2w", 1209600.0)],
)
def test_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("parse", [parse_size, parse_duration])
def test_a_value_that_does_not_parse_says_what_is_accepted(parse: object) -> None:
    with pytest.raises(ValueError, match="'lots': expected"):
        parse("lots")  # type: ignore[operator]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HPO_CACHE_MAX_SIZE", "HPO_CACHE_WAIT", "HPO_CACHE_SHARED"):
        monkeypatch.delenv(name, raising=False)
    plain = cache_settings()
    assert (plain.max_size, plain.wait, plain.group) == (None, None, False)
    monkeypatch.setenv("HPO_CACHE_MAX_SIZE", "1M")
    monkeypatch.setenv("HPO_CACHE_WAIT", "5m")
    monkeypatch.setenv("HPO_CACHE_SHARED", "Group")
    assert cache_settings() == type(plain)(max_size=1 << 20, wait=300.0, group=True)


def test_checksums_cover_every_chunk_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "data"
    data = bytes(range(256)) * 10  # 2560 bytes: two whole chunks of 1024 and a part
    path.write_bytes(data)
    assert checksums(path, chunk=1024) == [
        zlib.crc32(data[:1024]),
        zlib.crc32(data[1024:2048]),
        zlib.crc32(data[2048:]),
    ]


def test_entry_files_are_named_by_key_and_temporaries_are_leftovers(tmp_path: Path) -> None:
    files = EntryFiles(tmp_path, "abc")
    assert [p.name for p in (files.npy, files.meta, files.lock, files.use, files.status)] == [
        "images-abc.npy",
        "images-abc.json",
        "images-abc.lock",
        "images-abc.use",
        "images-abc.status",
    ]
    temporary = files.temporary("npy")
    assert temporary.exists() and temporary.name.startswith(".images-abc.")
    assert files.leftovers() == [temporary]
    assert EntryFiles(tmp_path, "other").leftovers() == []
