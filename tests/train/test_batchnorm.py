"""Batch norm at evaluation: slow layers average each epoch's batches equally, without a
device sync."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from hpo.train.batchnorm import epoch_averaged, slow_layers, trainable_layers


def test_slow_statistics_average_each_epoch() -> None:
    model = tvm.mobilenet_v3_small(weights=None, num_classes=3)
    model.train()
    layers = trainable_layers(model)
    # Momentum 0.01: 10 steps leave 90 % of the old values, 400 steps 1.8 %.
    assert slow_layers(layers, 10) == layers and slow_layers(layers, 400) == []
    assert slow_layers(trainable_layers(tvm.resnet18(weights=None)), 30) == []  # momentum 0.1
    x = torch.randn(8, 3, 32, 32) * 3 + 2
    with epoch_averaged(layers) as next_batch, torch.no_grad():
        next_batch()
        model(x[:4])
        next_batch()
        model(x[4:])
    first = layers[0]
    assert first.momentum == 0.01  # restored
    with torch.no_grad():
        stem = model.features[0][0](x)
    # The equal average of the two batches' means: the mean over all eight images.
    assert torch.allclose(first.running_mean, stem.mean((0, 2, 3)), atol=1e-4)


def test_the_epoch_average_is_torchs_cumulative_average() -> None:
    """Momentum 1/k at the k-th batch gives what torch's ``momentum=None`` gives."""
    torch.manual_seed(0)
    batches = [torch.randn(6, 4, 5, 5) * (k + 1) + k for k in range(5)]
    ours, torchs = nn.BatchNorm2d(4, momentum=0.01), nn.BatchNorm2d(4, momentum=None)
    with epoch_averaged([ours]) as next_batch, torch.no_grad():
        for x in batches:
            next_batch()
            ours(x)
            torchs(x)
    torch.testing.assert_close(ours.running_mean, torchs.running_mean)
    torch.testing.assert_close(ours.running_var, torchs.running_var)
    assert ours.momentum == 0.01  # restored after the epoch
    # The next epoch starts over: only its batches count.
    with epoch_averaged([ours]) as next_batch, torch.no_grad():
        next_batch()
        ours(batches[0])
    mean = batches[0].mean((0, 2, 3))
    torch.testing.assert_close(ours.running_mean, mean)


def test_each_step_runs_with_a_python_float_momentum() -> None:
    """``momentum=None`` would make torch divide by a device tensor (a GPU sync per layer per
    step); the layers see plain floats 1, 1/2, 1/3, ... instead."""
    layer = nn.BatchNorm2d(3, momentum=0.001)
    seen: list[object] = []
    layer.register_forward_pre_hook(lambda module, _: seen.append(module.momentum))
    with epoch_averaged([layer]) as next_batch, torch.no_grad():
        for _ in range(4):
            next_batch()
            layer(torch.randn(2, 3, 4, 4))
    assert all(type(m) is float for m in seen)
    assert seen == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / 4])


def test_layers_that_forget_within_the_epoch_are_left_alone() -> None:
    fast = nn.BatchNorm2d(3)  # torch's 0.1: 0.9 ** 40 = 1.5 % of the old values remain
    frozen = nn.BatchNorm2d(3, momentum=0.01).eval()
    untracked = nn.BatchNorm2d(3, momentum=0.01, track_running_stats=False)
    model = nn.Sequential(fast, frozen, untracked)
    assert trainable_layers(model) == [fast]
    assert slow_layers([fast], 40) == [] and slow_layers([fast], 20) == [fast]
