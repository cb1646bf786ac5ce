"""The training loop: fit one model on one split, evaluating every epoch; batch prediction.

The images are on the training device once per process, as uint8 (``hpo.train.resident``);
every batch is sliced, normalized and augmented there (``hpo.data.prepare_batch``), so an epoch
costs about what the model's own forward and backward passes cost: no DataLoader, no PIL, no
host copies per step. On CUDA the loop uses autocast (bfloat16 on GPUs of compute capability
8.0 and later, else float16 with a GradScaler) and channels_last, and reads values back from
the device once per epoch: losses are summed on the device, and a non-finite loss is recorded
there and reported at the end of the epoch. Progress goes to a callback; the CLI draws it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.components import MODELS
from hpo.config import AugmentConfig, TrainConfig
from hpo.exceptions import DataError, TrainingError
from hpo.train.batchnorm import epoch_averaged, slow_layers, trainable_layers
from hpo.train.device import use_channels_last
from hpo.train.losses import LOSSES
from hpo.train.metrics import classification_metrics
from hpo.train.models import build_model, head_name, set_backbone_trainable
from hpo.train.optim import Schedule, build_optimizer, build_schedule
from hpo.train.resident import resident_images

__all__ = [
    "EpochResult",
    "FitResult",
    "StepProgress",
    "amp_dtype",
    "decoding_progress",
    "fit",
    "optimizer_step",
    "predict_proba",
]


StepProgress = Callable[[str, int, int], None]
"""Called as ``progress(what, done, total)`` as a pass over batches goes on: ``what`` names the
pass (``epoch 2/8``, ``predict``), ``done`` of ``total`` batches are finished (0 when it
starts; ``done == total`` when it ends)."""


def decoding_progress(progress: StepProgress | None) -> Callable[[int, int], None] | None:
    """The data loader's ``advance(done, total)`` as the pass ``decoding images``."""
    if progress is None:
        return None
    return lambda done, total: progress("decoding images", done, total)


@dataclass(frozen=True)
class EpochResult:
    """What one epoch did. ``epoch`` counts from 1, as the console (``epoch 1/8``),
    ``metrics.json``, the trial attribute ``history``, plots and TensorBoard show it; validation
    fields are None without validation.

    ``lr`` is the learning rate the epoch trained with; ``seconds`` covers training and
    evaluation.
    """

    epoch: int
    train_loss: float
    val_loss: float | None
    macro_f1: float | None
    accuracy: float | None
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    """A trained model (in eval mode, on the training device) and how it got there.

    ``metrics`` holds the last epoch's ``train_loss`` and, with validation, ``val_loss``,
    ``macro_f1``, ``accuracy`` (and ``f1_mask``, ``f1_gender``, ``f1_age`` for the
    competition's labels); ``per_class_f1``, ``confusion``, ``val_pred`` (class indices) and
    ``val_probs`` (softmax, ``(N_val, C)``) are the last epoch's, in ``val_idx`` order.
    ``stopped``: ``on_epoch_end`` returned False, so ``history`` ends at the epoch it stopped
    after (the last epoch's results are those of that epoch, computed anyway for its report).
    """

    model: nn.Module
    history: list[EpochResult]
    metrics: dict[str, float]
    per_class_f1: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    val_pred: np.ndarray | None = None
    val_probs: np.ndarray | None = None
    seconds: float = 0.0
    stopped: bool = False


def amp_dtype(
    device: torch.device, enabled: bool = True, *, capability: tuple[int, int] | None = None
) -> torch.dtype | None:
    """The autocast dtype for ``device``: None (full precision) on the CPU or when disabled.

    On CUDA, bfloat16 where the GPU computes it natively (compute capability 8.0, Ampere, and
    later), else float16, which the loop pairs with a GradScaler. ``capability`` is that of
    ``device`` unless given. (``torch.cuda.is_bf16_supported()`` would ask about the current
    device, not ``device``, and counts emulated bfloat16, which is slow on V100 and T4.)
    """
    if not enabled or device.type != "cuda":
        return None
    if capability is None:
        capability = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if tuple(capability) >= (8, 0) else torch.float16


def optimizer_step(
    scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, schedule: Schedule
) -> bool:
    """Step ``optimizer`` (through ``scaler``), then ``schedule`` if the optimizer stepped.

    A float16 GradScaler skips the step when the gradients hold inf or NaN (and lowers its
    scale): the schedule then waits too, so warm-up and decay count real steps only. Returns
    whether the optimizer stepped.
    """
    if not scaler.is_enabled():
        optimizer.step()
        schedule.batch_end()
        return True
    # scaler.step has already read found_inf back from the device: get_scale adds no stall.
    before = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    stepped = scaler.get_scale() >= before
    if stepped:
        schedule.batch_end()
    return stepped


def fit(
    config: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None,
    *,
    device: torch.device,
    num_classes: int,
    on_epoch_end: Callable[[EpochResult], bool | None] | None = None,
    progress: StepProgress | None = None,
    mask_factors: bool = False,
) -> FitResult:
    """Train ``config.train``'s model on ``train_idx``, evaluating on ``val_idx`` every epoch.

    The run is repeatable for a given ``config.train.seed`` (model initialisation, shuffling,
    augmentation and dropout draw from generators seeded here; the caller's global random
    state is left as it was): bit for bit on the CPU, and on CUDA with deterministic kernels
    (``configure_backends(device, deterministic=True)``).

    Args:
        config: The training config (its ``data`` section is not read: the pixels are given).
        images: ``uint8 (N, H, W, 3)`` pixels of all samples (a read-only memmap is fine).
        labels: ``int (N,)`` class indices of all samples.
        train_idx: Positions of the training samples.
        val_idx: Positions of the validation samples, or None to train without validation.
        device: Where to train; ``images`` goes there once per process
            (:func:`hpo.train.resident.resident_images`) and must not change in place.
        num_classes: Number of classes (the model's outputs).
        on_epoch_end: Called with each epoch's result after its evaluation. Returning False
            stops training there: ``fit`` returns the model as that epoch left it, with
            ``stopped`` set (None or True goes on). An exception it raises propagates out of
            ``fit`` unchanged.
        progress: Told of each epoch's steps (:data:`StepProgress`).
        mask_factors: Labels are the competition's 18 classes: also report the macro-F1 of
            each factor (mask, gender, age).

    Raises:
        TrainingError: The training or validation loss became NaN or infinite, or the GPU
            lacks the memory for the images.
        DataError: No training samples, or labels outside ``0..num_classes-1``.
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.train.seed)
        return _Fit(
            config,
            images,
            labels,
            train_idx,
            val_idx,
            device=device,
            num_classes=num_classes,
            progress=progress,
            mask_factors=mask_factors,
        ).run(on_epoch_end)


class _Fit:
    """The state of one ``fit`` call; ``run`` reads top to bottom like the epoch loop it is."""

    def __init__(
        self,
        config: TrainConfig,
        images: np.ndarray,
        labels: np.ndarray,
        train_idx: np.ndarray,
        val_idx: np.ndarray | None,
        *,
        device: torch.device,
        num_classes: int,
        progress: StepProgress | None,
        mask_factors: bool,
    ) -> None:
        cfg = config.train
        self.cfg = cfg
        self.device = device
        self.num_classes = num_classes
        self.progress = progress
        self.mask_factors = mask_factors
        self.amp_dtype = amp_dtype(device, cfg.amp)
        self.channels_last = use_channels_last(
            device, MODELS.info(cfg.model.name).cpu_channels_last, cfg.channels_last
        )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # mixup/cutmix draws: host-side, no syncs

        train_idx = np.asarray(train_idx, dtype=np.int64)
        if len(train_idx) == 0:
            raise DataError("no training samples")
        self.y_train = _labels(labels, train_idx, device, num_classes)
        self.val_idx = None if val_idx is None else np.asarray(val_idx, dtype=np.int64)
        self.y_val_np: np.ndarray | None = None
        if self.val_idx is not None and len(self.val_idx) > 0:
            self.y_val = _labels(labels, self.val_idx, device, num_classes)
            self.y_val_np = np.asarray(labels[self.val_idx], dtype=np.int64)
        # The whole set stays on the device (once per process); batches index it there.
        self.images = resident_images(images, device)
        self.train_pos = torch.from_numpy(train_idx).to(device)
        if self.y_val_np is not None:
            self.val_pos = torch.from_numpy(self.val_idx).to(device)

        image_size = (int(images.shape[1]), int(images.shape[2]))
        self.model = build_model(cfg.model, num_classes, image_size).to(device)
        self.head = head_name(cfg.model.name)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        counts = np.bincount(np.asarray(labels[train_idx], dtype=np.int64), minlength=num_classes)
        self.criterion = LOSSES.create(
            cfg.loss.name, num_classes=num_classes, class_counts=counts.tolist(), **cfg.loss.params
        ).to(device)
        self.optimizer = build_optimizer(cfg.optimizer, self.model, self.head)
        batches = len(_batch_starts(len(self.y_train), cfg.batch_size))
        self.schedule = build_schedule(
            cfg.scheduler,
            self.optimizer,
            epochs=cfg.epochs,
            steps_per_epoch=math.ceil(batches / cfg.grad_accum_steps),
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)

    def run(self, on_epoch_end: Callable[[EpochResult], bool | None] | None) -> FitResult:
        start = time.perf_counter()
        history: list[EpochResult] = []
        scores: dict[str, Any] = {}
        probs: np.ndarray | None = None
        stopped = False
        for epoch in range(self.cfg.epochs):
            epoch_start = time.perf_counter()
            lr = self.schedule.lr
            train_loss = self.train_one_epoch(epoch)
            val_loss = None
            if self.y_val_np is not None:
                val_loss, probs = self.evaluate()
                if not np.isfinite(val_loss):  # diverged weights can still train on finite losses
                    self._raise_bad_loss(val_loss, epoch, validation=True)
                scores = classification_metrics(
                    self.y_val_np,
                    probs.argmax(1),
                    self.num_classes,
                    mask_factors=self.mask_factors,
                )
            macro_f1 = scores.get("macro_f1")
            # plateau watches validation macro-F1; without validation, the training loss.
            self.schedule.epoch_end(macro_f1 if macro_f1 is not None else -train_loss)
            result = EpochResult(
                epoch=epoch + 1,
                train_loss=train_loss,
                val_loss=val_loss,
                macro_f1=macro_f1,
                accuracy=scores.get("accuracy"),
                lr=lr,
                seconds=time.perf_counter() - epoch_start,
            )
            history.append(result)
            if on_epoch_end is not None and on_epoch_end(result) is False:
                stopped = True
                break
        self.model.eval()
        last = history[-1]
        metrics: dict[str, float] = {"train_loss": last.train_loss}
        if last.val_loss is not None:
            metrics["val_loss"] = last.val_loss
        metrics.update({k: float(v) for k, v in scores.items() if isinstance(v, float)})
        return FitResult(
            model=self.model,
            history=history,
            metrics=metrics,
            per_class_f1=scores.get("per_class_f1", []),
            confusion=scores.get("confusion", []),
            val_pred=None if probs is None else probs.argmax(1),
            val_probs=probs,
            seconds=time.perf_counter() - start,
            stopped=stopped,
        )

    def train_one_epoch(self, epoch: int) -> float:
        """One pass over the training samples; returns the mean training loss."""
        cfg, model = self.cfg, self.model
        model.train()
        freeze = cfg.model.freeze_backbone_epochs
        if epoch < freeze:
            set_backbone_trainable(model, self.head, False)
        elif epoch == freeze > 0:
            set_backbone_trainable(model, self.head, True)

        n, batch_size, accum = len(self.y_train), cfg.batch_size, cfg.grad_accum_steps
        starts = _batch_starts(n, batch_size)
        perm = torch.randperm(n, device=self.device, generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)
        check_now = self.device.type != "cuda"  # on CUDA a per-step check would sync
        seen = 0
        self.optimizer.zero_grad(set_to_none=True)
        # Batch norms too slow to forget within this epoch average its batches instead, so
        # evaluation after it uses this epoch's statistics (see hpo.train.batchnorm).
        slow = slow_layers(trainable_layers(model), len(starts))
        what = f"epoch {epoch + 1}/{cfg.epochs}"
        advance = self.progress or _no_progress
        advance(what, 0, len(starts))
        with epoch_averaged(slow) as next_batch:
            for step, begin in enumerate(starts):
                idx = perm[begin : begin + batch_size]
                next_batch()
                loss = self._loss(idx)
                # Each micro-batch's share of its accumulation group (the last may be short).
                group_start = step - step % accum
                group_size = min(accum, len(starts) - group_start)
                self.scaler.scale(loss / group_size).backward()
                if step - group_start + 1 == group_size:
                    optimizer_step(self.scaler, self.optimizer, self.schedule)
                    self.optimizer.zero_grad(set_to_none=True)
                loss = loss.detach()
                loss_sum += loss * len(idx)
                seen += len(idx)
                if check_now:
                    if not torch.isfinite(loss):
                        self._raise_bad_loss(float(loss), epoch, (step, len(starts)))
                else:
                    first_bad = torch.where(
                        (first_bad < 0) & ~torch.isfinite(loss), step, first_bad
                    )
                advance(what, step + 1, len(starts))
        total, bad = torch.stack([loss_sum, first_bad.to(loss_sum.dtype)]).tolist()
        if bad >= 0 or not np.isfinite(total):
            self._raise_bad_loss(total, epoch, (int(bad), len(starts)))
        return total / seen

    def _loss(self, idx: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        x = _prepare(
            self.images[self.train_pos[idx]],
            augment=cfg.augment,
            generator=self.generator,
            channels_last=self.channels_last,
        )
        y = self.y_train[idx]
        x, lam = _mix(x, cfg.augment, self.rng)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            out = self.model(x)
            if lam is None:
                return self.criterion(out, y)
            # Mixed inputs: the loss mixes by the same weight (the partner is the reversed batch).
            loss: torch.Tensor = lam * self.criterion(out, y) + (1.0 - lam) * self.criterion(
                out, y.flip(0)
            )
            return loss

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, np.ndarray]:
        """Validation loss (the training criterion) and softmax probabilities."""
        self.model.eval()
        n = len(self.y_val)
        batch_size = 2 * self.cfg.batch_size
        loss_sum = torch.zeros((), device=self.device)
        chunks = []
        for begin in range(0, n, batch_size):
            x = _prepare(
                self.images[self.val_pos[begin : begin + batch_size]],
                augment=None,
                channels_last=self.channels_last,
            )
            with torch.autocast(
                self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
            ):
                out = self.model(x).float()
            loss_sum += self.criterion(out, self.y_val[begin : begin + batch_size]) * len(out)
            chunks.append(out.softmax(1))
        probs = torch.cat(chunks).cpu().numpy()
        return float(loss_sum) / n, probs

    def _raise_bad_loss(
        self,
        value: float,
        epoch: int,
        step: tuple[int, int] | None = None,
        *,
        validation: bool = False,
    ) -> None:
        what = "nan" if np.isnan(value) else "infinite" if np.isinf(value) else "non-finite"
        which = "validation loss" if validation else "loss"
        where = f", step {step[0] + 1}/{step[1]}" if step is not None else ""
        raise TrainingError(
            f"{which} became {what} at epoch {epoch + 1}/{self.cfg.epochs}{where}"
            f" (lr {self.schedule.lr:.3g}); try a lower learning rate (train.optimizer.lr), "
            f"warm-up (train.scheduler.warmup_epochs) or amp: false"
        )


def predict_proba(
    model: nn.Module,
    images: np.ndarray,
    *,
    device: torch.device,
    batch_size: int = 256,
    tta: bool = False,
    amp: bool = True,
    channels_last: bool = True,
    progress: StepProgress | None = None,
) -> np.ndarray:
    """Softmax probabilities ``float32 (N, C)`` of ``model`` for ``uint8 (N, H, W, 3)`` images.

    Images go to ``device`` a batch at a time (pinned, asynchronous copies on CUDA); with
    ``tta`` each image's probabilities are averaged with those of its mirror image.
    ``amp`` and ``channels_last`` apply on CUDA only; ``progress`` is told of the batches
    (``what`` is ``predict``).
    """
    on_cuda = device.type == "cuda"
    dtype = amp_dtype(device, amp)
    channels_last = channels_last and on_cuda
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    chunks = []
    starts = range(0, len(images), batch_size)
    advance = progress or _no_progress
    advance("predict", 0, len(starts))
    with torch.inference_mode():
        for done, begin in enumerate(starts, 1):
            batch = torch.from_numpy(np.array(images[begin : begin + batch_size]))
            if on_cuda:
                batch = batch.pin_memory()
            x = _prepare(
                batch.to(device, non_blocking=True), augment=None, channels_last=channels_last
            )
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                probs = model(x).float().softmax(1)
                if tta:
                    probs = (probs + model(x.flip(3)).float().softmax(1)) / 2
            chunks.append(probs)
            advance("predict", done, len(starts))
    if not chunks:
        raise DataError("no images to predict")
    return torch.cat(chunks).cpu().numpy()


# ---------------------------------------------------------------------------------------------


def _batch_starts(n: int, batch_size: int) -> list[int]:
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()  # a batch of one breaks batch norm; the shuffle changes every epoch
    return starts


def _prepare(
    batch: torch.Tensor,
    *,
    augment: AugmentConfig | None,
    generator: torch.Generator | None = None,
    channels_last: bool,
) -> torch.Tensor:
    from hpo.data import prepare_batch

    return prepare_batch(batch, augment=augment, generator=generator, channels_last=channels_last)


def _no_progress(what: str, done: int, total: int) -> None:
    pass


def _labels(
    labels: np.ndarray, idx: np.ndarray, device: torch.device, num_classes: int
) -> torch.Tensor:
    y = np.asarray(labels[idx], dtype=np.int64)
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must lie in 0..{num_classes - 1}, got {y.min()}..{y.max()}")
    return torch.from_numpy(y).to(device)


def _mix(
    x: torch.Tensor, augment: AugmentConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, float | None]:
    """Mixup or cutmix of each image with its partner in the reversed batch.

    Returns the mixed batch and the weight of the original labels (None when not mixing).
    With both enabled, each batch uses one of them, chosen at random.
    """
    use_mixup, use_cutmix = augment.mixup_alpha > 0, augment.cutmix_alpha > 0
    if not (use_mixup or use_cutmix) or len(x) < 2:
        return x, None
    if use_cutmix and (not use_mixup or rng.random() < 0.5):
        lam = float(rng.beta(augment.cutmix_alpha, augment.cutmix_alpha))
        height, width = x.shape[-2:]
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(rng.integers(height)), int(rng.integers(width))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        if y1 <= y0 or x1 <= x0:
            return x, None
        x = x.clone()
        x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
        return x, 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    lam = float(rng.beta(augment.mixup_alpha, augment.mixup_alpha))
    return x.flip(0).lerp_(x, lam), lam
