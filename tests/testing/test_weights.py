"""Made-up ImageNet weights: placed where torchvision looks, and trusted only when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpo.exceptions import ConfigError
from hpo.testing.weights import place_weights, trust_cached
from hpo.train.weights import cache_path, imagenet_weights, load_state_dict

MODEL = "squeezenet1_1"  # the smallest torchvision classifier


def test_placed_weights_load_as_the_real_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = place_weights(monkeypatch, MODEL)
    assert path == cache_path(imagenet_weights(MODEL), tmp_path / "torch")
    loaded = load_state_dict(imagenet_weights(MODEL), MODEL)
    saved = torch.load(path, weights_only=True)
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


def test_a_made_up_file_is_refused_until_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = cache_path(imagenet_weights(MODEL))
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ConfigError, match=path.name):
        load_state_dict(imagenet_weights(MODEL), MODEL)
    trust_cached(monkeypatch, path)
    assert torch.equal(load_state_dict(imagenet_weights(MODEL), MODEL)["w"], torch.zeros(2))
