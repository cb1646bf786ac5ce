"""The loop: it learns, stops on a NaN loss or when told, accumulates, mixes, repeats."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from hpo.config import AugmentConfig
from hpo.exceptions import DataError, TrainingError
from hpo.train import EpochResult, predict_proba, resident
from hpo.train import loop as loop_module
from hpo.train.loop import _mix, amp_dtype, optimizer_step
from hpo.train.losses import LOSSES
from hpo.train.optim import OPTIMIZERS, SCHEDULERS, build_schedule

from .helpers import CPU, TRAIN, VAL, MakeConfig, tiny_fit

Data = tuple[np.ndarray, np.ndarray]


def test_fit_learns_and_reports_every_epoch(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    seen: list[EpochResult] = []
    result = tiny_fit(
        make_config(**{"train.epochs": 4}), (images, labels), on_epoch_end=seen.append
    )
    assert seen == result.history
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert result.history[0].lr == pytest.approx(0.01)
    assert result.history[-1].lr < result.history[0].lr  # cosine
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.metrics["macro_f1"] > 0.9
    assert set(result.metrics) == {"train_loss", "val_loss", "macro_f1", "accuracy"}
    assert result.val_pred is not None and result.val_probs is not None
    assert result.val_probs.shape == (24, 3)
    np.testing.assert_array_equal(result.val_pred, result.val_probs.argmax(1))
    assert len(result.per_class_f1) == 3 and np.array(result.confusion).sum() == 24
    assert not result.model.training
    # The returned model predicts what the last evaluation saw.
    probs = predict_proba(result.model, images[VAL], device=CPU, batch_size=10)
    np.testing.assert_allclose(probs, result.val_probs, atol=1e-5)


def test_fit_without_validation(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    result = tiny_fit(make_config(**{"train.epochs": 1}), (images, labels), TRAIN, None)
    assert set(result.metrics) == {"train_loss"}
    assert result.val_pred is None and result.per_class_f1 == []
    assert result.history[0].macro_f1 is None and result.history[0].val_loss is None


def test_mask_factors_are_reported(make_config: MakeConfig) -> None:
    from .helpers import learnable_data

    images, labels = learnable_data(n=72, num_classes=18)
    result = tiny_fit(
        make_config(**{"train.epochs": 1}),
        (images, labels),
        np.arange(54),
        np.arange(54, 72),
        num_classes=18,
        mask_factors=True,
    )
    assert {"f1_mask", "f1_gender", "f1_age"} <= set(result.metrics)


def test_nan_loss_stops_with_a_clear_reason(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    config = make_config(**{"train.optimizer": {"name": "sgd", "lr": 1e30}})
    calls: list[EpochResult] = []
    with pytest.raises(
        TrainingError, match=r"loss became (nan|infinite) at epoch 1/3, step \d+/"
    ) as info:
        tiny_fit(config, (images, labels), on_epoch_end=calls.append)
    assert "lower learning rate" in str(info.value)
    assert calls == []  # nothing is reported from a broken epoch


def test_a_nan_validation_loss_stops_with_a_clear_reason(
    make_config: MakeConfig, learnable: Data
) -> None:
    # SGD at lr 100 leaves finite training losses (7.5e12 in epoch 1) and weights whose
    # evaluation is NaN: no epoch of such a fit may be reported or scored.
    config = make_config(**{"train.optimizer": {"name": "sgd", "lr": 100.0}})
    calls: list[EpochResult] = []
    with pytest.raises(
        TrainingError, match=r"^validation loss became nan at epoch 1/3 \(lr 100\)"
    ) as info:
        tiny_fit(config, learnable, on_epoch_end=calls.append)
    assert "lower learning rate" in str(info.value)
    assert calls == []


def test_on_epoch_end_exceptions_propagate(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable

    class Pruned(Exception):
        pass

    calls: list[int] = []

    def prune_at_second_epoch(result: EpochResult) -> None:
        calls.append(result.epoch)
        if result.epoch == 2:
            raise Pruned

    with pytest.raises(Pruned):
        tiny_fit(make_config(), (images, labels), on_epoch_end=prune_at_second_epoch)
    assert calls == [1, 2]


def test_on_epoch_end_false_stops_there_with_that_epochs_results(
    make_config: MakeConfig, learnable: Data
) -> None:
    images, labels = learnable
    config = make_config(**{"train.epochs": 3})
    whole = tiny_fit(config, (images, labels))
    # on_epoch_end is False after epoch 2: stop there.
    cut = tiny_fit(config, (images, labels), on_epoch_end=lambda r: r.epoch < 2)
    assert cut.stopped and not whole.stopped
    timeless = [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in cut.history]
    assert timeless == [
        {k: v for k, v in r.to_dict().items() if k != "seconds"} for r in whole.history[:2]
    ]
    # The last epoch's validation results, as its report saw them: nothing recomputed.
    assert cut.metrics["macro_f1"] == cut.history[-1].macro_f1
    assert cut.val_pred is not None and len(cut.per_class_f1) == 3
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (labels[VAL], cut.val_pred), 1)
    assert cut.confusion == expected.tolist()


def test_gradient_accumulation_steps_once_per_group(
    make_config: MakeConfig, learnable: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, labels = learnable
    steps = 0
    original = loop_module.build_optimizer

    def counting(*args: Any, **kwargs: Any) -> torch.optim.Optimizer:
        optimizer = original(*args, **kwargs)

        def count(*_: Any) -> None:
            nonlocal steps
            steps += 1

        optimizer.register_step_post_hook(count)
        return optimizer

    monkeypatch.setattr(loop_module, "build_optimizer", counting)
    # 72 samples in batches of 8: 9 micro-batches, groups of 4 -> 4 + 4 + 1 -> 3 steps.
    config = make_config(**{"train.batch_size": 8, "train.grad_accum_steps": 4, "train.epochs": 2})
    result = tiny_fit(config, (images, labels))
    assert steps == 2 * 3
    assert np.isfinite(result.history[-1].train_loss)


def test_accumulated_gradients_equal_one_big_batch(make_config: MakeConfig) -> None:
    """Without batch norm or augmentation, 4 x 8 accumulated is one step on 32 samples."""
    from .helpers import learnable_data

    images, labels = learnable_data(n=32)
    weights = []
    for batch_size, accum in ((32, 1), (8, 4)):
        config = make_config(
            **{
                "train.batch_size": batch_size,
                "train.grad_accum_steps": accum,
                "train.epochs": 1,
                "train.augment": {"hflip": False, "crop_scale": 1.0, "color_jitter": 0.0},
                "train.optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.0},
            }
        )
        # Evaluation-mode batch norm makes the model a fixed function of its weights.
        torch.manual_seed(0)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(loop_module._Fit, "_loss", _loss_with_frozen_bn)
            result = tiny_fit(config, (images, labels), np.arange(32), None)
        weights.append(torch.cat([p.detach().flatten() for p in result.model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-4, atol=1e-5)


_original_loss = loop_module._Fit._loss


def _loss_with_frozen_bn(self: Any, idx: torch.Tensor) -> torch.Tensor:
    self.model.eval()
    return _original_loss(self, idx)


@pytest.mark.parametrize(
    "augment",
    [
        {"mixup_alpha": 0.4},
        {"cutmix_alpha": 1.0},
        {"mixup_alpha": 0.2, "cutmix_alpha": 1.0},
    ],
)
def test_mixup_and_cutmix_train(
    make_config: MakeConfig, learnable: Data, augment: dict[str, float]
) -> None:
    images, labels = learnable
    config = make_config(**{f"train.augment.{k}": v for k, v in augment.items()})
    result = tiny_fit(config, (images, labels))
    assert all(np.isfinite(r.train_loss) for r in result.history)
    assert result.metrics["macro_f1"] > 0.5


def test_mix_blends_images_and_reports_the_label_weight() -> None:
    rng = np.random.default_rng(0)
    x = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    mixed, lam = _mix(x, AugmentConfig(mixup_alpha=1.0), rng)
    assert lam is not None and 0 <= lam <= 1
    torch.testing.assert_close(mixed[0], torch.full((3, 8, 8), 1 - lam))
    cut, lam = _mix(x, AugmentConfig(cutmix_alpha=1.0), np.random.default_rng(3))
    assert lam is not None
    # The pasted box's area is exactly the partner's label weight.
    assert float(cut[0].mean()) == pytest.approx(1 - lam)
    same, none = _mix(x, AugmentConfig(), rng)
    assert same is x and none is None


def test_same_seed_same_history(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    config = make_config(**{"train.epochs": 2, "train.augment.mixup_alpha": 0.2})
    torch.manual_seed(123)
    state = torch.get_rng_state()
    runs = [tiny_fit(config, (images, labels)) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    strip = [[(r.train_loss, r.val_loss, r.macro_f1, r.lr) for r in run.history] for run in runs]
    assert strip[0] == strip[1]
    other = tiny_fit(
        make_config(**{"train.epochs": 2, "train.seed": 1, "train.augment.mixup_alpha": 0.2}),
        (images, labels),
    )
    assert other.history[0].train_loss != runs[0].history[0].train_loss


def test_read_only_memmap_images(make_config: MakeConfig, learnable: Data, tmp_path: Any) -> None:
    images, labels = learnable
    path = tmp_path / "images.npy"
    np.save(path, images)
    mapped = np.load(path, mmap_mode="r")
    result = tiny_fit(make_config(**{"train.epochs": 1}), (mapped, labels))
    assert np.isfinite(result.metrics["train_loss"])
    probs = predict_proba(result.model, mapped, device=CPU, tta=True)
    assert probs.shape == (96, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_bad_inputs_are_data_errors(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    with pytest.raises(DataError, match=r"labels must lie in 0..1"):
        tiny_fit(make_config(), (images, labels), num_classes=2)
    with pytest.raises(DataError, match="no training samples"):
        tiny_fit(make_config(), (images, labels), np.array([], dtype=int), VAL)


def test_predict_proba_tta_averages_the_mirror_image(
    make_config: MakeConfig, learnable: Data
) -> None:
    images, labels = learnable
    model = tiny_fit(make_config(**{"train.epochs": 1}), (images, labels), TRAIN, None).model
    plain = predict_proba(model, images[:8], device=CPU)
    mirrored = predict_proba(model, np.ascontiguousarray(images[:8, :, ::-1]), device=CPU)
    both = predict_proba(model, images[:8], device=CPU, tta=True)
    np.testing.assert_allclose(both, (plain + mirrored) / 2, atol=1e-6)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("scheduler", SCHEDULERS.names())
def test_every_scheduler_steps_in_fit(
    make_config: MakeConfig, learnable: Data, scheduler: str, validate: bool
) -> None:
    images, labels = learnable
    own_warmup = SCHEDULERS.info(scheduler).own_warmup
    warmup = 0 if own_warmup else 1
    config = make_config(**{"train.scheduler": {"name": scheduler, "warmup_epochs": warmup}})
    result = tiny_fit(config, (images, labels), TRAIN, VAL if validate else None)
    lrs = [r.lr for r in result.history]
    if own_warmup:  # onecycle: starts at lr / div_factor and never exceeds lr
        assert lrs[0] == pytest.approx(0.01 / 25) and max(lrs) <= 0.01 + 1e-9
    else:  # one epoch of warm-up (per batch or per epoch), then the main schedule at full rate
        assert lrs[0] == pytest.approx(0.01 * 0.01) and lrs[1] == pytest.approx(0.01)


@pytest.mark.parametrize("loss", LOSSES.names())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.names())
def test_every_loss_and_optimizer_trains_in_fit(
    make_config: MakeConfig, learnable: Data, loss: str, optimizer: str
) -> None:
    images, labels = learnable
    config = make_config(
        **{
            "train.loss": {"name": loss},
            "train.optimizer": {"name": optimizer, "lr": 0.05 if optimizer == "sgd" else 0.01},
            "train.epochs": 2,
        }
    )
    result = tiny_fit(config, (images, labels))
    assert all(np.isfinite(r.train_loss) and np.isfinite(r.val_loss or 0) for r in result.history)


# ---------------------------------------------------------------------------------------------
# The CUDA decisions that the CPU can check


@pytest.mark.parametrize(
    ("capability", "expected"),
    [((7, 0), torch.float16), ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
     ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)],
)  # fmt: skip
def test_amp_dtype_follows_the_trained_gpus_compute_capability(
    capability: tuple[int, int], expected: torch.dtype
) -> None:
    """V100 (7.0) and T4 (7.5) emulate bfloat16 slowly: float16 with a GradScaler there."""
    cuda = torch.device("cuda", 1)
    assert amp_dtype(cuda, capability=capability) == expected
    assert amp_dtype(cuda, False, capability=capability) is None
    assert amp_dtype(CPU, capability=capability) is None


def _sgd_with_schedule(make_config: MakeConfig) -> tuple[nn.Parameter, Any, Any]:
    config = make_config(**{"train.scheduler": {"name": "onecycle"}})  # steps per batch
    weight = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    schedule = build_schedule(config.train.scheduler, optimizer, epochs=3, steps_per_epoch=4)
    return weight, optimizer, schedule


def test_the_schedule_waits_when_the_grad_scaler_skips_a_step(make_config: MakeConfig) -> None:
    """float16 training: inf gradients make the GradScaler skip the optimizer step; the
    schedule must not advance either (warm-up and decay count real steps)."""
    weight, optimizer, schedule = _sgd_with_schedule(make_config)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    lr = schedule.lr
    scaler.scale((weight * torch.tensor([1.0, float("inf"), 1.0])).sum()).backward()
    assert optimizer_step(scaler, optimizer, schedule) is False
    assert torch.equal(weight.detach(), torch.ones(3)) and schedule.lr == lr
    assert scaler.get_scale() == 2.0**7  # the scaler backed off
    optimizer.zero_grad()
    scaler.scale(weight.sum()).backward()
    assert optimizer_step(scaler, optimizer, schedule) is True
    assert not torch.equal(weight.detach(), torch.ones(3)) and schedule.lr > lr


def test_without_a_scaler_every_step_steps_the_schedule(make_config: MakeConfig) -> None:
    weight, optimizer, schedule = _sgd_with_schedule(make_config)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    lr = schedule.lr
    weight.sum().backward()
    assert optimizer_step(scaler, optimizer, schedule) is True
    assert schedule.lr > lr


# ---------------------------------------------------------------------------------------------
# Progress through a callback; the images on the device once per process


def test_progress_is_told_of_every_step(make_config: MakeConfig, learnable: Data) -> None:
    calls: list[tuple[str, int, int]] = []
    config = make_config(**{"train.epochs": 2, "train.batch_size": 24})
    result = tiny_fit(config, learnable, progress=lambda *call: calls.append(call))
    assert calls == [(f"epoch {e}/2", done, 3) for e in (1, 2) for done in range(4)]
    calls.clear()
    predict_proba(
        result.model,
        learnable[0][:10],
        device=CPU,
        batch_size=4,
        progress=lambda *c: calls.append(c),
    )
    assert calls == [("predict", done, 3) for done in range(4)]


def test_two_fits_in_one_process_upload_the_images_once(
    make_config: MakeConfig, tmp_path: Any
) -> None:
    from .helpers import learnable_data

    images, labels = learnable_data(n=40)
    path = tmp_path / "images.npy"
    np.save(path, images)
    config = make_config(**{"train.epochs": 1})
    before = resident.stats()
    first = tiny_fit(
        config, (np.load(path, mmap_mode="r"), labels), np.arange(30), np.arange(30, 40)
    )
    # Another trial maps the same cache file again: the set on the device is reused.
    second = tiny_fit(
        config, (np.load(path, mmap_mode="r"), labels), np.arange(10, 40), np.arange(10)
    )
    after = resident.stats()
    assert (after.uploads - before.uploads, after.hits - before.hits) == (1, 1)
    assert first.metrics.keys() == second.metrics.keys()
