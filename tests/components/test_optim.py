"""Optimizer and scheduler declarations: parameters, bounds and the schedulers' facts."""

from __future__ import annotations

import pytest

from hpo.components import OPTIMIZERS, SCHEDULERS, SchedulerInfo
from hpo.exceptions import ConfigError

from .helpers import run_without_torch


def test_the_optimizers_and_their_defaults() -> None:
    assert OPTIMIZERS.names() == ["adam", "adamw", "sgd"]
    assert OPTIMIZERS.parameters("sgd") == {
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    assert OPTIMIZERS.parameters("adamw")["weight_decay"] == 1e-4
    with pytest.raises(ConfigError, match=r"^o\.lr: "):
        OPTIMIZERS.validate("adam", {"lr": 0.0}, where="o")
    with pytest.raises(ConfigError, match=r"^o\.beta1: "):
        OPTIMIZERS.validate("adam", {"beta1": 1.0}, where="o")


@pytest.mark.parametrize(
    ("name", "info"),
    [
        ("constant", SchedulerInfo()),
        ("step", SchedulerInfo()),
        ("cosine", SchedulerInfo()),
        ("plateau", SchedulerInfo(needs_metric=True)),
        ("onecycle", SchedulerInfo(step="batch", own_warmup=True)),
        ("warmup_cosine", SchedulerInfo(step="batch")),
    ],
)
def test_what_callers_must_know_about_each_scheduler(name: str, info: SchedulerInfo) -> None:
    assert SCHEDULERS.info(name) == info


def test_scheduler_parameters_are_checked() -> None:
    assert SCHEDULERS.parameters("constant") == {}
    assert SCHEDULERS.validate("cosine", {}) == {"T_max": None, "eta_min": 0.0}
    with pytest.raises(ConfigError, match=r"^s\.step_size: "):
        SCHEDULERS.validate("step", {"step_size": 0}, where="s")
    with pytest.raises(ConfigError, match=r"^s\.anneal_strategy: "):
        SCHEDULERS.validate("onecycle", {"anneal_strategy": "exp"}, where="s")


def test_validating_an_optimizer_and_a_scheduler_imports_no_torch() -> None:
    run_without_torch(
        "from hpo.components import OPTIMIZERS, SCHEDULERS",
        "assert OPTIMIZERS.validate('sgd', {'lr': 0.1})['lr'] == 0.1",
        "assert SCHEDULERS.info('onecycle').own_warmup",
    )
