"""Decoded-image cache: decode once, share through a memory-mapped file, never drop data."""

from __future__ import annotations

import errno
import gc
import io
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hpo.data._cache as cache_module
from hpo.config import DataConfig
from hpo.data import (
    decode_image,
    list_cache,
    load_images,
    load_samples,
)
from hpo.exceptions import DataError
from hpo.testing.disks import mounted_tmpfs

from .helpers import corrupt, some_paths

SIZE = (32, 24)


def npy_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("images-*.npy"))


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


# ---------------------------------------------------------------------------------------------
# Never wrong pixels: an edit in place with the mtime kept, damaged bytes, a transient read error.


def _bmp(path: Path, colour: tuple[int, int, int]) -> None:
    Image.new("RGB", (24, 32), colour).save(path, format="BMP")  # same size for any colour


def test_edit_in_place_with_mtime_restored_gives_new_pixels(tmp_path: Path) -> None:
    paths = [tmp_path / "a.bmp", tmp_path / "b.bmp"]
    _bmp(paths[0], (255, 0, 0))
    _bmp(paths[1], (0, 255, 0))
    first = load_images(paths, SIZE, cache_dir=tmp_path / "cache")
    assert first.array[0, 0, 0].tolist() == [255, 0, 0]
    before = os.stat(paths[0])
    with open(paths[0], "r+b") as handle:  # in place: same inode, same size
        buffer = io.BytesIO()
        Image.new("RGB", (24, 32), (0, 0, 255)).save(buffer, format="BMP")
        handle.write(buffer.getvalue())
    os.utime(paths[0], ns=(before.st_atime_ns, before.st_mtime_ns))  # as cp -p / rsync -a do
    after = os.stat(paths[0])
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    second = load_images(paths, SIZE, cache_dir=tmp_path / "cache")
    assert second.array[0, 0, 0].tolist() == [0, 0, 255], "the new pixels, not the cached ones"


def _flip_bytes(path: Path, count: int = 650) -> None:
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.choice(np.arange(128, len(data)), size=count, replace=False):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _zero_second_half(path: Path) -> None:
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = bytes(len(data) - half)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_flip_bytes, _zero_second_half])
def test_damaged_cache_is_detected_and_rebuilt(
    demo_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    paths = some_paths(demo_root)
    fresh = np.array(load_images(paths, SIZE, cache_dir=tmp_path).array)
    (cache,) = npy_files(tmp_path)
    damage(cache)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING):
        again = load_images(paths, SIZE, cache_dir=tmp_path)
    assert "fails its checksum" in caplog.text and "rebuilding" in caplog.text
    assert np.array_equal(again.array, fresh)


def test_big_entries_are_checked_by_samples_that_include_the_end(
    demo_root: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_module, "CHUNK", 512)  # ~50 chunks: a sample is checked on open
    paths = some_paths(demo_root)
    fresh = np.array(load_images(paths, SIZE, cache_dir=tmp_path).array)
    (cache,) = npy_files(tmp_path)
    assert len(json.loads(cache.with_suffix(".json").read_text())["crc32"]) > 20
    _zero_second_half(cache)
    with caplog.at_level(logging.WARNING):
        again = load_images(paths, SIZE, cache_dir=tmp_path)
    assert "fails its checksum" in caplog.text
    assert np.array_equal(again.array, fresh)


@pytest.mark.parametrize("edit", ["drop bad", "mistype bad", "drop crc32", "not an object"])
def test_malformed_sidecar_is_a_damaged_entry_not_a_traceback(
    demo_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, edit: str
) -> None:
    paths = some_paths(demo_root, 4)
    fresh = np.array(load_images(paths, SIZE, cache_dir=tmp_path).array)
    (sidecar,) = tmp_path.glob("images-*.json")
    record = json.loads(sidecar.read_text())
    if edit == "drop bad":
        del record["bad"]
    elif edit == "mistype bad":
        record["bad"] = [[0, "x"]]
    elif edit == "drop crc32":
        del record["crc32"]
    else:
        record = [record]
    sidecar.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING):
        again = load_images(paths, SIZE, cache_dir=tmp_path)
    assert "damaged" in caplog.text and "rebuilding" in caplog.text
    assert np.array_equal(again.array, fresh)
    assert "bad" in json.loads(sidecar.read_text()), "rebuilt with a whole sidecar"


@pytest.mark.parametrize(
    "error",
    [OSError(errno.EIO, "Input/output error"), OSError(errno.EMFILE, "Too many open files")],
)
def test_read_error_aborts_the_build_and_is_not_cached(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError
) -> None:
    paths = some_paths(demo_root)
    real_open = Image.open
    failed: list[Path] = []

    def flaky_open(path: Path, *args: object, **kwargs: object) -> Image.Image:
        if Path(path) == paths[3] and not failed:  # fault injection: fails once
            failed.append(Path(path))
            raise error
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", flaky_open)
    with pytest.raises(DataError, match=rf"{paths[3]}: cannot read \({error.strerror}\)"):
        load_images(paths, SIZE, cache_dir=tmp_path)
    assert npy_files(tmp_path) == [], "nothing was cached"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    images = load_images(paths, SIZE, cache_dir=tmp_path)  # the next run reads it fine
    assert images.ok.all() and images.bad == []
    assert np.array_equal(images.array[3], decode_image(paths[3], SIZE))


def test_memory_error_aborts_the_build(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = some_paths(demo_root)

    def no_memory(path: Path, *args: object, **kwargs: object) -> Image.Image:
        raise MemoryError

    monkeypatch.setattr(Image, "open", no_memory)
    with pytest.raises(MemoryError):
        load_images(paths, SIZE, cache_dir=tmp_path)
    assert npy_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Never a full disk, never a silent hang: a small tmpfs, a killed and a stopped builder.

_LOAD = """
import sys, time
from pathlib import Path
import hpo.data._cache as c
delay = float(sys.argv[3])
if delay:
    real = c.decode_image
    def slow(*args, **kwargs):
        time.sleep(delay)
        return real(*args, **kwargs)
    c.decode_image = slow
paths = [Path(p) for p in sys.argv[4:]]
size = tuple(int(v) for v in sys.argv[2].split("x"))
images = c.load_images(paths, size, cache_dir=Path(sys.argv[1]))
print("rows", len(images), "ok", int(images.ok.sum()), "std", float(images.array.std()))
"""


def _loader(
    cache: Path, paths: list[Path], size: tuple[int, int], delay: float = 0.0
) -> subprocess.Popen[str]:
    args = [str(cache), f"{size[0]}x{size[1]}", str(delay), *map(str, paths)]
    return subprocess.Popen(
        [sys.executable, "-c", _LOAD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 300 KB tmpfs (needs root and mount; skipped where it cannot be mounted)."""
    with mounted_tmpfs(tmp_path / "tmpfs", "300k") as mount:
        yield mount


def test_full_disk_falls_back_to_memory_and_leaves_nothing(
    demo_root: Path, small_tmpfs: Path
) -> None:
    paths = some_paths(demo_root)  # 12 images at 128x96: 442 KB, more than the 300 KB disk
    loader = _loader(small_tmpfs, paths, (128, 96))
    out, err = loader.communicate(timeout=300)
    assert loader.returncode == 0, f"exit {loader.returncode}: {err}"
    assert "rows 12 ok 12" in out
    assert "no space left" in err and "decoding into memory" in err, err
    left = [p.name for p in small_tmpfs.iterdir() if p.suffix in (".npy", ".tmp", ".json")]
    assert left == [], "no temporary file fills the disk"
    assert shutil.disk_usage(small_tmpfs).used < 50_000


def test_file_size_limit_falls_back_to_memory_and_leaves_nothing(
    demo_root: Path, tmp_path: Path
) -> None:
    limited = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
    )
    args = [str(tmp_path / "cache"), "128x96", "0", *map(str, some_paths(demo_root))]
    done = subprocess.run(
        [sys.executable, "-c", limited + _LOAD, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr}"
    assert "rows 12 ok 12" in done.stdout and "decoding into memory" in done.stderr
    assert not [p for p in (tmp_path / "cache").iterdir() if p.suffix in (".npy", ".tmp")]


def test_leftovers_of_a_killed_builder_are_removed(demo_root: Path, tmp_path: Path) -> None:
    paths = some_paths(demo_root)
    cache = tmp_path / "cache"
    builder = _loader(cache, paths, SIZE, delay=0.5)
    try:
        _wait_for(lambda: any(cache.glob(".images-*.npy.tmp")), "the builder's temporary file")
    finally:
        builder.kill()  # SIGKILL: no cleanup runs
        builder.wait()
    assert list(cache.glob(".images-*.tmp")), "the killed builder left its temporary file"
    images = load_images(paths, SIZE, cache_dir=cache)
    assert images.ok.all()
    assert not list(cache.glob(".images-*.tmp")), "leftovers removed under the lock"


def test_waiting_for_a_stopped_builder_says_who_and_gives_up(
    demo_root: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = some_paths(demo_root)
    cache = tmp_path / "cache"
    builder = _loader(cache, paths, SIZE, delay=0.3)

    def progressed() -> bool:
        try:
            return json.loads(next(cache.glob("*.status")).read_text())["done"] > 0
        except (StopIteration, ValueError, OSError):
            return False

    try:
        _wait_for(progressed, "the builder's progress")
        os.kill(builder.pid, signal.SIGSTOP)
        monkeypatch.setenv("HPO_CACHE_WAIT", "2s")
        seen: list[tuple[int, int]] = []
        with caplog.at_level(logging.INFO), pytest.raises(DataError) as raised:
            load_images(paths, SIZE, cache_dir=cache, advance=lambda d, t: seen.append((d, t)))
        message = str(raised.value)
        assert f"pid {builder.pid}" in message and "of 12 images decoded" in message
        assert "HPO_CACHE_WAIT" in message and "\n" not in message
        assert f"pid {builder.pid}" in caplog.text, "the wait is reported while it lasts"
        assert seen and seen[-1][1] == 12, "the builder's progress reaches the waiting caller"
    finally:
        os.kill(builder.pid, signal.SIGCONT)
        _, err = builder.communicate(timeout=120)
    assert builder.returncode == 0, err
    assert load_images(paths, SIZE, cache_dir=cache).ok.all()


# ---------------------------------------------------------------------------------------------
# The cache does not only grow; group-shared files.


def test_a_build_evicts_the_least_recently_used_above_the_cap(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = some_paths(demo_root, 6)
    load_images(paths, (16, 12), cache_dir=tmp_path)
    load_images(paths, (16, 14), cache_dir=tmp_path)
    gc.collect()
    (old, recent) = list_cache(tmp_path)
    monkeypatch.setenv("HPO_CACHE_MAX_SIZE", str(old.size + recent.size + 100))
    load_images(paths, (16, 12), cache_dir=tmp_path)  # a use: now the most recent
    load_images(paths, (16, 10), cache_dir=tmp_path)  # a build above the cap
    gc.collect()
    assert sorted(e.image_size for e in list_cache(tmp_path)) == [(16, 10), (16, 12)]


def test_group_mode_shares_files_with_the_group(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_CACHE_SHARED", "group")
    cache = tmp_path / "shared"
    load_images(some_paths(demo_root, 3), SIZE, cache_dir=cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o2770
    for suffix in ("npy", "json", "lock", "use"):
        (path,) = cache.glob(f"images-*.{suffix}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o660, path.name


def test_private_by_default(demo_root: Path, tmp_path: Path) -> None:
    load_images(some_paths(demo_root, 3), SIZE, cache_dir=tmp_path)
    for suffix in ("npy", "json"):
        (path,) = tmp_path.glob(f"images-*.{suffix}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_an_error_of_the_file_itself_is_a_bad_row(
    demo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = some_paths(demo_root)
    real_open = Image.open

    def refusing_open(path: Path, *args: object, **kwargs: object) -> Image.Image:
        if Path(path) == paths[3]:  # fixing it (chmod) changes its ctime, so the cache key
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", refusing_open)
    images = load_images(paths, SIZE, cache_dir=tmp_path, skip_bad_files=True)
    assert images.ok.tolist() == [i != 3 for i in range(12)]
    assert "Permission denied" in images.bad[0][1]
