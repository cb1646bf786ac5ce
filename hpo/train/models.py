"""Model registry: torchvision classifiers and a tiny CNN, each with its head sized to the classes."""

from __future__ import annotations

from torch import nn

from hpo.registry import Registry

__all__ = ["MODELS"]

MODELS: Registry[nn.Module] = Registry("model", runtime=("num_classes",))


@MODELS.register("small_cnn")
def small_cnn(*, num_classes: int, width: int = 32) -> nn.Module:
    """A four-block CNN that trains in seconds on a CPU: for demos and tests."""
    layers: list[nn.Module] = []
    channels = 3
    for i in range(4):
        out = width * 2**i
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
