"""Made-up ImageNet weights in torch's cache, trusted as the real files for one test."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torchvision.models as tvm

from hpo.train import weights as weights_mod
from hpo.train.weights import cache_path, imagenet_weights

if TYPE_CHECKING:
    import pytest

__all__ = ["place_weights", "trust_cached"]


def trust_cached(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    """Make hpo take the files at ``paths`` for the torchvision files their names stand for.

    A cached file must match the SHA-256 prefix in its name (``resnet18-f37072fd.pth``), which
    only the real, downloaded file does; tests have no network, so the expected prefix of these
    names becomes that of the files as they are now. Everything else (reading, loading) is real.
    """
    trusted = {}
    for path in paths:
        with path.open("rb") as f:
            trusted[path.name] = hashlib.file_digest(f, "sha256").hexdigest()[:8]
    original = weights_mod._hash_prefix
    monkeypatch.setattr(
        weights_mod, "_hash_prefix", lambda name: trusted.get(name) or original(name)
    )


def place_weights(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    state: dict[str, torch.Tensor] | None = None,
    *,
    torch_home: Path | None = None,
) -> Path:
    """Write a state dict where torchvision expects model ``name``'s ImageNet weights (in
    ``$TORCH_HOME``, or ``torch_home``) and trust it (:func:`trust_cached`).

    ``state`` defaults to a random one of the right keys and shapes, as torchvision's pretrained
    builder expects them (GoogLeNet and Inception with their auxiliary heads).
    """
    if state is None:
        torch.manual_seed(1)
        builder = tvm.get_model_builder(name)
        extra = (
            {"aux_logits": True, "init_weights": False}
            if "inception" in name or (name == "googlenet")
            else {}
        )
        state = builder(weights=None, **extra).state_dict()
    path = cache_path(imagenet_weights(name), torch_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    trust_cached(monkeypatch, path)
    return path
