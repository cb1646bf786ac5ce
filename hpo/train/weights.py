"""Pretrained weights: torchvision's weights in torch's own cache, or a local state-dict file.

``train.model.weights`` is ``imagenet`` (the model's torchvision default weights), a torchvision
weight name of the model (``IMAGENET1K_V2``), or the path of a local state dict. torchvision's
files live in torch's cache, ``$TORCH_HOME/hub/checkpoints/<file name of the URL>`` (default
``~/.cache/torch``), so every worker of a machine shares one copy: the first to need a file
downloads it under a file lock (torch downloads to a temporary name and renames), the others
wait for it and read it. The download is checked against the hash prefix in the file name, as
torchvision's own loading does. Offline with nothing cached, the error names the URL and the exact
path where the file can be placed.

A cached file is checked against that hash prefix too, every time it is read, and read only with
``torch.load(weights_only=True)``: anyone who can write to the cache could otherwise run code in
every worker (torchvision's own ``get_state_dict`` unpickles with ``weights_only=False``), and a
truncated or corrupt file is refused before any study is touched, naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
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
    "load_state_dict",
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


def fetch(
    weights: WeightsEnum,
    *,
    torch_home: Path | None = None,
    progress: bool = False,
    replace_bad: bool = False,
) -> Path:
    """The cached file of ``weights``, downloaded first if needed (once per machine).

    Args:
        weights: The torchvision weights.
        torch_home: The torch home to use instead of ``$TORCH_HOME``.
        progress: Show torch's download progress bar.
        replace_bad: Download again over a cached file that fails its hash check (what
            ``hpo models download`` does); otherwise a cached file is returned unchecked
            (:func:`load_state_dict` and :func:`check_weights` check it).

    Raises:
        ConfigError: Not cached and the download failed (offline, say): names the URL and
            the path to place the file at.
    """
    path = cache_path(weights, torch_home)

    def wanted() -> bool:
        return not path.is_file() or (replace_bad and _hash_problem(path) is not None)

    if not wanted():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(path.with_name(path.name + ".lock")):
            if wanted():  # another worker may have downloaded it meanwhile
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


def _hash_problem(path: Path) -> str | None:
    """Why ``path`` does not match the SHA-256 prefix in its name, or None when it does (or
    its name carries none)."""
    expected = _hash_prefix(path.name)
    if not expected:
        return None
    with path.open("rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual.startswith(expected):
        return None
    return (
        f"its SHA-256 starts {actual[: len(expected)]}, not {expected} as its name says "
        f"(truncated, corrupt or not torchvision's file)"
    )


def _torch_load(path: Path) -> object:
    """What ``path`` holds, unpickled with ``weights_only=True`` on the CPU (memory-mapped where
    the format allows, so a check reads little more than the zip directory).

    Raises:
        ValueError: Not a readable torch file, or one that only unpickles with code.
    """
    try:
        return torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, ...: all unreadable
        text = str(exc)
        # weights_only's refusal is a page of advice; the line that matters names the global.
        _, found, refusal = text.partition("WeightsUnpickler error: ")
        if found:  # and not its advice to allow the global: this file is to be refused
            text = refusal.splitlines()[0].split(" Please use ")[0]
        detail = " ".join(text.split())
        raise ValueError(
            f"not a readable state dict ({type(exc).__name__}: {detail[:300]})"
        ) from None


def _read(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (:func:`_torch_load`).

    Raises:
        ValueError: Not a readable torch file, or not a plain state dict.
    """
    loaded = _torch_load(path)
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise ValueError("not a state dict (parameter name -> tensor)")
    return loaded


def load_state_dict(weights: WeightsEnum, model: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision ``weights`` (of registered ``model``), from torch's cache
    (downloaded first if needed), checked against its hash and read with ``weights_only=True``.

    Raises:
        ConfigError: Not cached and not downloadable, or the cached file fails its hash or
            cannot be read: names the file and what to do.
    """
    path = fetch(weights)
    problem = _hash_problem(path)
    if problem is None:
        try:
            return _read(path)
        except ValueError as exc:
            problem = str(exc)
    which = "" if weights == type(weights).DEFAULT else f":{weights.name}"  # type: ignore[attr-defined,unused-ignore]
    raise ConfigError(
        f"train.model.weights: {path}: {problem}; delete it, or run `hpo models download "
        f"{model}{which}` to fetch it again"
    )


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
        weights = imagenet_weights(name, which or IMAGENET)
        out.append(fetch(weights, torch_home=torch_home, progress=progress, replace_bad=True))
    return out


def check_weights(spec: ModelSpec) -> None:
    """Make sure ``spec``'s weights can be loaded: a local file exists and reads as a state dict;
    torchvision weights are cached (downloaded now if needed), match the hash in their file name
    and read as a state dict. Called before any image is decoded or trial starts.

    Raises:
        ConfigError: A missing or unreadable local file, an unknown weight name, weights that
            are neither cached nor downloadable, or a cached file that is corrupt.
    """
    resolved = resolve_weights(spec)
    if isinstance(resolved, Path):
        if not resolved.is_file():
            raise ConfigError(
                f"train.model.weights: {resolved}: file not found (a local state dict, "
                f"{IMAGENET} or a torchvision weight name such as IMAGENET1K_V1)"
            )
        try:
            _torch_load(resolved)  # a wrapped state dict is unwrapped when the model is built
        except ValueError as exc:
            raise ConfigError(f"train.model.weights: {resolved}: {exc}") from None
    elif resolved is not None:
        load_state_dict(resolved, spec.name)
