"""Optimizer and scheduler registries: every entry steps; warm-up; plateau follows the metric."""

from __future__ import annotations

import itertools
import math

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


def _lrs(
    spec: SchedulerSpec,
    epochs: int,
    metrics: list[float] | None = None,
    *,
    steps_per_epoch: int = 1,
    per_batch: bool = False,
) -> list[float]:
    """The learning rate each epoch (or each batch) trains with, stepping like the loop does."""
    optimizer = _optimizer()
    schedule = build_schedule(spec, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch)
    out = []
    for epoch in range(epochs):
        if not per_batch:
            out.append(schedule.lr)
        for _ in range(steps_per_epoch):
            if per_batch:
                out.append(schedule.lr)
            optimizer.step()
            schedule.batch_end()
        schedule.epoch_end(metrics[epoch] if metrics else 0.5)
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
def test_every_scheduler_steps_in_its_unit_with_optional_warmup(name: str, warmup: int) -> None:
    if warmup and SCHEDULERS.info(name).own_warmup:
        with pytest.raises(ValueError, match="warms up by itself"):
            SchedulerSpec(name=name, warmup_epochs=warmup)
        return
    per_epoch = 3 if SCHEDULERS.info(name).step == "batch" else 1
    spec = SchedulerSpec(name=name, warmup_epochs=warmup)
    lrs = _lrs(spec, epochs=6, metrics=[0.5] * 6, steps_per_epoch=3, per_batch=True)
    assert len(lrs) == 18 and all(0 <= lr <= 1.0 for lr in lrs)
    # The rate changes only where the entry's unit says it steps.
    changes = {i for i in range(1, 18) if lrs[i] != pytest.approx(lrs[i - 1])}
    if per_epoch == 1:
        assert changes <= {3, 6, 9, 12, 15}
    main_start = _lrs(SchedulerSpec(name=name), epochs=4, steps_per_epoch=3, per_batch=True)[0]
    if warmup:
        ticks = warmup * per_epoch  # warm-up ticks in the entry's unit
        first = [lrs[i * 3 // per_epoch] for i in range(ticks + 1)]
        assert first[0] == pytest.approx(WARMUP_START_FACTOR)
        assert first[1] == pytest.approx(WARMUP_START_FACTOR + (1 - WARMUP_START_FACTOR) / ticks)
        # After the warm-up the main schedule starts where it starts without one.
        assert lrs[warmup * 3] == pytest.approx(main_start)
    else:
        assert lrs[0] == pytest.approx(main_start)


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
        schedule.epoch_end(None)
    assert not build_schedule(SchedulerSpec(name="step"), _optimizer(), epochs=3).needs_metric


def test_onecycle_steps_per_batch_over_the_whole_run() -> None:
    spec = SchedulerSpec(name="onecycle", pct_start=0.25, div_factor=10, final_div_factor=100)
    lrs = _lrs(spec, epochs=4, steps_per_epoch=5, per_batch=True)
    assert lrs[0] == pytest.approx(0.1)  # lr / div_factor
    peak = max(range(20), key=lambda i: lrs[i])
    assert 3 <= peak <= 6 and lrs[peak] == pytest.approx(1.0, abs=0.05)
    assert lrs[-1] < 0.01  # annealed towards lr / (div_factor * final_div_factor)
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(lrs[peak:]))


def test_warmup_cosine_rises_per_batch_then_anneals() -> None:
    spec = SchedulerSpec(name="warmup_cosine", warmup_epochs=1)
    lrs = _lrs(spec, epochs=3, steps_per_epoch=4, per_batch=True)
    assert lrs[:5] == pytest.approx([0.01, 0.2575, 0.505, 0.7525, 1.0])
    assert all(b < a for a, b in itertools.pairwise(lrs[4:]))
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))


@pytest.mark.parametrize(
    ("scheduler", "fragment"),
    [
        ({"name": "step", "gamma": 0}, "train.scheduler: gamma"),
        ({"name": "plateau", "factor": 1.0}, "factor"),
        ({"name": "cosine", "T_max": 0}, "T_max"),
        ({"name": "cosine", "warmup_epochs": -1}, "train.scheduler.warmup_epochs"),
        ({"name": "cyclic"}, "unknown scheduler 'cyclic'; known: constant, cosine"),
        ({"name": "onecycle", "pct_start": 1.5}, "train.scheduler: pct_start"),
    ],
)
def test_bad_scheduler_settings_name_the_key(scheduler: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config_from_dict({"train": {"scheduler": scheduler}}, "cfg.yaml")
    assert fragment in str(info.value)
