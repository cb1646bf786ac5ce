"""Pretrained weights: torchvision's weights in torch's own cache, or a local state-dict file.

``train.model.weights`` is ``imagenet`` (the model's torchvision default weights), a torchvision
weight name of the model (``IMAGENET1K_V2``), or the path of a local state dict. torchvision's
files live in torch's cache, ``$TORCH_HOME/hub/checkpoints/<file name of the URL>`` (default
``~/.cache/torch``), so every worker of a machine shares one copy: the first to need a file
downloads it under a file lock (torch downloads to a temporary name and renames), the others
wait for it and read it. The download is checked against the hash prefix in the file name, as
torchvision's own loading does. Offline with nothing cached, the error names the URL and the exact
path where the file can be placed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from hpo.components import MODELS
from hpo.exceptions import ConfigError
from hpo.locks import file_lock

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

    from hpo.config import ModelSpec

__all__ = [
    "IMAGENET",
    "cache_path",
    "check_weights",
    "download",
    "fetch",
    "imagenet_weights",
    "is_cached",
    "resolve_weights",
]

logger = logging.getLogger(__name__)

IMAGENET = "imagenet"
"""The spelling of "the model's torchvision default weights"."""

_WEIGHT_NAME = re.compile(r"^[A-Z0-9_]+$")


def imagenet_weights(model: str, which: str = IMAGENET) -> WeightsEnum:
    """The torchvision weights ``which`` (``imagenet``: the default) of registered ``model``.

    Raises:
        ConfigError: The model has no torchvision weights, or none of that name.
    """
    from torchvision.models import get_model_weights

    where = "train.model.weights"
    builder = MODELS.info(model).torchvision
    if builder is None:
        raise ConfigError(
            f"{where}: {which}: model {model!r} has no torchvision weights; give a local "
            f"state-dict file or a torchvision model (hpo models lists them)"
        )
    enum = get_model_weights(builder)
    if which == IMAGENET:
        return enum.DEFAULT  # type: ignore[attr-defined,no-any-return,unused-ignore]
    names = [w.name for w in enum]
    if which not in names:
        raise ConfigError(
            f"{where}: {which}: not a weight name of {builder}; known: {IMAGENET}, "
            f"{', '.join(names)}"
        )
    return enum[which]


def resolve_weights(spec: ModelSpec) -> WeightsEnum | Path | None:
    """What ``spec.weights`` names: torchvision weights, a local file, or nothing.

    Raises:
        ConfigError: A torchvision weight name the model does not have.
    """
    value = spec.weights
    if value is None:
        return None
    if value == IMAGENET or (_WEIGHT_NAME.match(value) and not Path(value).exists()):
        return imagenet_weights(spec.name, value)
    return Path(value)


def cache_path(weights: WeightsEnum, torch_home: Path | None = None) -> Path:
    """Where torch's cache keeps ``weights``: ``$TORCH_HOME/hub/checkpoints/<file name>``
    (``torch_home`` instead of ``$TORCH_HOME`` when given)."""
    hub = Path(torch_home) / "hub" if torch_home is not None else Path(torch.hub.get_dir())
    return hub / "checkpoints" / Path(weights.url).name


def is_cached(weights: WeightsEnum) -> bool:
    """Whether the file of ``weights`` is in torch's cache."""
    return cache_path(weights).is_file()


def _hash_prefix(file_name: str) -> str | None:
    """The SHA-256 prefix in a torchvision file name (``resnet18-f37072fd.pth``), as
    ``load_state_dict_from_url(check_hash=True)`` reads it: torch checks the download against it
    before moving it into place, so a truncated or tampered file never reaches the cache."""
    match = torch.hub.HASH_REGEX.search(file_name)
    return match.group(1) if match else None


def fetch(weights: WeightsEnum, *, torch_home: Path | None = None, progress: bool = False) -> Path:
    """The cached file of ``weights``, downloaded first if needed (once per machine).

    Raises:
        ConfigError: Not cached and the download failed (offline, say): names the URL and
            the path to place the file at.
    """
    path = cache_path(weights, torch_home)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(path.name + ".lock")):
            if not path.is_file():  # another worker may have downloaded it meanwhile
                logger.info("downloading %s to %s", weights.url, path)
                torch.hub.download_url_to_file(
                    weights.url, str(path), _hash_prefix(path.name), progress=progress
                )
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a hash mismatch a Runtime
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError(
            f"train.model.weights: cannot download {weights.url} ({reason}); place that file at "
            f"{path} (hpo models download NAME fetches it on a machine with internet)"
        ) from None
    return path


def download(
    models: list[str], *, torch_home: Path | None = None, progress: bool = False
) -> list[Path]:
    """Fetch the ImageNet weights of ``models`` (registered names, or ``NAME:WEIGHT_NAME``)
    into torch's cache (or ``torch_home``), for workers without internet.

    Raises:
        ConfigError: An unknown model, one without torchvision weights, or a failed download.
    """
    out = []
    for item in models:
        name, _, which = item.partition(":")
        MODELS.check_name(name, where="hpo models download")
        out.append(
            fetch(
                imagenet_weights(name, which or IMAGENET), torch_home=torch_home, progress=progress
            )
        )
    return out


def check_weights(spec: ModelSpec) -> None:
    """Make sure ``spec``'s weights can be loaded: a local file exists, torchvision weights are
    cached (downloaded now if needed). Called before any image is decoded or trial starts.

    Raises:
        ConfigError: A missing local file, an unknown weight name, or weights that are neither
            cached nor downloadable.
    """
    resolved = resolve_weights(spec)
    if isinstance(resolved, Path):
        if not resolved.is_file():
            raise ConfigError(
                f"train.model.weights: {resolved}: file not found (a local state dict, "
                f"{IMAGENET} or a torchvision weight name such as IMAGENET1K_V1)"
            )
    elif resolved is not None:
        fetch(resolved)
