"""Fixtures of the training tests: tiny configs and data, one CPU thread, the CLI in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpo.config import TrainConfig, apply_overrides, train_config_from_dict

from .helpers import TINY, MakeConfig, learnable_data


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine two OpenMP
    threads spin-waiting on each other make them many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_config() -> MakeConfig:
    """``make_config(**{"train.epochs": 2})``: the tiny config with dotted overrides."""

    def make(**overrides: Any) -> TrainConfig:
        raw = apply_overrides(TINY, list(overrides.items()))
        return train_config_from_dict(raw, "test")

    return make


@pytest.fixture(scope="module")
def learnable() -> tuple[np.ndarray, np.ndarray]:
    return learnable_data()


@pytest.fixture(scope="session")
def folder_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder-format data set: ROOT/<class>/*.png, 3 colour classes x 10 images."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder") / "data"
    rng = np.random.default_rng(0)
    for label, name in enumerate(["blue", "green", "red"]):
        (root / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 90, (20, 16, 3), dtype=np.uint8)
            pixels[4:16, 4:12, 2 - label] = 240
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root
