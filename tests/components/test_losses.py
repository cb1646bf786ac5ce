"""Loss declarations: names, parameters and their bounds, validated without torch."""

from __future__ import annotations

import pytest

from hpo.components import LOSSES
from hpo.exceptions import ConfigError

from .helpers import run_without_torch


def test_the_losses_and_their_defaults() -> None:
    assert LOSSES.names() == ["cross_entropy", "f1", "focal", "label_smoothing"]
    assert LOSSES.parameters("cross_entropy") == {"weighting": "none"}
    assert LOSSES.parameters("focal") == {"gamma": 2.0, "weighting": "none"}
    assert LOSSES.parameters("label_smoothing") == {"smoothing": 0.1, "weighting": "none"}
    assert LOSSES.parameters("f1") == {"ce_weight": 0.0}


@pytest.mark.parametrize(
    ("name", "params", "key"),
    [
        ("focal", {"gamma": 11.0}, "gamma"),
        ("label_smoothing", {"smoothing": 1.0}, "smoothing"),
        ("cross_entropy", {"weighting": "log"}, "weighting"),
        ("f1", {"ce_weight": -1.0}, "ce_weight"),
    ],
)
def test_out_of_range_parameters_name_the_key(name: str, params: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^train\.loss\.{key}: "):
        LOSSES.validate(name, params, where="train.loss")


def test_validating_a_loss_imports_no_torch() -> None:
    run_without_torch(
        "from hpo.components import LOSSES",
        "assert LOSSES.validate('focal', {'weighting': 'sqrt_inverse'})['gamma'] == 2.0",
    )
