"""Model registry: every torchvision classifier by its name, a tiny CNN; heads sized to the data.

Every torchvision classification model (``torchvision.models.list_models``) is an entry under
its torchvision name, whose info names its family's classifier head; hand-written entries
remain where they add parameters (``small_cnn``, dropout, stochastic depth, ``shufflenet_v2``
with ``size``). Pretrained weights (``train.model.weights``) are torchvision's (``imagenet`` or
a weight name, from torch's cache: :mod:`hpo.train.weights`) or a local state-dict file; either
way everything but the classifier head loads strictly, and the head is a fresh one sized to
the data's classes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torchvision.models as tvm
from pydantic import Field
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torchvision.models import WeightsEnum

from hpo.components import MODELS
from hpo.components.models import DROPOUT, HEADS, TORCHVISION_CLASSIFIERS, Dropout
from hpo.config import ModelSpec
from hpo.exceptions import ConfigError
from hpo.train.weights import (
    check_weights,
    imagenet_weights,
    is_cached,
    load_state_dict,
    resolve_weights,
)

__all__ = [
    "MODELS",
    "ModelSummary",
    "build_model",
    "build_torchvision",
    "check_weights",
    "head_name",
    "list_models",
    "set_backbone_trainable",
]


# Parameters and facts of every entry are declared in hpo.components.models (no torch needed).
@MODELS.register("small_cnn")
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


def _family(name: str) -> str:
    return TORCHVISION_CLASSIFIERS[name][0]


def build_torchvision(
    name: str,
    *,
    num_classes: int,
    weights: WeightsEnum | None = None,
    image_size: tuple[int, int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """torchvision model ``name`` with a ``num_classes`` head, randomly initialised or with
    ``weights`` (from torch's cache, hash-checked and read with ``weights_only=True``:
    :func:`hpo.train.weights.load_state_dict`), built for ``image_size`` where the family needs
    it (ViT, MaxViT).

    Raises:
        ConfigError: The cached weights are missing, corrupt or do not fit the model (the
            mismatched keys named).
    """
    builder: Callable[..., nn.Module] = tvm.get_model_builder(name)
    family = _family(name)
    if family in ("googlenet", "inception"):
        kwargs["aux_logits"] = False  # one output; pretrained auxiliary heads are dropped
        # What the pretrained builder sets, and every build must match (it is not in the state
        # dict): a model trained from ImageNet weights and rebuilt for prediction is the same.
        kwargs["transform_input"] = True
        if weights is None:
            kwargs["init_weights"] = True
    size: dict[str, Any] = {}
    if image_size is not None and family == "vision_transformer":
        size = {"image_size": int(image_size[0])}
    elif image_size is not None and family == "maxvit":
        size = {"input_size": tuple(int(v) for v in image_size)}
    if weights is None:
        return builder(weights=None, num_classes=num_classes, **size, **kwargs)
    state = load_state_dict(weights, name)
    try:
        model = _pretrained(builder, family, weights, state, kwargs)
        if size and size != {k: getattr(model, k, None) for k in size}:
            model = _resized(builder, model, family, size, kwargs)
    except RuntimeError as exc:  # load_state_dict(strict=True) names the mismatched keys
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"train.model.weights: {weights.url.rsplit('/', 1)[-1]} does not fit model "
            f"{name!r}: {detail[:400]}"
        ) from None
    _replace_head(model, HEADS[family], num_classes)
    return model


_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)
"""DenseNet's published keys (``norm.1``) as its modules name them now (``norm1``)."""


def _pretrained(
    builder: Callable[..., nn.Module],
    family: str,
    weights: WeightsEnum,
    state: dict[str, torch.Tensor],
    kwargs: dict[str, Any],
) -> nn.Module:
    """What ``builder(weights=weights, **kwargs)`` builds, with ``state`` loaded strictly.

    torchvision's builders load through ``WeightsEnum.get_state_dict``, which unpickles with
    ``weights_only=False``; this builds the same network with ``weights=None`` and loads the
    already checked ``state``, repeating what the builders do around their loading.
    """
    kwargs = {**kwargs, "num_classes": len(weights.meta["categories"])}
    if family in ("googlenet", "inception"):
        kwargs.update(aux_logits=True, init_weights=False)
    elif family == "vgg":
        kwargs["init_weights"] = False
    elif family == "vision_transformer":
        kwargs["image_size"] = weights.meta["min_size"][0]
    elif family == "maxvit":
        kwargs["input_size"] = weights.meta["min_size"]
    if family == "densenet":
        renamed = OrderedDict((_DENSENET_KEY.sub(r"\1\2", k), v) for k, v in state.items())
        # The modules' versions ride on the state dict (torch.save keeps them): keep them too.
        renamed._metadata = getattr(state, "_metadata", OrderedDict())  # type: ignore[attr-defined]
        state = renamed
    model = builder(weights=None, **kwargs)
    model.load_state_dict(state)
    # The auxiliary heads exist only to take the pretrained keys: dropped, as the builders do.
    aux = {"googlenet": ("aux1", "aux2"), "inception": ("AuxLogits",)}.get(family, ())
    if aux:
        model.aux_logits = False  # type: ignore[assignment]
    for attr in aux:
        setattr(model, attr, None)
    return model


def _resized(
    builder: Callable[..., nn.Module],
    pretrained: nn.Module,
    family: str,
    size: dict[str, Any],
    kwargs: dict[str, Any],
) -> nn.Module:
    """``pretrained`` rebuilt for another input size (ViT: position embeddings interpolated)."""
    state = pretrained.state_dict()
    if family == "vision_transformer":
        from torchvision.models.vision_transformer import interpolate_embeddings

        patch = int(getattr(pretrained, "patch_size", 16))
        state = interpolate_embeddings(size["image_size"], patch, state)
    num_classes = state[HEADS[family] + ".weight"].shape[0]
    model = builder(weights=None, num_classes=num_classes, **size, **kwargs)
    model.load_state_dict(state)
    return model


def _replace_head(model: nn.Module, head: str, num_classes: int) -> None:
    """Swap the classifier layer ``head`` for a fresh one with ``num_classes`` outputs."""
    parent_name, _, attr = head.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = model.get_submodule(head)
    new: nn.Module
    if isinstance(old, nn.Linear):
        if old.out_features == num_classes:
            return
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d):  # SqueezeNet's classifier is a 1x1 convolution
        if old.out_channels == num_classes:
            return
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1)  # 1x1 in every SqueezeNet
    else:
        raise TypeError(f"{head}: a {type(old).__name__} is not a classifier layer")
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    if attr.isdigit() and isinstance(parent, nn.Sequential):
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)


def _register_torchvision(name: str) -> None:
    def factory(
        *,
        num_classes: int,
        weights: WeightsEnum | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> nn.Module:
        return build_torchvision(
            name, num_classes=num_classes, weights=weights, image_size=image_size
        )

    factory.__doc__ = f"torchvision ``{name}``."
    MODELS.register(name)(factory)


def _register_dropout(name: str, default: float) -> None:
    def factory(
        *, num_classes: int, weights: WeightsEnum | None = None, dropout: Dropout = default
    ) -> nn.Module:
        return build_torchvision(name, num_classes=num_classes, weights=weights, dropout=dropout)

    factory.__doc__ = f"torchvision ``{name}`` (dropout before the classifier)."
    MODELS.register(name)(factory)


# Hand-written entries only where they add parameters: torchvision's own dropout defaults.
for _name, _dropout in DROPOUT.items():
    _register_dropout(_name, _dropout)


@MODELS.register("convnext_tiny")
def convnext_tiny(
    *,
    num_classes: int,
    weights: WeightsEnum | None = None,
    stochastic_depth_prob: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1,
) -> nn.Module:
    """torchvision ``convnext_tiny`` with its stochastic depth."""
    return build_torchvision(
        "convnext_tiny",
        num_classes=num_classes,
        weights=weights,
        stochastic_depth_prob=stochastic_depth_prob,
    )


@MODELS.register("shufflenet_v2")
def shufflenet_v2(
    *, num_classes: int, size: Literal["x0_5", "x1_0", "x1_5", "x2_0"] = "x1_0"
) -> nn.Module:
    """torchvision ``shufflenet_v2_<size>``, randomly initialised (its ImageNet weights come
    with the torchvision names, ``shufflenet_v2_x1_0`` and so on)."""
    return build_torchvision(f"shufflenet_v2_{size}", num_classes=num_classes)


# Every other torchvision classification model, by its torchvision name.
for _name in sorted(TORCHVISION_CLASSIFIERS.keys() - {*DROPOUT, "convnext_tiny"}):
    _register_torchvision(_name)


# ---------------------------------------------------------------------------------------------


def build_model(
    spec: ModelSpec, num_classes: int, image_size: tuple[int, int] | None = None
) -> nn.Module:
    """Build ``spec``'s network with ``num_classes`` outputs, with its pretrained weights if any.

    torchvision weights (``imagenet`` or a weight name) load strictly except the classifier
    head, which is replaced by one sized to ``num_classes``; a local file loads the same way.

    Args:
        spec: The model settings.
        num_classes: Outputs of the head.
        image_size: ``(height, width)`` of the inputs; models built for a size (ViT, MaxViT)
            need it (the models' default size otherwise).

    Raises:
        ConfigError: The weights are missing, unreadable, not downloadable, or do not fit.
    """
    resolved = resolve_weights(spec)
    if isinstance(resolved, Path):
        check_weights(spec)
    info = MODELS.info(spec.name)
    runtime: dict[str, Any] = {}
    if resolved is not None and not isinstance(resolved, Path):
        runtime["weights"] = resolved
    if info.sized and image_size is not None:
        runtime["image_size"] = tuple(image_size)
    model = MODELS.create(spec.name, num_classes=num_classes, **runtime, **spec.params)
    if isinstance(resolved, Path):
        _load_weights(model, resolved, spec.name, info.head)
    return model


@dataclass(frozen=True)
class ModelSummary:
    """One registered model as ``hpo models`` lists it.

    Attributes:
        name: The registered name.
        params: Parameters (torchvision's count, with its 1000-class ImageNet head).
        weights: The torchvision weights ``imagenet`` loads (``IMAGENET1K_V1``), or None.
        cached: Whether those weights are in torch's cache.
        min_size: Smallest image side it accepts.
    """

    name: str
    params: int
    weights: str | None
    cached: bool
    min_size: int


def list_models() -> list[ModelSummary]:
    """Every registered model, with its size and whether its ImageNet weights are cached."""
    out = []
    for name in MODELS.names():
        info = MODELS.info(name)
        if info.torchvision is None:
            count = sum(p.numel() for p in MODELS.create(name, num_classes=1000).parameters())
            out.append(ModelSummary(name, count, None, False, info.min_size))
            continue
        weights = imagenet_weights(name)
        out.append(
            ModelSummary(
                name,
                int(weights.meta["num_params"]),
                weights.name,
                is_cached(weights),
                info.min_size,
            )
        )
    return out


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
