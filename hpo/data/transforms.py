"""Batch transforms on the training device: uint8 pixels -> normalized, augmented float tensors.

Everything works on a whole batch at once on the tensor's device (CPU or CUDA), so a data set
kept on the GPU is never copied back or touched by PIL. Mixup and cutmix mix labels too and
live in the training loop.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from hpo.config import AugmentConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "prepare_batch"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)
_CHANNELS_LAST_FIRST = frozenset({"cuda"})
"""Device types where a channels_last batch is built in that layout from the start."""


def _uniform(
    shape: tuple[int, ...],
    low: float,
    high: float,
    like: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    # Drawn on the generator's device, so one CPU generator can drive a CUDA batch.
    device = generator.device if generator is not None else like.device
    values = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
    return (low + (high - low) * values).to(like.device)


@functools.lru_cache(maxsize=16)
def _constant(values: tuple[float, float, float], device: torch.device) -> torch.Tensor:
    # Cached per device: building it each batch would copy from the host and sync the GPU.
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1)


@functools.lru_cache(maxsize=16)
def _axis(size: int, device: torch.device) -> torch.Tensor:
    # Pixel centres in [-1, 1], as F.affine_grid places them with align_corners=False.
    return (torch.arange(size, dtype=torch.float32, device=device) * 2 + 1) / size - 1


def _crop_grid(
    scale_x: torch.Tensor,
    scale_y: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
    size: torch.Size,
) -> torch.Tensor:
    """The grid ``F.affine_grid`` builds for per-image axis-aligned maps, by broadcasting.

    ``F.affine_grid`` multiplies every pixel's coordinates by a full 2x3 matrix, which on a CPU
    costs as much as the sampling itself; an axis-aligned map needs one multiply-add per axis.
    """
    height, width = size
    xs = _axis(width, scale_x.device).view(1, 1, -1)
    ys = _axis(height, scale_y.device).view(1, -1, 1)
    grid_x = scale_x.view(-1, 1, 1) * xs + shift_x.view(-1, 1, 1)
    grid_y = scale_y.view(-1, 1, 1) * ys + shift_y.view(-1, 1, 1)
    return torch.stack(torch.broadcast_tensors(grid_x, grid_y), dim=-1)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * _constant(_LUMA, x.device)).sum(dim=1, keepdim=True)


def _geometry(
    x: torch.Tensor, augment: AugmentConfig, generator: torch.Generator | None
) -> torch.Tensor:
    batch = x.shape[0]
    flip = (
        _uniform((batch,), 0.0, 1.0, x, generator) < 0.5
        if augment.hflip
        else torch.zeros(batch, dtype=torch.bool, device=x.device)
    )
    if augment.crop_scale >= 1.0:
        if not augment.hflip:
            return x
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    # A crop keeping a random fraction in [crop_scale, 1] of each side at a random place, resized
    # back to the full size; a horizontal flip is the same affine map with the x scale negated.
    scale_y = _uniform((batch,), augment.crop_scale, 1.0, x, generator)
    scale_x = _uniform((batch,), augment.crop_scale, 1.0, x, generator)
    shift_y = (1.0 - scale_y) * _uniform((batch,), -1.0, 1.0, x, generator)
    shift_x = (1.0 - scale_x) * _uniform((batch,), -1.0, 1.0, x, generator)
    sign = 1.0 - 2.0 * flip.to(x.dtype)
    grid = _crop_grid(scale_x * sign, scale_y, shift_x, shift_y, x.shape[-2:])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _color(x: torch.Tensor, strength: float, generator: torch.Generator | None) -> torch.Tensor:
    batch = x.shape[0]
    low, high = 1.0 - strength, 1.0 + strength
    brightness = _uniform((batch, 1, 1, 1), low, high, x, generator)
    contrast = _uniform((batch, 1, 1, 1), low, high, x, generator)
    saturation = _uniform((batch, 1, 1, 1), low, high, x, generator)
    # Brightness then contrast about the mean luma is one multiply-add per pixel: luma is
    # linear, so the brightened image's mean luma is brightness times the original's.
    # In place (the caller's x is a fresh tensor): a new full-size tensor per step would cost a
    # fresh allocation, and its page faults, every batch.
    mean = _luma(x).mean(dim=(2, 3), keepdim=True) * brightness
    x.mul_(brightness * contrast).add_(mean * (1.0 - contrast))
    gray = _luma(x)
    x.mul_(saturation).add_(gray * (1.0 - saturation))
    return x.clamp_(0.0, 1.0)


def prepare_batch(
    batch: torch.Tensor,
    *,
    augment: AugmentConfig | None,
    generator: torch.Generator | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Turn decoded pixels into a normalized model input, augmenting when asked.

    Args:
        batch: ``uint8 (B, H, W, 3)`` on the device that trains.
        augment: Random horizontal flip, random crop keeping at least ``crop_scale`` of each
            side resized back, and brightness/contrast/saturation jitter of strength
            ``color_jitter``; None for evaluation (no randomness).
        generator: Source of randomness, on the batch's device or the CPU; None uses the
            global generator.
        channels_last: Return the tensor in ``torch.channels_last`` memory format.

    Returns:
        ``float32 (B, 3, H, W)`` normalized with the ImageNet mean and standard deviation.

    Raises:
        ValueError: ``batch`` is not ``uint8 (B, H, W, 3)``.
    """
    if batch.dtype != torch.uint8 or batch.dim() != 4 or batch.shape[-1] != 3:
        raise ValueError(
            f"expected a uint8 (B, H, W, 3) batch, got {batch.dtype} {tuple(batch.shape)}"
        )
    with torch.no_grad():
        nchw = batch.permute(0, 3, 1, 2)
        if channels_last and batch.device.type in _CHANNELS_LAST_FIRST:
            # The permuted (B, H, W, 3) batch already is channels_last: converting it to float
            # keeps that layout, with no copy to channels first and back again.
            x = nchw.to(torch.float32).div_(255.0)
        else:
            # Channels first in memory before anything else: on the CPU every per-channel
            # operation below runs several times slower on the layout a plain permute leaves.
            x = nchw.contiguous().to(torch.float32).div_(255.0)
        if augment is not None and len(x) > 0:
            x = _geometry(x, augment, generator)
            if augment.color_jitter > 0:
                x = _color(x, augment.color_jitter, generator)
        x.sub_(_constant(IMAGENET_MEAN, x.device)).div_(_constant(IMAGENET_STD, x.device))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)
