"""The loop: it learns, stops on a NaN loss or when told, accumulates, mixes, repeats."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hpo.config import AugmentConfig
from hpo.exceptions import DataError, TrainingError
from hpo.train import EpochResult, fit, predict_proba
from hpo.train import loop as loop_module
from hpo.train.loop import _mix
from hpo.train.losses import LOSSES
from hpo.train.optim import OPTIMIZERS, SCHEDULERS

from .helpers import CPU, MakeConfig

Data = tuple[np.ndarray, np.ndarray]
TRAIN, VAL = np.arange(72), np.arange(72, 96)


def test_fit_learns_and_reports_every_epoch(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    seen: list[EpochResult] = []
    result = fit(
        make_config(**{"train.epochs": 4}),
        images,
        labels,
        TRAIN,
        VAL,
        device=CPU,
        num_classes=3,
        on_epoch_end=seen.append,
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
    result = fit(
        make_config(**{"train.epochs": 1}), images, labels, TRAIN, None, device=CPU, num_classes=3
    )
    assert set(result.metrics) == {"train_loss"}
    assert result.val_pred is None and result.per_class_f1 == []
    assert result.history[0].macro_f1 is None and result.history[0].val_loss is None


def test_mask_factors_are_reported(make_config: MakeConfig) -> None:
    from .helpers import learnable_data

    images, labels = learnable_data(n=72, num_classes=18)
    result = fit(
        make_config(**{"train.epochs": 1}),
        images,
        labels,
        np.arange(54),
        np.arange(54, 72),
        device=CPU,
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
        fit(
            config,
            images,
            labels,
            TRAIN,
            VAL,
            device=CPU,
            num_classes=3,
            on_epoch_end=calls.append,
        )
    assert "lower learning rate" in str(info.value)
    assert calls == []  # nothing is reported from a broken epoch


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
        fit(
            make_config(),
            images,
            labels,
            TRAIN,
            VAL,
            device=CPU,
            num_classes=3,
            on_epoch_end=prune_at_second_epoch,
        )
    assert calls == [1, 2]


def test_on_epoch_end_false_stops_there_with_that_epochs_results(
    make_config: MakeConfig, learnable: Data
) -> None:
    images, labels = learnable
    config = make_config(**{"train.epochs": 3})
    whole = fit(config, images, labels, TRAIN, VAL, device=CPU, num_classes=3)
    cut = fit(
        config,
        images,
        labels,
        TRAIN,
        VAL,
        device=CPU,
        num_classes=3,
        on_epoch_end=lambda r: r.epoch < 2,  # False after epoch 2: stop there
    )
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
    result = fit(config, images, labels, TRAIN, VAL, device=CPU, num_classes=3)
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
            result = fit(config, images, labels, np.arange(32), None, device=CPU, num_classes=3)
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
    result = fit(config, images, labels, TRAIN, VAL, device=CPU, num_classes=3)
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
    runs = [fit(config, images, labels, TRAIN, VAL, device=CPU, num_classes=3) for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    strip = [[(r.train_loss, r.val_loss, r.macro_f1, r.lr) for r in run.history] for run in runs]
    assert strip[0] == strip[1]
    other = fit(
        make_config(**{"train.epochs": 2, "train.seed": 1, "train.augment.mixup_alpha": 0.2}),
        images,
        labels,
        TRAIN,
        VAL,
        device=CPU,
        num_classes=3,
    )
    assert other.history[0].train_loss != runs[0].history[0].train_loss


def test_read_only_memmap_images(make_config: MakeConfig, learnable: Data, tmp_path: Any) -> None:
    images, labels = learnable
    path = tmp_path / "images.npy"
    np.save(path, images)
    mapped = np.load(path, mmap_mode="r")
    result = fit(
        make_config(**{"train.epochs": 1}), mapped, labels, TRAIN, VAL, device=CPU, num_classes=3
    )
    assert np.isfinite(result.metrics["train_loss"])
    probs = predict_proba(result.model, mapped, device=CPU, tta=True)
    assert probs.shape == (96, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_bad_inputs_are_data_errors(make_config: MakeConfig, learnable: Data) -> None:
    images, labels = learnable
    with pytest.raises(DataError, match=r"labels must lie in 0..1"):
        fit(make_config(), images, labels, TRAIN, VAL, device=CPU, num_classes=2)
    with pytest.raises(DataError, match="no training samples"):
        fit(make_config(), images, labels, np.array([], dtype=int), VAL, device=CPU, num_classes=3)


def test_predict_proba_tta_averages_the_mirror_image(
    make_config: MakeConfig, learnable: Data
) -> None:
    images, labels = learnable
    model = fit(
        make_config(**{"train.epochs": 1}), images, labels, TRAIN, None, device=CPU, num_classes=3
    ).model
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
    result = fit(
        config, images, labels, TRAIN, VAL if validate else None, device=CPU, num_classes=3
    )
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
    result = fit(config, images, labels, TRAIN, VAL, device=CPU, num_classes=3)
    assert all(np.isfinite(r.train_loss) and np.isfinite(r.val_loss or 0) for r in result.history)
