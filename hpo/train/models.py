"""Model registry: torchvision classifiers and a tiny CNN, each with its head sized to the classes.

Every entry builds a randomly initialised network with ``num_classes`` outputs (torchvision
builders with ``weights=None``: nothing is ever downloaded). Pretrained weights come only from
a local file named in the config (``train.model.weights``), loaded by :func:`build_model`
before training; a classifier head of another size in that file (ImageNet's 1000 classes) is
left out and keeps its fresh initialisation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torchvision.models as tvm
from pydantic import Field
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from hpo.components import MODELS, ModelInfo
from hpo.config import ModelSpec
from hpo.exceptions import ConfigError

__all__ = ["MODELS", "build_model", "check_weights", "head_name", "set_backbone_trainable"]

Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


@MODELS.register("small_cnn", info=ModelInfo(head="18"))
def small_cnn(
    *,
    num_classes: int,
    width: Annotated[int, Field(ge=4, le=256)] = 16,
    grid: Annotated[int, Field(ge=1, le=8)] = 4,
    dropout: Dropout = 0.0,
) -> nn.Module:
    """A four-stage CNN that trains in about a second per 1,000 small images on a CPU.

    A stride-2 stem, then three conv-pool stages doubling the width (16x downsampling: 64x48
    inputs end at 4x3), average-pooled to a ``grid`` x ``grid`` map whose cells all feed the
    classifier. Keeping that coarse layout (where a mask sits on a face) learns much faster
    than global pooling (``grid: 1``). For demos and tests.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    channels = width
    for _ in range(3):
        layers += [
            nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels * 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        channels *= 2
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(grid),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(channels * grid * grid, num_classes),
    )


def _register_plain(name: str, builder: Callable[..., nn.Module], head: str) -> None:
    def factory(*, num_classes: int) -> nn.Module:
        return builder(weights=None, num_classes=num_classes)

    factory.__doc__ = f"torchvision ``{name}``, randomly initialised."
    MODELS.register(name, info=ModelInfo(head=head))(factory)


for _name in ("resnet18", "resnet34", "resnet50"):
    _register_plain(_name, getattr(tvm, _name), "fc")


def _register_dropout(
    name: str, builder: Callable[..., nn.Module], default: float, head: str
) -> None:
    def factory(*, num_classes: int, dropout: Dropout = default) -> nn.Module:
        return builder(weights=None, num_classes=num_classes, dropout=dropout)

    factory.__doc__ = f"torchvision ``{name}`` (dropout before the classifier)."
    MODELS.register(name, info=ModelInfo(head=head))(factory)


# torchvision's own dropout defaults per variant, and where each family keeps its classifier.
for _name, _dropout, _head in (
    ("efficientnet_b0", 0.2, "classifier.1"),
    ("efficientnet_b1", 0.2, "classifier.1"),
    ("efficientnet_b2", 0.3, "classifier.1"),
    ("efficientnet_b3", 0.3, "classifier.1"),
    ("mobilenet_v3_small", 0.2, "classifier.3"),
    ("mobilenet_v3_large", 0.2, "classifier.3"),
):
    _register_dropout(_name, getattr(tvm, _name), _dropout, _head)


@MODELS.register("shufflenet_v2", info=ModelInfo(head="fc"))
def shufflenet_v2(
    *, num_classes: int, size: Literal["x0_5", "x1_0", "x1_5", "x2_0"] = "x1_0"
) -> nn.Module:
    """torchvision ``shufflenet_v2_<size>``."""
    builder: Callable[..., nn.Module] = getattr(tvm, f"shufflenet_v2_{size}")
    return builder(weights=None, num_classes=num_classes)


@MODELS.register("convnext_tiny", info=ModelInfo(head="classifier.2"))
def convnext_tiny(
    *, num_classes: int, stochastic_depth_prob: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
) -> nn.Module:
    """torchvision ``convnext_tiny``."""
    return tvm.convnext_tiny(
        weights=None, num_classes=num_classes, stochastic_depth_prob=stochastic_depth_prob
    )


# ---------------------------------------------------------------------------------------------


def build_model(spec: ModelSpec, num_classes: int) -> nn.Module:
    """Build ``spec``'s network with ``num_classes`` outputs, loading its local weights if any.

    Raises:
        ConfigError: The weights file is missing, unreadable or does not fit the model.
    """
    check_weights(spec)
    model = MODELS.create(spec.name, num_classes=num_classes, **spec.params)
    if spec.weights is not None:
        _load_weights(model, Path(spec.weights), spec.name, head_name(spec.name))
    return model


def head_name(model_name: str) -> str:
    """Qualified module name of model ``model_name``'s classifier head (its registry info)."""
    return MODELS.info(model_name).head


def set_backbone_trainable(model: nn.Module, head: str, trainable: bool) -> None:
    """Freeze (or unfreeze) every parameter outside the classifier head named ``head``.

    A frozen backbone's batch-norm layers are also put in eval mode, so its features really
    stay fixed; call this after ``model.train()``.
    """
    for name, module in model.named_modules():
        if name == head or name.startswith(head + "."):
            continue
        for param in module.parameters(recurse=False):
            param.requires_grad_(trainable)
        if not trainable and isinstance(module, _BatchNorm):
            module.eval()


def check_weights(spec: ModelSpec) -> None:
    """Raise ConfigError now if ``spec.weights`` names a file that does not exist."""
    if spec.weights is not None and not Path(spec.weights).is_file():
        raise ConfigError(
            f"train.model.weights: {spec.weights}: file not found (pretrained weights are read "
            f"from a local file only; nothing is downloaded)"
        )


def _load_weights(model: nn.Module, path: Path, name: str, head: str) -> None:
    where = f"train.model.weights: {path}"
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(
            f"{where}: not a readable state dict ({type(exc).__name__}: {exc})"
        ) from None
    state = _unwrap_state_dict(loaded)
    if state is None:
        raise ConfigError(f"{where}: expected a state dict (parameter name -> tensor)")
    own = model.state_dict()
    # A head of another size (ImageNet's 1000 classes) is dropped: ours stays freshly initialised.
    state = {
        k: v
        for k, v in state.items()
        if not (k.startswith(head + ".") and k in own and own[k].shape != v.shape)
    }
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    result = model.load_state_dict(
        {k: v for k, v in state.items() if k not in mismatched}, strict=False
    )
    missing = [k for k in result.missing_keys if not k.startswith(head + ".")]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if result.unexpected_keys:
        problems.append(f"unexpected {_few(result.unexpected_keys)}")
    if mismatched:
        problems.append(f"wrong shape for {_few(mismatched)}")
    if problems:
        raise ConfigError(f"{where}: does not fit model {name!r}: {'; '.join(problems)}")


def _unwrap_state_dict(loaded: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        return None
    # Checkpoints saved from DataParallel / DistributedDataParallel carry a "module." prefix.
    return {k.removeprefix("module."): v for k, v in loaded.items()}


def _few(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown
