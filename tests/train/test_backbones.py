"""torchvision backbones: every family's head, batch-norm statistics at evaluation after a
short fit, the backbone multiplier (ImageNet weights: test_weights.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from hpo.config import ModelSpec, OptimizerSpec, SchedulerSpec, train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.train.models import MODELS, build_model, head_name
from hpo.train.optim import build_optimizer, build_schedule

from .helpers import MakeConfig, learnable_data, tiny_fit

CPU = torch.device("cpu")

# One representative per torchvision family, at the smallest input it accepts.
FAMILIES = {
    "alexnet": (64, 64),
    "convnext_tiny": (32, 32),
    "densenet121": (32, 32),
    "efficientnet_b0": (32, 32),
    "googlenet": (32, 32),
    "inception_v3": (80, 80),
    "maxvit_t": (224, 224),
    "mnasnet0_5": (32, 32),
    "mobilenet_v2": (32, 32),
    "mobilenet_v3_small": (32, 32),
    "regnet_x_400mf": (32, 32),
    "resnet18": (32, 32),
    "shufflenet_v2_x0_5": (32, 32),
    "squeezenet1_1": (32, 32),
    "swin_t": (32, 32),
    "vgg11": (32, 32),
    "vit_b_32": (32, 32),
}
SLOW = {"maxvit_t", "vgg11", "alexnet", "inception_v3"}
# The families without a batch norm (the head test checks it); the others' statistics are tested
# below.
NO_BATCH_NORM = {"alexnet", "convnext_tiny", "squeezenet1_1", "swin_t", "vgg11", "vit_b_32"}


def test_every_torchvision_classifier_is_registered_by_its_name() -> None:
    names = set(MODELS.names())
    for name in tvm.list_models(module=tvm):
        assert name in names, name
        assert MODELS.info(name).torchvision == name
    families = {str(tvm.get_model_builder(n).__module__).rsplit(".", 1)[-1] for n in FAMILIES}
    every = {
        str(tvm.get_model_builder(n).__module__).rsplit(".", 1)[-1]
        for n in names - {"small_cnn", "shufflenet_v2"}
    }
    assert every == families  # the parametrization below covers every family


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in FAMILIES]
)
def test_each_family_has_its_head_replaced_and_trains_one_batch(name: str) -> None:
    size = FAMILIES[name]
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name), num_classes=5, image_size=size)
    head = model.get_submodule(head_name(name))
    assert isinstance(head, nn.Linear | nn.Conv2d)
    assert (head.out_features if isinstance(head, nn.Linear) else head.out_channels) == 5
    has_batch_norm = any(isinstance(m, _BatchNorm) for m in model.modules())
    assert has_batch_norm == (name not in NO_BATCH_NORM)
    model.train()
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


@pytest.mark.parametrize(
    ("model", "size", "fragment"),
    [
        ("vit_b_16", [64, 48], "square"),
        ("vit_b_16", [40, 40], "multiple of 16"),
        ("alexnet", [32, 32], "at least 63"),
        ("maxvit_t", [256, 192], "multiple of 224"),
    ],
)
def test_image_sizes_a_model_cannot_take_are_refused(
    model: str, size: list[int], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        train_config_from_dict({"data": {"image_size": size}, "train": {"model": model}}, "c.yaml")


# ---------------------------------------------------------------------------------------------
# Batch norm at evaluation


# vgg11 has no batch norm: vgg11_bn stands for VGG with batch norms.
BATCH_NORM_FAMILIES = {n: s for n, s in FAMILIES.items() if n not in NO_BATCH_NORM} | {
    "vgg11_bn": (32, 32)
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n in SLOW | {"vgg11_bn"} else n
        for n in BATCH_NORM_FAMILIES
    ],
)
def test_after_a_short_epoch_evaluation_uses_that_epochs_statistics(name: str) -> None:
    # Three steps: too few for any torchvision momentum to forget its start (0.1 keeps 73 %,
    # the 0.01 of MobileNetV3, MaxViT and EfficientNet-B5+ 97 %, MNASNet's 0.0003 nearly all),
    # so every layer must come out of the epoch holding the mean of the statistics of the
    # batches it normalized: the statistics evaluation then uses. Comparing with the batches'
    # own statistics (recorded as they pass) rather than with an evaluation pass keeps
    # train/eval differences that are not batch norm's (stochastic depth, dropout) out of it.
    height, width = BATCH_NORM_FAMILIES[name]
    images, labels = learnable_data(n=18, size=max(height, 16))
    idx = np.arange(len(labels))
    config = train_config_from_dict(
        {
            "data": {"image_size": [height, width]},
            "train": {"model": name, "epochs": 1, "batch_size": 6, "seed": 0},
        },
        "test",
    )
    seen: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...], _: object) -> None:
        if isinstance(module, _BatchNorm) and module.training:
            x = args[0].detach().double()
            dims = [0, *range(2, x.dim())]
            seen.setdefault(module, []).append((x.mean(dims), x.var(dims)))

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        model = tiny_fit(config, (images[:, :height, :width], labels), idx, None).model
    finally:
        handle.remove()
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    assert layers and set(layers) == set(seen), "every batch norm trained"
    for layer in layers:
        batches = seen[layer]
        assert len(batches) == 3
        assert layer.momentum is not None  # restored after the epoch
        mean = torch.stack([m for m, _ in batches]).mean(0).float()
        var = torch.stack([v for _, v in batches]).mean(0).float()
        assert torch.allclose(layer.running_mean, mean, rtol=1e-3, atol=1e-5)
        assert torch.allclose(layer.running_var, var, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v3_small",  # momentum 0.01: one class before statistics were recomputed
        "mnasnet0_5",  # momentum 0.0003
        pytest.param("efficientnet_b0", marks=pytest.mark.slow),
        pytest.param("resnet18", marks=pytest.mark.slow),
    ],
)
def test_a_short_fit_predicts_more_than_one_class(name: str, make_config: MakeConfig) -> None:
    images, labels = learnable_data(n=60, size=32)
    idx = np.arange(60)
    config = make_config(
        **{
            "data.image_size": [32, 32],
            "train.model": {"name": name},
            "train.epochs": 3,
            "train.batch_size": 20,
            "train.optimizer.lr": 0.003,
            "train.augment.crop_scale": 1.0,
        }
    )
    result = tiny_fit(config, (images, labels), idx, idx)
    assert result.val_pred is not None
    assert len(set(result.val_pred.tolist())) > 1, result.metrics


# ---------------------------------------------------------------------------------------------
# Backbone learning-rate multiplier


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("scheduler", ["onecycle", "warmup_cosine", "cosine"])
def test_the_backbone_trains_at_a_fraction_of_the_rate(optimizer: str, scheduler: str) -> None:
    model = MODELS.create("small_cnn", num_classes=3, width=4)
    spec = OptimizerSpec(name=optimizer, lr=0.01, backbone_lr_mult=0.1)
    opt = build_optimizer(spec, model, head_name("small_cnn"))
    head, backbone = opt.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in model[-1].parameters()}
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))
    schedule = build_schedule(SchedulerSpec(name=scheduler), opt, epochs=2, steps_per_epoch=5)
    peak = [0.0, 0.0]
    for _ in range(10):
        opt.step()
        schedule.batch_end()
        schedule.epoch_end(0.5)
        peak = [max(peak[i], opt.param_groups[i]["lr"]) for i in (0, 1)]
        assert opt.param_groups[1]["lr"] == pytest.approx(opt.param_groups[0]["lr"] * 0.1)
    assert peak[0] <= 0.01 + 1e-12
