"""Model registry: every entry builds with a head sized to the classes; local weights; freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from hpo.config import ModelSpec
from hpo.exceptions import ConfigError
from hpo.train.models import MODELS, build_model, head_name, set_backbone_trainable

from .helpers import MakeConfig, learnable_data, tiny_fit

CPU = torch.device("cpu")


# The hand-written entries (own parameters or no torchvision weights); every torchvision
# family is covered by tests/train/test_backbones.py.
HAND_WRITTEN = [
    n for n in MODELS.names() if MODELS.info(n).torchvision is None or MODELS.parameters(n)
]


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_every_model_outputs_one_logit_per_class(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(name=name), num_classes=18)
    # The registry's info names the head; it is the layer that outputs the classes.
    head = dict(model.named_modules())[head_name(name)]
    assert isinstance(head, nn.Linear)
    assert head.out_features == 18
    x = torch.randn(2, 3, 32, 32)
    if name == "small_cnn":
        model.train()
        out = model(x)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
    else:
        # Big models: forward only, in eval mode, to keep the suite fast.
        model.eval()
        with torch.inference_mode():
            out = model(x)
    assert out.shape == (2, 18)
    assert torch.isfinite(out).all()


def test_entries_have_their_own_parameters() -> None:
    assert MODELS.parameters("small_cnn") == {"width": 16, "grid": 4, "dropout": 0.0}
    assert MODELS.parameters("efficientnet_b3") == {"dropout": 0.3}
    assert MODELS.parameters("shufflenet_v2") == {"size": "x1_0"}
    assert MODELS.parameters("resnet18") == {}
    pooled = MODELS.create("small_cnn", num_classes=4, width=8, grid=1)  # global pooling
    assert pooled(torch.randn(2, 3, 40, 24)).shape == (2, 4)
    model = build_model(ModelSpec(name="shufflenet_v2", size="x0_5"), num_classes=4).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"name": "resnet9"}, "unknown model 'resnet9'; known: alexnet"),
        ({"name": "small_cnn", "dropout": 1.5}, "dropout"),
        ({"name": "resnet18", "width": 3}, "unknown parameter of model 'resnet18'"),
        ({"name": "shufflenet_v2", "size": "x3"}, "size"),
    ],
)
def test_bad_model_settings_are_config_errors(spec: dict[str, object], fragment: str) -> None:
    from hpo.config import train_config_from_dict

    with pytest.raises(ConfigError, match=r"train\.model") as info:
        train_config_from_dict({"train": {"model": spec}}, "cfg.yaml")
    assert fragment in str(info.value)


def test_local_weights_load_and_the_head_is_resized(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = MODELS.create("small_cnn", num_classes=1000, width=8)
    path = tmp_path / "pretrained.pt"
    torch.save(source.state_dict(), path)

    model = build_model(ModelSpec(name="small_cnn", width=8, weights=path), num_classes=18)
    got, want = model.state_dict(), source.state_dict()
    head = head_name("small_cnn")
    for key, value in want.items():
        if key.startswith(head + "."):
            assert got[key].shape[0] == 18  # fresh head of our size
        else:
            assert torch.equal(got[key], value), key


def test_wrapped_and_prefixed_checkpoints_load(tmp_path: Path) -> None:
    source = MODELS.create("small_cnn", num_classes=5, width=8)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    model = build_model(ModelSpec(name="small_cnn", width=8, weights=path), num_classes=5)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(ConfigError, match="file not found") as info:
        build_model(ModelSpec(name="resnet18", weights=path), num_classes=18)
    assert str(path) in str(info.value)
    assert "train.model.weights" in str(info.value)


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save(MODELS.create("small_cnn", num_classes=18, width=16).state_dict(), path)
    with pytest.raises(ConfigError, match="does not fit model 'small_cnn'"):
        build_model(ModelSpec(name="small_cnn", width=8, weights=path), num_classes=18)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable state dict"):
        build_model(ModelSpec(name="small_cnn", weights=tmp_path / "junk.pt"), num_classes=18)


def test_set_backbone_trainable_freezes_all_but_the_head() -> None:
    model = MODELS.create("resnet18", num_classes=3)
    model.train()
    set_backbone_trainable(model, head_name("resnet18"), False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not model.bn1.training  # frozen batch norm keeps its statistics
    model.train()
    set_backbone_trainable(model, head_name("resnet18"), True)
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_backbone_does_not_change_during_fit(make_config: MakeConfig) -> None:
    images, labels = learnable_data(n=48)
    idx = torch.arange(48).numpy()
    torch.manual_seed(0)
    config = make_config(**{"train.model.freeze_backbone_epochs": 2, "train.epochs": 2})
    # The initial weights are what fit builds from the same seed.
    with torch.random.fork_rng():
        torch.manual_seed(config.train.seed)
        initial = build_model(config.train.model, 3).state_dict()
    result = tiny_fit(config, (images, labels), idx, None)
    final = result.model.state_dict()
    head = head_name(config.train.model.name)
    for key, value in initial.items():
        if key.startswith(head + "."):
            assert not torch.equal(final[key], value), key
        else:
            assert torch.equal(final[key], value), key  # weights and batch-norm statistics
