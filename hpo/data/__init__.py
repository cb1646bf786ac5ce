"""Data layer: layouts (registry entries) -> one table of path, label, group; splits; decoded-image
cache; transforms.

``prepare_batch`` (and the ``transforms`` module) import torch, so they are loaded on first use:
``hpo data check`` never pays for importing torch. The demo generator lives in :mod:`hpo.demo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo.data._cache import DecodedImages, ImageRows, decode_image, default_cache_dir, load_images
from hpo.data._cache_admin import CacheEntry, list_cache, prune_cache, verify_cache
from hpo.data._corrections import CORRECTION_FIELDS
from hpo.data._labels import (
    FACTORS,
    MASK_CLASS_NAMES,
    NUM_MASK_CLASSES,
    decode_factors,
    decode_label,
    encode_label,
)
from hpo.data._layouts import (
    LAYOUTS,
    Layout,
    LayoutCounts,
    Layouts,
    detect_layout,
    get_layout,
    list_layouts,
)
from hpo.data._load import LoadedData, data_fingerprint, load_samples, load_training_data
from hpo.data._mask import load_eval
from hpo.data._split import kfold_splits
from hpo.data._table import EvalSet, Problem, Samples
from hpo.data.check import CheckReport, check_data

if TYPE_CHECKING:
    from hpo.data.transforms import prepare_batch

__all__ = [
    "CORRECTION_FIELDS",
    "FACTORS",
    "LAYOUTS",
    "MASK_CLASS_NAMES",
    "NUM_MASK_CLASSES",
    "CacheEntry",
    "CheckReport",
    "DecodedImages",
    "EvalSet",
    "ImageRows",
    "Layout",
    "LayoutCounts",
    "Layouts",
    "LoadedData",
    "Problem",
    "Samples",
    "check_data",
    "data_fingerprint",
    "decode_factors",
    "decode_image",
    "decode_label",
    "default_cache_dir",
    "detect_layout",
    "encode_label",
    "get_layout",
    "kfold_splits",
    "list_cache",
    "list_layouts",
    "load_eval",
    "load_images",
    "load_samples",
    "load_training_data",
    "prepare_batch",
    "prune_cache",
    "verify_cache",
]


def __getattr__(name: str) -> Any:
    if name == "prepare_batch":
        from hpo.data.transforms import prepare_batch

        return prepare_batch
    raise AttributeError(f"module 'hpo.data' has no attribute {name!r}")
