"""Decoded-image cache: each image decoded and resized once, shared by all trials and workers.

The cache of one list of images at one size is a ``.npy`` file of ``uint8 (N, H, W, 3)`` pixels
that every process opens as a read-only memory map, so the operating system keeps one copy in
memory for all workers of a machine. Its name is a hash of the absolute paths, each file's size,
mtime, inode and ctime, and the size, so a changed file gives a new cache (even one edited in
place with its mtime restored). A sidecar ``.json`` lists the images that did not decode and a
checksum of the pixels, checked when the cache opens (rebuilt on a mismatch). Both are written
to temporary names and renamed into place (the ``.npy`` last, its disk space reserved before it
is written), and builders take a file lock, so a worker never reads a half-written cache and two
workers never decode the same images at once; a worker that waits says who builds and how far.
Only decoder errors mark an image bad; a read error of the system aborts the build, unwritten.
The files on disk, their locks and eviction: :mod:`hpo.data._cache_files`.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hpo.data._cache_admin import prune_cache
from hpo.data._cache_files import (
    CHUNK,
    VERSION,
    CacheSettings,
    CorruptEntry,
    EntryFiles,
    build_lock,
    cache_settings,
    checksums,
    make_directory,
    read_sidecar,
    reserve,
    set_mode,
    touch,
    use_lease,
    verify,
    write_json,
    write_status,
)
from hpo.data._digests import file_stamp
from hpo.exceptions import DataError

__all__ = [
    "DecodedImages",
    "ImageRows",
    "decode_error",
    "decode_image",
    "default_cache_dir",
    "load_images",
]

logger = logging.getLogger(__name__)

_STATUS_EVERY_S = 0.5  # how often a builder tells waiting processes its progress
_EXIF_ORIENTATION = 0x0112
_MAX_LISTED = 5


@dataclass(frozen=True)
class DecodedImages:
    """Decoded pixels of a list of images.

    Attributes:
        array: ``uint8 (N, H, W, 3)``; may be a read-only ``np.memmap``. Rows of images that
            failed to decode are zero.
        ok: ``bool (N,)``, False where decoding failed (only possible with ``skip_bad_files``).
        bad: ``(file, reason)`` of every image that failed to decode.
    """

    array: np.ndarray
    ok: np.ndarray
    bad: list[tuple[Path, str]]

    def __len__(self) -> int:
        return len(self.array)

    def subset(self, rows: np.ndarray) -> DecodedImages:
        """Only ``rows``, all of them decoded, without copying the pixels: the array becomes an
        :class:`ImageRows` over the same (shared) memory map."""
        rows = np.asarray(rows, dtype=np.int64)
        picked = ImageRows(self.array, rows)
        # Typed as the array it stands for: callers index it like one.
        return DecodedImages(array=picked, ok=np.ones(len(rows), bool), bad=self.bad)  # type: ignore[arg-type]


class ImageRows:
    """Some rows of an array, read when indexed: a subset of a shared memory map that holds no
    private copy of the pixels (each of N workers would otherwise hold its own).

    Indexes like the array of those rows: ``len(x)``, ``x.shape``, ``x[i]``, ``x[a:b]``,
    ``x[index_array]``, ``x[i, ...]``; ``np.asarray(x)`` copies the rows out.

    Attributes:
        base: The array whose rows these are (a ``np.memmap`` for a cached data set).
        rows: ``int64`` row numbers into ``base``.
    """

    def __init__(self, base: np.ndarray, rows: np.ndarray) -> None:
        self.base = base.base if isinstance(base, ImageRows) else base
        self.rows = base.rows[rows] if isinstance(base, ImageRows) else rows

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.base.dtype

    @property
    def ndim(self) -> int:
        return int(self.base.ndim)

    @property
    def nbytes(self) -> int:
        return int(len(self.rows) * self.base[:1].nbytes)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        picked = self.rows[first]
        out = np.asarray(self.base[picked])
        if rest:
            out = out[rest] if np.ndim(picked) == 0 else out[(slice(None), *rest)]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out if dtype is None else out.astype(dtype)


def default_cache_dir() -> Path:
    """``$HPO_CACHE_DIR``, else ``~/.cache/hpo``."""
    env = os.environ.get("HPO_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "hpo"


Crop = tuple[int, int, int, int]
"""``(top, left, height, width)`` of a box of the original (upright) photo, in its pixels."""


class CropError(ValueError):
    """A crop box falls outside an image."""


def decode_image(path: Path, image_size: tuple[int, int], crop: Crop | None = None) -> np.ndarray:
    """Decode one image to ``uint8 (H, W, 3)`` RGB at ``image_size = (height, width)``.

    With ``crop``, only that box of the photo (after EXIF orientation) is kept and resized.
    JPEGs are decoded at the smallest DCT scale still at least as large as the target (a
    quarter of the work for 384 x 512 -> 128 x 96), then resized with an antialiasing bilinear
    filter; EXIF orientation is applied. Training and prediction both decode through here.

    Raises:
        CropError: ``crop`` falls outside the image.
        OSError, ValueError, ...: whatever Pillow raises for a file it cannot decode.
    """
    height, width = image_size
    with Image.open(path) as image:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        upright = image.size if orientation < 5 else image.size[::-1]  # 5-8 turn by 90 degrees
        box = None
        if crop is not None:
            top, left, crop_h, crop_w = crop
            if top + crop_h > upright[1] or left + crop_w > upright[0]:
                raise CropError(
                    f"data.crop {list(crop)} (top, left, height, width) falls outside the "
                    f"{upright[1]}x{upright[0]} (height x width) image"
                )
            # Decode at a scale where the box still covers the target size.
            draft = (width * upright[0] // crop_w + 1, height * upright[1] // crop_h + 1)
            if orientation >= 5:
                draft = draft[::-1]
            image.draft("RGB", draft)
        else:
            image.draft("RGB", (width, height) if orientation < 5 else (height, width))
        image.load()
        out: Image.Image = image
        if orientation != 1:
            from PIL import ImageOps

            out = ImageOps.exif_transpose(out)
        if out.mode != "RGB":
            out = out.convert("RGB")
        if crop is not None:
            sx, sy = out.size[0] / upright[0], out.size[1] / upright[1]  # the draft's scale
            top, left, crop_h, crop_w = crop
            box = (left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy)
            out = out.resize((width, height), Image.Resampling.BILINEAR, box=box)
        elif out.size != (width, height):
            out = out.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(out, dtype=np.uint8)


def _cache_key(
    paths: Sequence[Path], image_size: tuple[int, int], crop: Crop | None = None
) -> str:
    head = f"v{VERSION} {image_size[0]}x{image_size[1]}"
    if crop is not None:
        head += " crop " + ",".join(map(str, crop))
    digest = hashlib.sha256(f"{head}\n".encode())
    for path in paths:
        digest.update(f"{path}\0{file_stamp(path)}\n".encode())
    return digest.hexdigest()[:24]


def decode_error(path: Path, exc: BaseException) -> str:
    """Why ``path`` did not decode, in a few words (without repeating the path)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, CropError):
        return str(exc)
    text = str(exc).replace(f" {str(path)!r}", "").replace(str(path), "").strip()
    return f"cannot decode image: {text or type(exc).__name__}"


# Errors of the system, not of a file's content: the same file may read fine on the next try.
# (A permission error is not among them: fixing it changes the file's ctime, so its key.)
# fmt: off
_TRANSIENT_NAMES = (
    "EIO", "EMFILE", "ENFILE", "ENOMEM", "ENOBUFS", "EAGAIN", "EINTR", "EBUSY", "ESTALE",
    "ETIMEDOUT", "ECONNRESET", "ECONNABORTED", "EHOSTDOWN", "EHOSTUNREACH", "ENETDOWN",
    "ENETUNREACH", "ENOLINK", "EREMOTEIO", "ENXIO", "ENODEV",
)
# fmt: on
_TRANSIENT = {getattr(errno, name) for name in _TRANSIENT_NAMES if hasattr(errno, name)}


def _is_read_error(exc: BaseException) -> bool:
    """A failing disk or network file system, too many open files, no memory: the next build
    may well read the file, so the failure is never cached. Pillow's decoder errors
    (unidentified image, truncated data) carry no errno and make the row bad."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT


def _read_failed(path: Path, exc: BaseException) -> BaseException:
    if isinstance(exc, OSError):
        return DataError(
            f"{path}: cannot read ({exc.strerror or exc}); nothing was cached, so the next run "
            f"reads it again"
        )
    return exc  # MemoryError: as it is


def _decode_into(
    array: np.ndarray,
    paths: Sequence[Path],
    image_size: tuple[int, int],
    *,
    crop: Crop | None = None,
    advance: Callable[[int, int], None] | None = None,
) -> list[tuple[int, str]]:
    """Decode ``paths`` into the rows of ``array`` in parallel; returns ``(row, reason)`` of
    the images that did not decode.

    Raises:
        DataError: a file could not be read (an ``OSError`` of the system); the rest is
            cancelled.
        MemoryError: as decoding raised it.
    """

    def work(i: int) -> tuple[int, str | BaseException] | None:
        try:
            array[i] = decode_image(paths[i], image_size, crop)
        except Exception as exc:
            if _is_read_error(exc):
                return i, exc
            array[i] = 0  # any decoder failure is a bad file, reported with its reason
            return i, decode_error(paths[i], exc)
        return None

    failures: list[tuple[int, str]] = []
    total = len(paths)
    # Pillow releases the GIL while decoding and resizing, so threads use every core.
    pool = ThreadPoolExecutor(min(32, (os.cpu_count() or 1) + 2))
    try:
        for done, result in enumerate(pool.map(work, range(total)), start=1):
            if result is not None:
                row, reason = result
                if isinstance(reason, BaseException):
                    raise _read_failed(paths[row], reason) from reason
                failures.append((row, reason))
            if advance is not None:
                advance(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return failures


def _build(
    files: EntryFiles,
    paths: Sequence[Path],
    image_size: tuple[int, int],
    crop: Crop | None,
    settings: CacheSettings,
    advance: Callable[[int, int], None] | None,
) -> None:
    """Decode ``paths`` into a new entry (the caller holds its build lock).

    Raises:
        OSError: the cache cannot be written (no space: nothing is left behind).
    """
    shape = (len(paths), image_size[0], image_size[1], 3)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": shape}
    )
    offset, nbytes = len(header.getvalue()), int(np.prod(shape))
    tmp = files.temporary("npy")
    try:
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.write(fd, header.getvalue())
            try:
                reserve(fd, offset + nbytes)
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                free = shutil.disk_usage(files.directory).free
                raise OSError(
                    exc.errno,
                    f"no space left: {len(paths)} images at {image_size[0]}x{image_size[1]} "
                    f"need {_mb(offset + nbytes)}, {_mb(free)} free",
                ) from None
        finally:
            os.close(fd)
        array = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=offset, shape=shape)
        logger.info("decoding %d images at %dx%d into %s", len(paths), *image_size, files.npy)
        started = last = time.time()
        write_status(files, 0, len(paths), started, settings.group)

        def step(done: int, total: int) -> None:
            nonlocal last
            now = time.time()
            if now - last >= _STATUS_EVERY_S or done == total:
                write_status(files, done, total, started, settings.group)
                last = now
            if advance is not None:
                advance(done, total)

        failures = _decode_into(array, paths, image_size, crop=crop, advance=step)
        array.flush()
        del array
        record = {
            "version": VERSION,
            "count": len(paths),
            "image_size": list(image_size),
            "crop": None if crop is None else list(crop),
            "bad": [[i, str(paths[i]), reason] for i, reason in failures],
            "chunk": CHUNK,
            "crc32": checksums(tmp, CHUNK),
            "created": time.time(),
        }
        set_mode(tmp, settings.group)
        write_json(files, files.meta, record, settings.group)
        os.replace(tmp, files.npy)  # last: the .npy existing means the cache is complete
    finally:
        tmp.unlink(missing_ok=True)


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def _open(files: EntryFiles, count: int) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    """The entry's pixels and failures, or None if it is missing or fails a check (then the
    caller rebuilds it)."""
    if not files.npy.is_file():
        return None
    try:
        record = read_sidecar(files)
        if record["count"] != count:
            raise CorruptEntry(f"it holds {record['count']} images, not {count}")
        verify(files, record, full=False)
        array = np.load(files.npy, mmap_mode="r")
        if array.shape[0] != count or array.dtype != np.uint8:
            raise CorruptEntry(f"its array is {array.dtype} {array.shape}")
    except CorruptEntry as exc:
        logger.warning("image cache %s is damaged (%s); rebuilding it", files.npy, exc)
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable image cache %s: %s", files.npy, exc)
        return None
    touch(files)
    return array, [(int(i), str(reason)) for i, _, reason in record["bad"]]


def load_images(
    paths: Sequence[Path],
    image_size: tuple[int, int],
    *,
    cache_dir: Path | None = None,
    skip_bad_files: bool = False,
    crop: Crop | None = None,
    advance: Callable[[int, int], None] | None = None,
) -> DecodedImages:
    """Decode and resize ``paths`` once into a cache shared by every trial and worker.

    The first call for a list of files decodes them in parallel into a ``.npy`` file under
    ``cache_dir``; later calls, in any process, memory-map it read-only (and hold its shared
    ``.use`` lock while the returned array lives, so eviction leaves it alone).

    Args:
        paths: Image files, in the order of the rows returned.
        image_size: ``(height, width)`` of the decoded images.
        cache_dir: Where caches live; default ``$HPO_CACHE_DIR`` or ``~/.cache/hpo``. When it
            cannot be written (read-only, full), images are decoded into memory (with a
            warning).
        skip_bad_files: Mark images that fail to decode in ``ok`` and list them in ``bad``
            instead of raising.
        crop: ``(top, left, height, width)`` box of each photo kept before resizing.
        advance: Called as ``advance(done, total)`` while images are decoded (or while
            another process builds the cache this call waits for).

    Raises:
        DataError: an image does not decode and ``skip_bad_files`` is false (the message names
            the file and the others that failed); a file cannot be read (nothing is cached);
            another process builds the cache for longer than ``HPO_CACHE_WAIT``; an ``HPO_CACHE_*``
            variable does not parse.
    """
    settings = cache_settings()
    paths = [Path(os.path.abspath(p)) for p in paths]
    size = (int(image_size[0]), int(image_size[1]))
    if len(paths) == 0:
        return DecodedImages(np.zeros((0, *size, 3), np.uint8), np.zeros(0, bool), [])
    crop = None if crop is None else tuple(int(v) for v in crop)  # type: ignore[assignment]
    key = _cache_key(paths, size, crop)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    files = EntryFiles(directory, key)
    opened = lease = None
    try:
        make_directory(directory, settings.group)
        lease = use_lease(files, settings.group)  # before opening: eviction skips it
        opened = _open(files, len(paths))
        if opened is None:
            with build_lock(files, group=settings.group, wait=settings.wait, advance=advance):
                opened = _open(files, len(paths))  # another worker may have built it
                if opened is None:
                    _build(files, paths, size, crop, settings, advance)
                    opened = _open(files, len(paths))
                    if settings.max_size is not None:
                        _evict(directory, settings.max_size, key)
    except OSError as exc:
        logger.warning("image cache %s not usable (%s); decoding into memory", directory, exc)
    if opened is None:
        array = np.zeros((len(paths), *size, 3), np.uint8)
        opened = array, _decode_into(array, paths, size, crop=crop, advance=advance)
    elif lease is not None:
        opened[0]._hpo_lease = lease  # type: ignore[attr-defined]  # held while mapped
    array, failures = opened
    ok = np.ones(len(paths), dtype=bool)
    bad = []
    for i, reason in failures:
        ok[i] = False
        bad.append((paths[i], reason))
    if bad and not skip_bad_files:
        listed = "; ".join(f"{path}: {reason}" for path, reason in bad[:_MAX_LISTED])
        more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
        raise DataError(
            f"{listed}{more} ({len(bad)} of {len(paths)} images failed to decode; fix or remove "
            f"them, or set data.skip_bad_files=true to skip them)"
        )
    return DecodedImages(array=array, ok=ok, bad=bad)


def _evict(directory: Path, max_size: int, key: str) -> None:
    removed = prune_cache(directory, max_size=max_size, keep=frozenset({key}))
    if removed:
        logger.info(
            "evicted %d least recently used image cache(s) (%s) to stay under HPO_CACHE_MAX_SIZE",
            len(removed),
            _mb(sum(e.size for e in removed)),
        )
