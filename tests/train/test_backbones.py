"""torchvision backbones: every family's head, ImageNet weights from torch's cache (never the
network), the offline error, batch-norm statistics at evaluation, the backbone multiplier."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from hpo.config import ModelSpec, OptimizerSpec, SchedulerSpec, train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.train import weights as weights_mod
from hpo.train.batchnorm import epoch_averaged, slow_layers, trainable_layers
from hpo.train.models import MODELS, build_model, head_name
from hpo.train.optim import build_optimizer, build_schedule
from hpo.train.weights import cache_path, check_weights, fetch, imagenet_weights

from .helpers import MakeConfig, learnable_data

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
# ImageNet weights from a temporary TORCH_HOME


def _local_only(request: urllib.request.Request | str, *args: Any, **kwargs: Any) -> Any:
    """``urlopen`` that opens ``file:`` URLs and fails every other one, as offline."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if not url.startswith("file:"):
        raise urllib.error.URLError("no network in tests")
    return urllib.request.urlopen(request, *args, **kwargs)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``TORCH_HOME``, and torch's real downloader with no network behind it."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "urlopen", _local_only)
    return home


def place_weights(name: str, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a state dict of the right shapes where torchvision expects ``name``'s weights."""
    weights = imagenet_weights(name)
    if state is None:
        torch.manual_seed(1)
        state = tvm.get_model_builder(name)(weights=None).state_dict()
    path = cache_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_imagenet_weights_load_from_torch_cache_with_a_fresh_head(torch_home: Path) -> None:
    path = place_weights("resnet18")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    saved = torch.load(path, weights_only=True)
    model = build_model(ModelSpec(name="resnet18", weights="imagenet"), num_classes=7)
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            assert value.shape[0] == 7
        else:
            assert torch.equal(value, saved[key]), key
    # A weight name of the model works too; another is refused with the known ones.
    build_model(ModelSpec(name="resnet18", weights="IMAGENET1K_V1"), num_classes=7)
    with pytest.raises(ConfigError, match="known: imagenet, IMAGENET1K_V1"):
        check_weights(ModelSpec(name="resnet18", weights="IMAGENET1K_V9"))


def test_weights_that_do_not_fit_name_the_keys(torch_home: Path) -> None:
    state = tvm.resnet18(weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    place_weights("resnet18", state)
    with pytest.raises(
        ConfigError, match=r"does not fit model 'resnet18'.*layer1\.0\.conv1\.weight"
    ):
        build_model(ModelSpec(name="resnet18", weights="imagenet"), num_classes=7)


def test_offline_with_nothing_cached_names_the_url_and_the_path(torch_home: Path) -> None:
    weights = imagenet_weights("efficientnet_b0")
    with pytest.raises(ConfigError) as info:
        check_weights(ModelSpec(name="efficientnet_b0", weights="imagenet"))
    message = str(info.value)
    assert weights.url in message
    assert str(torch_home / "hub" / "checkpoints" / Path(weights.url).name) in message
    assert "\n" not in message


def test_cached_weights_are_never_downloaded(torch_home: Path) -> None:
    place_weights("mobilenet_v3_small")  # download_url_to_file raises: it must not be called
    check_weights(ModelSpec(name="mobilenet_v3_small", weights="imagenet"))
    assert weights_mod.download(["mobilenet_v3_small"]) == [
        cache_path(imagenet_weights("mobilenet_v3_small"))
    ]


def test_downloads_are_checked_against_the_hash_in_the_file_name(
    torch_home: Path, tmp_path: Path
) -> None:
    # Served from a file: URL (torch's downloader reads those too), named as torchvision names
    # its files: the first hex digits of the SHA-256 after the last dash.
    content = b"weights" * 1000
    digest = hashlib.sha256(content).hexdigest()[:8]
    served = tmp_path / "served"
    served.mkdir()
    good = served / f"tiny-{digest}.pth"
    good.write_bytes(content)
    bad = served / "tiny-00000000.pth"
    bad.write_bytes(content)

    path = fetch(cast(Any, SimpleNamespace(url=good.as_uri())))
    assert path == torch_home / "hub" / "checkpoints" / good.name
    assert path.read_bytes() == content
    with pytest.raises(ConfigError, match=r"invalid hash value.*place that file at") as info:
        fetch(cast(Any, SimpleNamespace(url=bad.as_uri())))
    assert str(torch_home / "hub" / "checkpoints" / bad.name) in str(info.value)
    # Nothing half-written or unchecked is left in the cache (the lock file is all).
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == sorted([good.name, f"{good.name}.lock", f"{bad.name}.lock"])


def test_models_without_torchvision_weights_refuse_imagenet() -> None:
    with pytest.raises(ConfigError, match="no torchvision weights"):
        train_config_from_dict(
            {"train": {"model": {"name": "small_cnn", "weights": "imagenet"}}}, "c"
        )


def test_cli_models_lists_and_download_fails_in_one_line(
    torch_home: Path, run_cli: object
) -> None:
    place_weights("resnet18")
    code, out, _ = run_cli("models")  # type: ignore[operator]
    assert code == 0
    row = next(line for line in out.splitlines() if " resnet18 " in line)
    assert "11.7M" in row and "yes" in row
    code, _, err = run_cli("models", "download", "resnet34")  # type: ignore[operator]
    assert code == 2
    assert err.strip().startswith("error: ") and err.strip().count("\n") == 0
    assert "resnet34-" in err


def test_cli_models_download_into_a_dir(
    torch_home: Path, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    folder = tmp_path / "baked"
    weights = imagenet_weights("resnet18")
    cached = cache_path(weights, folder)
    assert cached == folder / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(tvm.resnet18(weights=None).state_dict(), cached)
    # Already in DIR: nothing is downloaded (there is no network), the path is printed.
    code, out, err = run_cli("models", "download", "resnet18", "--dir", folder)
    assert code == 0, err
    assert out.strip() == str(cached)
    # Not in DIR: one line naming the URL and the file's place in DIR, not in TORCH_HOME.
    missing = imagenet_weights("resnet34")
    code, _, err = run_cli("models", "download", "resnet34", "--dir", folder)
    assert code == 2
    assert err.startswith("error: ") and err.strip().count("\n") == 0
    assert missing.url in err and str(cache_path(missing, folder)) in err
    assert not torch_home.exists()


# ---------------------------------------------------------------------------------------------
# Batch norm at evaluation


def test_slow_statistics_average_each_epoch() -> None:
    model = tvm.mobilenet_v3_small(weights=None, num_classes=3)
    model.train()
    layers = trainable_layers(model)
    # Momentum 0.01: 10 steps leave 90 % of the old values, 400 steps 1.8 %.
    assert slow_layers(layers, 10) == layers and slow_layers(layers, 400) == []
    assert slow_layers(trainable_layers(tvm.resnet18(weights=None)), 30) == []  # momentum 0.1
    x = torch.randn(8, 3, 32, 32) * 3 + 2
    with epoch_averaged(layers), torch.no_grad():
        model(x[:4])
        model(x[4:])
    first = layers[0]
    assert first.momentum == 0.01  # restored
    with torch.no_grad():
        stem = model.features[0][0](x)
    # The equal average of the two batches' means: the mean over all eight images.
    assert torch.allclose(first.running_mean, stem.mean((0, 2, 3)), atol=1e-4)


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
    from hpo.train import fit

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
        model = fit(
            config, images[:, :height, :width], labels, idx, None, device=CPU, num_classes=3
        ).model
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
    from hpo.train import fit

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
    result = fit(config, images, labels, idx, idx, device=CPU, num_classes=3)
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
