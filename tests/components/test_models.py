"""Model declarations: torchvision's facts per family, dropout defaults, no torch to validate."""

from __future__ import annotations

import pytest

from hpo.components import MODELS, ModelInfo
from hpo.components.models import DROPOUT, torchvision_info
from hpo.exceptions import ConfigError

from .helpers import run_without_torch


def test_the_torchvision_table_matches_the_installed_torchvision() -> None:
    import torchvision.models as tvm

    from hpo.components.models import HEADS, TORCHVISION_CLASSIFIERS

    installed = {
        name: (
            str(tvm.get_model_builder(name).__module__).rsplit(".", 1)[-1],
            int(tvm.get_model_weights(name).DEFAULT.meta["min_size"][0]),
        )
        for name in tvm.list_models(module=tvm)
    }
    assert installed == TORCHVISION_CLASSIFIERS
    assert {family for family, _ in installed.values()} == set(HEADS)


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        ("resnet18", {"head": "fc", "min_size": 1, "size_multiple": 1, "square": False}),
        ("vit_b_16", {"head": "heads.head", "size_multiple": 16, "square": True, "sized": True}),
        ("swin_t", {"head": "head", "min_size": 32}),
        ("maxvit_t", {"size_multiple": 224, "sized": True}),
        ("efficientnet_b0", {"head": "classifier.1", "cpu_channels_last": True}),
    ],
)
def test_torchvision_facts_by_family(name: str, facts: dict[str, object]) -> None:
    info = torchvision_info(name)
    assert info.torchvision == name and MODELS.info(name) == info
    assert {key: getattr(info, key) for key in facts} == facts


def test_hpo_models_and_dropout_defaults() -> None:
    assert MODELS.info("small_cnn") == ModelInfo(head="18", cpu_channels_last=True)
    assert MODELS.parameters("small_cnn") == {"width": 16, "grid": 4, "dropout": 0.0}
    for name, default in DROPOUT.items():
        assert MODELS.parameters(name) == {"dropout": default}
    assert MODELS.parameters("resnet18") == {}
    with pytest.raises(ConfigError, match="width"):
        MODELS.validate("small_cnn", {"width": 2})


def test_validating_a_model_imports_no_torch() -> None:
    run_without_torch(
        "from hpo.components import MODELS",
        "valid = MODELS.validate('small_cnn', {'width': 8})",
        "assert valid == {'width': 8, 'grid': 4, 'dropout': 0.0}, valid",
        "assert MODELS.info('vit_b_16').size_multiple == 16",
    )
