"""Decoded-image cache: each image decoded and resized once, shared by all trials and workers.

The cache of one list of images at one size is a ``.npy`` file of ``uint8 (N, H, W, 3)`` pixels
that every process opens as a read-only memory map, so the operating system keeps one copy in
memory for all workers of a machine. Its name is a hash of the absolute paths, file sizes and
modification times and the size, so a changed file gives a new cache. A sidecar ``.json`` lists
the images that did not decode. Both are written to temporary names and renamed into place (the
``.npy`` last), and builders take a file lock, so a worker never reads a half-written cache and
two workers never decode the same images at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hpo.exceptions import DataError
from hpo.locks import file_lock

__all__ = ["DecodedImages", "decode_error", "decode_image", "default_cache_dir", "load_images"]

logger = logging.getLogger(__name__)

_CACHE_VERSION = 1  # bump when decoding changes, so old caches are not reused
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
    head = f"v{_CACHE_VERSION} {image_size[0]}x{image_size[1]}"
    if crop is not None:  # absent without a crop: caches made before crops existed stay valid
        head += " crop " + ",".join(map(str, crop))
    digest = hashlib.sha256(f"{head}\n".encode())
    for path in paths:
        try:
            st = os.stat(path)
            stamp = f"{st.st_size} {st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        digest.update(f"{path}\0{stamp}\n".encode())
    return digest.hexdigest()[:24]


def decode_error(path: Path, exc: BaseException) -> str:
    """Why ``path`` did not decode, in a few words (without repeating the path)."""
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, CropError):
        return str(exc)
    text = str(exc).replace(f" {str(path)!r}", "").replace(str(path), "").strip()
    return f"cannot decode image: {text or type(exc).__name__}"


def _decode_into(
    array: np.ndarray,
    paths: Sequence[Path],
    image_size: tuple[int, int],
    *,
    crop: Crop | None = None,
    progress: bool,
) -> list[tuple[int, str]]:
    """Decode ``paths`` into the rows of ``array`` in parallel; returns ``(row, reason)``."""

    def work(i: int) -> tuple[int, str] | None:
        try:
            array[i] = decode_image(paths[i], image_size, crop)
        except Exception as exc:  # any decoder failure is a bad file, reported with its reason
            array[i] = 0
            return i, decode_error(paths[i], exc)
        return None

    failures: list[tuple[int, str]] = []
    # Pillow releases the GIL while decoding and resizing, so threads use every core.
    workers = min(32, (os.cpu_count() or 1) + 2)
    with _progress(progress, len(paths)) as advance, ThreadPoolExecutor(workers) as pool:
        for result in pool.map(work, range(len(paths)), chunksize=1):
            if result is not None:
                failures.append(result)
            advance()
    return failures


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True)
    if not console.is_terminal:  # a log gets no bar (nor its escape codes)
        yield lambda: None
        return
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("decoding images", total=total)
        yield lambda: bar.advance(task)


def _build(
    cache_dir: Path,
    key: str,
    paths: Sequence[Path],
    image_size: tuple[int, int],
    progress: bool,
    crop: Crop | None = None,
) -> None:
    npy, meta = cache_dir / f"images-{key}.npy", cache_dir / f"images-{key}.json"
    shape = (len(paths), image_size[0], image_size[1], 3)
    fd, tmp_name = tempfile.mkstemp(prefix=f".images-{key}.", suffix=".npy.tmp", dir=cache_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        logger.info("decoding %d images at %dx%d into %s", len(paths), *image_size, cache_dir)
        failures = _decode_into(array, paths, image_size, crop=crop, progress=progress)
        array.flush()
        del array
        record = {
            "version": _CACHE_VERSION,
            "count": len(paths),
            "image_size": list(image_size),
            "crop": None if crop is None else list(crop),
            "bad": [[i, str(paths[i]), reason] for i, reason in failures],
        }
        fd, meta_tmp = tempfile.mkstemp(
            prefix=f".images-{key}.", suffix=".json.tmp", dir=cache_dir
        )
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        os.replace(meta_tmp, meta)
        os.replace(tmp, npy)  # last: the .npy existing means the cache is complete
    finally:
        tmp.unlink(missing_ok=True)


def _open(
    cache_dir: Path, key: str, count: int
) -> tuple[np.ndarray, list[tuple[int, str]]] | None:
    npy, meta = cache_dir / f"images-{key}.npy", cache_dir / f"images-{key}.json"
    if not npy.is_file():
        return None
    try:
        record = json.loads(meta.read_text())
        array = np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable image cache %s: %s", npy, exc)
        return None
    if len(array) != count:
        return None
    return array, [(int(i), str(reason)) for i, _, reason in record["bad"]]


def load_images(
    paths: Sequence[Path],
    image_size: tuple[int, int],
    *,
    cache_dir: Path | None = None,
    skip_bad_files: bool = False,
    progress: bool = False,
    crop: Crop | None = None,
) -> DecodedImages:
    """Decode and resize ``paths`` once into a cache shared by every trial and worker.

    The first call for a list of files decodes them in parallel into a ``.npy`` file under
    ``cache_dir``; later calls, in any process, memory-map it read-only.

    Args:
        paths: Image files, in the order of the rows returned.
        image_size: ``(height, width)`` of the decoded images.
        cache_dir: Where caches live; default ``$HPO_CACHE_DIR`` or ``~/.cache/hpo``. When it
            cannot be written, images are decoded into memory (with a warning).
        skip_bad_files: Mark images that fail to decode in ``ok`` and list them in ``bad``
            instead of raising.
        progress: Show a progress bar on stderr while decoding.
        crop: ``(top, left, height, width)`` box of each photo kept before resizing.

    Raises:
        DataError: an image does not decode and ``skip_bad_files`` is false; the message names
            the file (and the others that failed).
    """
    paths = [Path(os.path.abspath(p)) for p in paths]
    size = (int(image_size[0]), int(image_size[1]))
    if len(paths) == 0:
        return DecodedImages(np.zeros((0, *size, 3), np.uint8), np.zeros(0, bool), [])
    crop = None if crop is None else tuple(int(v) for v in crop)  # type: ignore[assignment]
    key = _cache_key(paths, size, crop)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    opened = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        opened = _open(directory, key, len(paths))
        if opened is None:
            with file_lock(directory / f"images-{key}.lock"):
                opened = _open(directory, key, len(paths))  # another worker may have built it
                if opened is None:
                    _build(directory, key, paths, size, progress, crop)
                    opened = _open(directory, key, len(paths))
    except OSError as exc:
        logger.warning("image cache %s not usable (%s); decoding into memory", directory, exc)
    if opened is None:
        array = np.zeros((len(paths), *size, 3), np.uint8)
        opened = array, _decode_into(array, paths, size, crop=crop, progress=progress)
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
