"""The models' parameters and facts, declared without torch or torchvision (built by
``hpo.train.models``).

Every torchvision classification model is an entry under its torchvision name. Their names and
the two facts the schema needs from torchvision (the family, i.e. the module that builds it,
and the weights' stated ``min_size``) are written out below, so validating a config never
imports torchvision; ``tests/test_registry.py`` checks the table against the installed
torchvision's ``list_models`` and weights, so it cannot drift.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hpo.components import MODELS, ModelInfo

__all__ = [
    "CPU_CHANNELS_LAST",
    "DROPOUT",
    "HEADS",
    "TORCHVISION_CLASSIFIERS",
    "Dropout",
    "torchvision_info",
]

Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]

TORCHVISION_CLASSIFIERS: dict[str, tuple[str, int]] = {
    # name: (family: the torchvision module that builds it, its weights' meta["min_size"])
    "alexnet": ("alexnet", 63),
    "convnext_base": ("convnext", 32),
    "convnext_large": ("convnext", 32),
    "convnext_small": ("convnext", 32),
    "convnext_tiny": ("convnext", 32),
    "densenet121": ("densenet", 29),
    "densenet161": ("densenet", 29),
    "densenet169": ("densenet", 29),
    "densenet201": ("densenet", 29),
    "efficientnet_b0": ("efficientnet", 1),
    "efficientnet_b1": ("efficientnet", 1),
    "efficientnet_b2": ("efficientnet", 1),
    "efficientnet_b3": ("efficientnet", 1),
    "efficientnet_b4": ("efficientnet", 1),
    "efficientnet_b5": ("efficientnet", 1),
    "efficientnet_b6": ("efficientnet", 1),
    "efficientnet_b7": ("efficientnet", 1),
    "efficientnet_v2_l": ("efficientnet", 33),
    "efficientnet_v2_m": ("efficientnet", 33),
    "efficientnet_v2_s": ("efficientnet", 33),
    "googlenet": ("googlenet", 15),
    "inception_v3": ("inception", 75),
    "maxvit_t": ("maxvit", 224),
    "mnasnet0_5": ("mnasnet", 1),
    "mnasnet0_75": ("mnasnet", 1),
    "mnasnet1_0": ("mnasnet", 1),
    "mnasnet1_3": ("mnasnet", 1),
    "mobilenet_v2": ("mobilenetv2", 1),
    "mobilenet_v3_large": ("mobilenetv3", 1),
    "mobilenet_v3_small": ("mobilenetv3", 1),
    "regnet_x_16gf": ("regnet", 1),
    "regnet_x_1_6gf": ("regnet", 1),
    "regnet_x_32gf": ("regnet", 1),
    "regnet_x_3_2gf": ("regnet", 1),
    "regnet_x_400mf": ("regnet", 1),
    "regnet_x_800mf": ("regnet", 1),
    "regnet_x_8gf": ("regnet", 1),
    "regnet_y_128gf": ("regnet", 1),
    "regnet_y_16gf": ("regnet", 1),
    "regnet_y_1_6gf": ("regnet", 1),
    "regnet_y_32gf": ("regnet", 1),
    "regnet_y_3_2gf": ("regnet", 1),
    "regnet_y_400mf": ("regnet", 1),
    "regnet_y_800mf": ("regnet", 1),
    "regnet_y_8gf": ("regnet", 1),
    "resnet101": ("resnet", 1),
    "resnet152": ("resnet", 1),
    "resnet18": ("resnet", 1),
    "resnet34": ("resnet", 1),
    "resnet50": ("resnet", 1),
    "resnext101_32x8d": ("resnet", 1),
    "resnext101_64x4d": ("resnet", 1),
    "resnext50_32x4d": ("resnet", 1),
    "shufflenet_v2_x0_5": ("shufflenetv2", 1),
    "shufflenet_v2_x1_0": ("shufflenetv2", 1),
    "shufflenet_v2_x1_5": ("shufflenetv2", 1),
    "shufflenet_v2_x2_0": ("shufflenetv2", 1),
    "squeezenet1_0": ("squeezenet", 21),
    "squeezenet1_1": ("squeezenet", 17),
    "swin_b": ("swin_transformer", 224),
    "swin_s": ("swin_transformer", 224),
    "swin_t": ("swin_transformer", 224),
    "swin_v2_b": ("swin_transformer", 256),
    "swin_v2_s": ("swin_transformer", 256),
    "swin_v2_t": ("swin_transformer", 256),
    "vgg11": ("vgg", 32),
    "vgg11_bn": ("vgg", 32),
    "vgg13": ("vgg", 32),
    "vgg13_bn": ("vgg", 32),
    "vgg16": ("vgg", 32),
    "vgg16_bn": ("vgg", 32),
    "vgg19": ("vgg", 32),
    "vgg19_bn": ("vgg", 32),
    "vit_b_16": ("vision_transformer", 224),
    "vit_b_32": ("vision_transformer", 224),
    "vit_h_14": ("vision_transformer", 518),
    "vit_l_16": ("vision_transformer", 224),
    "vit_l_32": ("vision_transformer", 224),
    "wide_resnet101_2": ("resnet", 1),
    "wide_resnet50_2": ("resnet", 1),
}
"""Every model of ``torchvision.models.list_models(module=torchvision.models)``."""

HEADS = {
    "alexnet": "classifier.6",
    "convnext": "classifier.2",
    "densenet": "classifier",
    "efficientnet": "classifier.1",
    "googlenet": "fc",
    "inception": "fc",
    "maxvit": "classifier.5",
    "mnasnet": "classifier.1",
    "mobilenetv2": "classifier.1",
    "mobilenetv3": "classifier.3",
    "regnet": "fc",
    "resnet": "fc",
    "shufflenetv2": "fc",
    "squeezenet": "classifier.1",
    "swin_transformer": "head",
    "vgg": "classifier.6",
    "vision_transformer": "heads.head",
}
"""Where each torchvision family keeps its classifier (checked per family by the tests)."""

# torchvision's stated minimum (weights meta ``min_size``) is 224 for Swin, whose windows pad
# any smaller input; what it really needs is one patch-merging step's worth.
_MIN_SIZE = {"swin_transformer": 32}
# MaxViT's stages partition 1/2 .. 1/32 scale maps into 7 x 7 windows: sides multiple of 224.
_MULTIPLE = {"maxvit": 224}

CPU_CHANNELS_LAST = ("efficientnet", "mobilenetv2", "mobilenetv3")
"""Families whose CPU train step is faster in channels_last. On a quiet 2-core machine (issue
#12): mobilenet_v3_small 1.9x at 64x48 and 1.4x at 128x96, efficientnet_b0 1.5x at 128x96;
resnet18 0.9-1.1x, so ResNets and the rest stay contiguous on the CPU."""


def torchvision_info(name: str) -> ModelInfo:
    """The facts of torchvision model ``name`` (a key of ``TORCHVISION_CLASSIFIERS``)."""
    family, weights_min_size = TORCHVISION_CLASSIFIERS[name]
    sized = family in ("vision_transformer", "maxvit")
    multiple = _MULTIPLE.get(family, 1)
    min_size = _MIN_SIZE.get(family, weights_min_size)
    if family == "vision_transformer":  # vit_b_16: 16-pixel patches, built for the image size
        multiple = min_size = int(name.rsplit("_", 1)[-1])
    return ModelInfo(
        head=HEADS[family],
        torchvision=name,
        min_size=min_size,
        size_multiple=multiple,
        square=family == "vision_transformer",
        sized=sized,
        cpu_channels_last=family in CPU_CHANNELS_LAST,
    )


# channels_last: 1.3-1.4x faster CPU train step at 64x48 (bench_data_path.py --formats-only).
@MODELS.declare("small_cnn", info=ModelInfo(head="18", cpu_channels_last=True))
def small_cnn(
    *,
    width: Annotated[int, Field(ge=4, le=256)] = 16,
    grid: Annotated[int, Field(ge=1, le=8)] = 4,
    dropout: Dropout = 0.0,
) -> None:
    """A four-stage CNN that trains in about a second per 1,000 small images on a CPU."""


DROPOUT = {
    "efficientnet_b0": 0.2,
    "efficientnet_b1": 0.2,
    "efficientnet_b2": 0.3,
    "efficientnet_b3": 0.3,
    "mobilenet_v3_small": 0.2,
    "mobilenet_v3_large": 0.2,
}
"""Torchvision models with a ``dropout`` parameter (before the classifier), and its default:
torchvision's own."""


def _declare_dropout(name: str, default: float) -> None:
    def signature(*, dropout: Dropout = default) -> None:
        """The entry's parameters."""

    signature.__doc__ = f"torchvision ``{name}`` (dropout before the classifier)."
    MODELS.declare(name, info=torchvision_info(name))(signature)


for _name, _dropout in DROPOUT.items():
    _declare_dropout(_name, _dropout)


@MODELS.declare("convnext_tiny", info=torchvision_info("convnext_tiny"))
def convnext_tiny(*, stochastic_depth_prob: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1) -> None:
    """torchvision ``convnext_tiny`` with its stochastic depth."""


@MODELS.declare("shufflenet_v2", info=ModelInfo(head="fc"))
def shufflenet_v2(*, size: Literal["x0_5", "x1_0", "x1_5", "x2_0"] = "x1_0") -> None:
    """torchvision ``shufflenet_v2_<size>``, randomly initialised (its ImageNet weights come
    with the torchvision names, ``shufflenet_v2_x1_0`` and so on)."""


def _no_parameters() -> None:
    """A torchvision model with no parameters of its own."""


# Every other torchvision classification model, by its torchvision name.
for _name in TORCHVISION_CLASSIFIERS:
    if _name not in MODELS:
        MODELS.declare(_name, info=torchvision_info(_name))(_no_parameters)
