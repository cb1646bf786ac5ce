"""From a DataConfig to the sample table and decoded pixels a training run uses."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hpo.data._cache import DecodedImages, load_images
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


def load_training_data(cfg: DataConfig, *, progress: bool = False) -> LoadedData:
    """Samples plus decoded pixels (from the shared cache), with bad images handled per ``cfg``.

    Args:
        cfg: The data settings; ``skip_bad_files`` decides what a corrupt image does.
        progress: Show a progress bar while the cache is built.

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
        progress=progress,
        crop=cfg.crop,
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
    kept = DecodedImages(
        array=np.asarray(images.array[keep]), ok=np.ones(len(keep), dtype=bool), bad=images.bad
    )
    return LoadedData(samples.subset(keep), kept)


def data_fingerprint(cfg: DataConfig, samples: Samples) -> str:
    """A short hex digest of what a model trained on this data sees.

    It changes when a file (its name within its folder, or its size), a label, a group, the
    image size, the crop, the format or the corrections file change, and not with the spelling of
    ``data.root``, the cache folder or ``skip_bad_files``: a worker on another machine mounting
    the same data elsewhere gets the same fingerprint.

    Raises:
        DataError: the corrections file cannot be read.
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
    rows = zip(samples.paths, labels, samples.groups, strata, strict=True)
    for path, label, group, stratum in rows:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        digest.update(
            f"{path.parent.name}/{path.name}\0{size}\0{label}\0{group}\0{stratum}\n".encode()
        )
    return digest.hexdigest()[:16]
