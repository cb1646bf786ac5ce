"""Memory-format choice per device and model (the model's registry info decides on the CPU)."""

from __future__ import annotations

import pytest
import torch

from hpo.components import MODELS
from hpo.train.device import use_channels_last


@pytest.mark.parametrize(
    ("model", "expected"),
    [("small_cnn", True), ("mobilenet_v3_small", True), ("efficientnet_b0", True),
     ("mobilenet_v2", True), ("resnet18", False), ("convnext_tiny", False)],
)  # fmt: skip
def test_cpu_channels_last_per_family(model: str, expected: bool) -> None:
    info = MODELS.info(model)
    assert use_channels_last(torch.device("cpu"), info.cpu_channels_last) is expected
    assert use_channels_last(torch.device("cpu"), info.cpu_channels_last, enabled=False) is False


def test_cuda_always_channels_last_unless_disabled() -> None:
    assert use_channels_last(torch.device("cuda"), False) is True
    assert use_channels_last(torch.device("cuda"), False, enabled=False) is False
