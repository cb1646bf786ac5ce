"""From a DataConfig to the sample table and decoded pixels a training run uses."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpo.data._cache import DecodedImages, default_cache_dir, load_images
from hpo.data._cache_files import cache_settings
from hpo.data._digests import content_digests
from hpo.data._read import read_data
from hpo.data._table import Samples, raise_problems
from hpo.exceptions import DataError

if TYPE_CHECKING:
    # Annotations only: the data layer needs no config schema at run time.
    from hpo.config import DataConfig

__all__ = ["LoadedData", "data_fingerprint", "load_samples", "load_training_data"]

logger = logging.getLogger(__name__)

_LISTED_BAD = 20


@dataclass(frozen=True)
class LoadedData:
    """Samples and their decoded pixels, row for row; images that failed to decode (only with
    ``skip_bad_files``) are already removed from both and listed in ``images.bad``."""

    samples: Samples
    images: DecodedImages


def load_samples(cfg: DataConfig) -> Samples:
    """Read the data set described by ``cfg`` into one table, applying ``cfg.corrections``.

    The table is :func:`hpo.data._read.read_data`'s, the reader ``hpo data check`` uses.

    Args:
        cfg: Format, root and corrections file of the data.

    Raises:
        DataError: the first problem found (missing or extra files, a malformed CSV, an
            unreadable gender or age, a bad correction, no image at all), naming the file and
            line, and how many more problems ``hpo data check`` would list.
    """
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (data.root)")
    read = read_data(root, cfg.format, corrections=cfg.corrections)
    raise_problems(read.problems, root)
    samples = read.samples
    if read.corrections is not None:
        logger.info("applied %d correction(s) to %d people", read.corrections, read.corrected)
    logger.debug(
        "%s: %d images, %d groups, %d classes",
        root,
        len(samples),
        len(set(samples.groups.tolist())),
        samples.num_classes,
    )
    return samples


def load_training_data(
    cfg: DataConfig,
    *,
    advance: Callable[[int, int], None] | None = None,
) -> LoadedData:
    """Samples plus decoded pixels (from the shared cache), with bad images handled per ``cfg``.

    With bad images skipped, the pixels stay the shared memory map: the kept rows are an index
    into it (:class:`hpo.data.ImageRows`), not a private copy.

    Args:
        cfg: The data settings; ``skip_bad_files`` decides what a corrupt image does.
        advance: Called as ``advance(done, total)`` while the cache is built, for progress.

    Raises:
        DataError: as ``load_samples``; or an image does not decode and
            ``cfg.skip_bad_files`` is false; or no image decodes.
    """
    samples = load_samples(cfg)
    images = load_images(
        samples.paths,
        cfg.image_size,
        cache_dir=cfg.cache_dir,
        skip_bad_files=cfg.skip_bad_files,
        crop=cfg.crop,
        advance=advance,
    )
    if not images.bad:
        return LoadedData(samples, images)
    keep = np.flatnonzero(images.ok)
    if len(keep) == 0:
        raise DataError(f"{cfg.root}: none of the {len(samples)} images could be decoded")
    listed = "\n".join(f"  {path}: {reason}" for path, reason in images.bad[:_LISTED_BAD])
    more = (
        f"\n  ... and {len(images.bad) - _LISTED_BAD} more"
        if len(images.bad) > _LISTED_BAD
        else ""
    )
    logger.warning(
        "skipping %d of %d images that failed to decode (data.skip_bad_files):\n%s%s",
        len(images.bad),
        len(samples),
        listed,
        more,
    )
    return LoadedData(samples.subset(keep), images.subset(keep))


def data_fingerprint(cfg: DataConfig, samples: Samples) -> str:
    """A short hex digest of what a model trained on this data sees.

    It changes when a file (its name within its folder, or its content), a label, a group, the
    image size, the crop, the format or the corrections file change, and not with the spelling of
    ``data.root``, the cache folder or ``skip_bad_files``: a worker on another machine mounting
    the same data elsewhere gets the same fingerprint. Each file's content digest is remembered
    in the cache folder with its size, mtime, inode and ctime (what the image cache's key
    holds), so only new or changed files are read again, and an edit in place that keeps the
    mtime still changes the fingerprint.

    Raises:
        DataError: the corrections file cannot be read; an ``HPO_CACHE_*`` variable does not
            parse.
    """
    digest = hashlib.sha256()
    header = {
        "format": samples.format,
        "image_size": list(cfg.image_size),
        "classes": list(samples.class_names),
    }
    if cfg.crop is not None:  # absent without a crop: older studies keep their fingerprint
        header["crop"] = list(cfg.crop)
    digest.update(json.dumps(header, sort_keys=True).encode())
    if cfg.corrections is not None:
        try:
            digest.update(b"\0corrections\0" + Path(cfg.corrections).read_bytes())
        except OSError as exc:
            raise DataError(f"{cfg.corrections}: cannot read corrections: {exc}") from None
    labels, strata = samples.labels.tolist(), samples.strata.tolist()
    settings = cache_settings()
    memo = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    contents = content_digests(samples.paths, memo, group=settings.group)
    rows = zip(samples.paths, contents, labels, samples.groups, strata, strict=True)
    for path, content, label, group, stratum in rows:
        digest.update(
            f"{path.parent.name}/{path.name}\0{content}\0{label}\0{group}\0{stratum}\n".encode()
        )
    return digest.hexdigest()[:16]
