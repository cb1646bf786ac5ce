"""Memory-format choice per device and model (the model's registry info decides on the CPU);
the process-wide CUDA switches."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch

from hpo.components import MODELS
from hpo.train.device import configure_backends, use_channels_last


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


@pytest.fixture
def restore_backends() -> Iterator[None]:
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = (matmul.fp32_precision, conv.fp32_precision, torch.backends.cudnn.benchmark,
             torch.backends.cudnn.deterministic)  # fmt: skip
    yield
    matmul.fp32_precision, conv.fp32_precision = saved[:2]
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:]


@pytest.mark.usefixtures("restore_backends")
@pytest.mark.parametrize("deterministic", [False, True])
def test_cuda_backends_use_tf32_through_the_current_api(deterministic: bool) -> None:
    """The switches are plain settings: setting them for a CUDA device needs no GPU. TF32 goes
    through ``fp32_precision`` (the ``allow_tf32`` flags are deprecated since torch 2.9)."""
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    torch.backends.cudnn.conv.fp32_precision = "ieee"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        configure_backends(torch.device("cuda"), deterministic=deterministic)
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.backends.cudnn.conv.fp32_precision == "tf32"
    assert torch.backends.cudnn.benchmark is not deterministic
    assert torch.backends.cudnn.deterministic is deterministic


@pytest.mark.usefixtures("restore_backends")
def test_nothing_changes_for_the_cpu() -> None:
    torch.backends.cuda.matmul.fp32_precision = "ieee"
    configure_backends(torch.device("cpu"))
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
