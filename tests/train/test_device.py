"""Memory-format choice per device and model."""

from __future__ import annotations

import pytest
import torch

from hpo.train.device import use_channels_last


@pytest.mark.parametrize(
    ("model", "expected"),
    [("small_cnn", True), ("mobilenet_v3_small", True), ("efficientnet_b0", True),
     ("resnet18", False), ("convnext_tiny", False)],
)  # fmt: skip
def test_cpu_channels_last_per_family(model: str, expected: bool) -> None:
    assert use_channels_last(torch.device("cpu"), model) is expected
    assert use_channels_last(torch.device("cpu"), model, enabled=False) is False


def test_cuda_always_channels_last_unless_disabled() -> None:
    assert use_channels_last(torch.device("cuda"), "resnet18") is True
    assert use_channels_last(torch.device("cuda"), "resnet18", enabled=False) is False
