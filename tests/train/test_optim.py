"""Optimizer and scheduler registries: every entry steps; warm-up; plateau follows the metric."""

from __future__ import annotations

import pytest
import torch

from hpo.config import OptimizerSpec, SchedulerSpec, train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.train.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    WARMUP_START_FACTOR,
    build_optimizer,
    build_schedule,
)


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(spec: SchedulerSpec, epochs: int, metrics: list[float] | None = None) -> list[float]:
    """The learning rate each epoch trains with, stepping like the loop does."""
    optimizer = _optimizer()
    schedule = build_schedule(spec, optimizer, epochs=epochs)
    out = []
    for epoch in range(epochs):
        out.append(schedule.lr)
        optimizer.step()
        schedule.step(metrics[epoch] if metrics else 0.5)
    return out


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_minimises_a_quadratic(name: str) -> None:
    weight = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    lr = 0.1 if name == "sgd" else 0.3
    optimizer = build_optimizer(OptimizerSpec(name=name, lr=lr, weight_decay=0.01), [weight])
    for _ in range(100):
        optimizer.zero_grad()
        (weight**2).sum().backward()
        optimizer.step()
    assert float(weight.detach().abs().max()) < 0.1
    assert optimizer.param_groups[0]["weight_decay"] == 0.01


def test_optimizer_parameters() -> None:
    assert OPTIMIZERS.parameters("sgd") == {
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    weight = torch.nn.Parameter(torch.zeros(2))
    sgd = build_optimizer(OptimizerSpec(name="sgd", nesterov=True, momentum=0.8), [weight])
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["momentum"] == 0.8
    adamw = build_optimizer(OptimizerSpec(name="adamw", beta2=0.99), [weight])
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["betas"] == (0.9, 0.99)
    with pytest.raises(ConfigError, match="nesterov: true needs momentum > 0"):
        build_optimizer(OptimizerSpec(name="sgd", nesterov=True, momentum=0.0), [weight])


@pytest.mark.parametrize(
    ("optimizer", "fragment"),
    [
        ({"name": "adamw", "lr": 0}, "train.optimizer: lr: Input should be greater than 0"),
        ({"name": "sgd", "momentum": 1.5}, "momentum"),
        ({"name": "adam", "weight_decay": -1}, "weight_decay"),
        ({"name": "rmsprop"}, "unknown optimizer 'rmsprop'; known: adam, adamw, sgd"),
        ({"name": "adam", "momentum": 0.9}, "unknown parameter of optimizer 'adam'"),
    ],
)
def test_bad_optimizer_settings_name_the_key(optimizer: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config_from_dict({"train": {"optimizer": optimizer}}, "cfg.yaml")
    assert fragment in str(info.value)


@pytest.mark.parametrize("warmup", [0, 2])
@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_every_scheduler_steps_per_epoch_with_optional_warmup(name: str, warmup: int) -> None:
    lrs = _lrs(SchedulerSpec(name=name, warmup_epochs=warmup), epochs=6, metrics=[0.5] * 6)
    assert len(lrs) == 6 and all(0 <= lr <= 1.0 for lr in lrs)
    if warmup:
        assert lrs[0] == pytest.approx(WARMUP_START_FACTOR)
        assert lrs[1] == pytest.approx((WARMUP_START_FACTOR + 1) / 2)
        assert lrs[2] == pytest.approx(1.0)  # the main schedule starts at the full rate
    else:
        assert lrs[0] == pytest.approx(1.0)


def test_step_schedule() -> None:
    lrs = _lrs(SchedulerSpec(name="step", step_size=2, gamma=0.5), epochs=6)
    assert lrs == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.25, 0.25])


def test_cosine_t_max_defaults_to_the_run_after_warmup() -> None:
    lrs = _lrs(SchedulerSpec(name="cosine", eta_min=0.1), epochs=4)
    assert lrs == pytest.approx([1.0, 0.8682, 0.55, 0.2318], abs=1e-4)
    warm = _lrs(SchedulerSpec(name="cosine", warmup_epochs=2), epochs=6)
    assert warm[2:] == pytest.approx([1.0, 0.8536, 0.5, 0.1464], abs=1e-4)
    fixed = _lrs(SchedulerSpec(name="cosine", T_max=2), epochs=3)
    assert fixed == pytest.approx([1.0, 0.5, 0.0], abs=1e-6)


def test_plateau_lowers_the_rate_when_macro_f1_stalls() -> None:
    spec = SchedulerSpec(name="plateau", factor=0.5, patience=1)
    improving = _lrs(spec, epochs=5, metrics=[0.1, 0.2, 0.3, 0.4, 0.5])
    assert improving == [1.0] * 5
    stalled = _lrs(spec, epochs=6, metrics=[0.3, 0.2, 0.2, 0.2, 0.2, 0.2])
    # Best 0.3 at epoch 0; two epochs without improvement (patience 1) halve the rate.
    assert stalled == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_plateau_warmup_ignores_the_metric_until_it_ends() -> None:
    spec = SchedulerSpec(name="plateau", factor=0.5, patience=0, warmup_epochs=2)
    lrs = _lrs(spec, epochs=5, metrics=[0.9, 0.1, 0.5, 0.4, 0.3])
    assert lrs == pytest.approx([0.01, 0.505, 1.0, 1.0, 0.5])


def test_plateau_needs_a_metric() -> None:
    schedule = build_schedule(SchedulerSpec(name="plateau"), _optimizer(), epochs=3)
    assert schedule.needs_metric
    with pytest.raises(ValueError, match="needs a metric"):
        schedule.step(None)
    assert not build_schedule(SchedulerSpec(name="step"), _optimizer(), epochs=3).needs_metric


@pytest.mark.parametrize(
    ("scheduler", "fragment"),
    [
        ({"name": "step", "gamma": 0}, "train.scheduler: gamma"),
        ({"name": "plateau", "factor": 1.0}, "factor"),
        ({"name": "cosine", "T_max": 0}, "T_max"),
        ({"name": "cosine", "warmup_epochs": -1}, "train.scheduler.warmup_epochs"),
        ({"name": "onecycle"}, "unknown scheduler 'onecycle'; known: constant, cosine"),
    ],
)
def test_bad_scheduler_settings_name_the_key(scheduler: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config_from_dict({"train": {"scheduler": scheduler}}, "cfg.yaml")
    assert fragment in str(info.value)
