"""Batch transforms: normalization, and flips, crops and colour jitter on the batch's device."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hpo.config import AugmentConfig
from hpo.data import prepare_batch
from hpo.data.transforms import IMAGENET_MEAN, IMAGENET_STD, _color, _crop_grid

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    ),
]
NO_AUGMENT = AugmentConfig(hflip=False, crop_scale=1.0, color_jitter=0.0)


def batch(
    n: int = 8, h: int = 16, w: int = 12, device: str = "cpu", seed: int = 0
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), generator=g, dtype=torch.uint8).to(device)


def normalized(x: torch.Tensor) -> torch.Tensor:
    """The reference: channels first, [0, 1], ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x.permute(0, 3, 1, 2).float() / 255 - mean) / std


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_is_plain_normalization(device: str) -> None:
    x = batch(device=device)
    out = prepare_batch(x, augment=None)
    assert out.shape == (8, 3, 16, 12) and out.dtype == torch.float32
    assert out.device.type == device
    torch.testing.assert_close(out, normalized(x))
    white = prepare_batch(
        torch.full((1, 2, 2, 3), 255, dtype=torch.uint8, device=device), augment=None
    )
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    torch.testing.assert_close(white[0, :, 0, 0].cpu(), torch.tensor(expected))


def test_augmentation_switched_off_changes_nothing() -> None:
    x = batch()
    torch.testing.assert_close(prepare_batch(x, augment=NO_AUGMENT), normalized(x))


@pytest.mark.parametrize("device", DEVICES)
def test_flip_only_flips_whole_images(device: str) -> None:
    x = batch(64, device=device)
    out = prepare_batch(x, augment=NO_AUGMENT.model_copy(update={"hflip": True}))
    ref = normalized(x)
    same = (out == ref).flatten(1).all(1)
    flipped = (out == ref.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all()
    assert same.any() and flipped.any()


@pytest.mark.parametrize("device", DEVICES)
def test_crop_zooms_in(device: str) -> None:
    # A horizontal ramp: a crop keeps part of it stretched to full width, so the range shrinks.
    ramp = torch.linspace(0, 255, 40).round().to(torch.uint8)
    x = ramp.view(1, 1, 40, 1).expand(16, 30, 40, 3).contiguous().to(device)
    aug = AugmentConfig(hflip=False, crop_scale=0.5, color_jitter=0.0)
    out = prepare_batch(x, augment=aug, generator=torch.Generator(device).manual_seed(0))
    ref = normalized(x)
    assert out.shape == ref.shape
    spans = out[:, 0, 0, :].amax(-1) - out[:, 0, 0, :].amin(-1)
    full = ref[0, 0, 0, :].amax() - ref[0, 0, 0, :].amin()
    assert (spans < full).all() and (spans >= 0.45 * full).all()
    # A constant image stays constant whatever the crop.
    flat = torch.full((4, 30, 40, 3), 77, dtype=torch.uint8, device=device)
    torch.testing.assert_close(prepare_batch(flat, augment=aug), normalized(flat))


def test_colour_jitter_stays_in_range_and_varies() -> None:
    x = batch(32)
    aug = AugmentConfig(hflip=False, crop_scale=1.0, color_jitter=0.5)
    out = prepare_batch(x, augment=aug)
    low = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)])
    high = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)])
    assert (out >= low.view(1, 3, 1, 1) - 1e-5).all() and (
        out <= high.view(1, 3, 1, 1) + 1e-5
    ).all()
    assert not torch.allclose(out, normalized(x))


def test_generator_makes_it_reproducible() -> None:
    x = batch(16)
    aug = AugmentConfig(crop_scale=0.7, color_jitter=0.3)
    a = prepare_batch(x, augment=aug, generator=torch.Generator().manual_seed(5))
    b = prepare_batch(x, augment=aug, generator=torch.Generator().manual_seed(5))
    c = prepare_batch(x, augment=aug, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last(device: str) -> None:
    out = prepare_batch(batch(device=device), augment=AugmentConfig(), channels_last=True)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert prepare_batch(batch(device=device), augment=None).is_contiguous()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_drives_a_cuda_batch() -> None:
    x = batch(device="cuda")
    aug = AugmentConfig(crop_scale=0.8, color_jitter=0.2)
    a = prepare_batch(x, augment=aug, generator=torch.Generator().manual_seed(1))
    b = prepare_batch(x.cpu(), augment=aug, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.cpu(), b, atol=1e-4, rtol=1e-4)


def test_empty_batch_and_bad_input() -> None:
    assert prepare_batch(batch(0), augment=AugmentConfig()).shape == (0, 3, 16, 12)
    with pytest.raises(ValueError, match="uint8"):
        prepare_batch(batch().float(), augment=None)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        prepare_batch(batch().permute(0, 3, 1, 2), augment=None)


def test_crop_grid_is_affine_grid() -> None:
    g = torch.Generator().manual_seed(0)
    scale_x, scale_y = 0.5 + torch.rand(2, 8, generator=g)
    scale_x[::2] *= -1  # flipped
    shift_x, shift_y = torch.rand(2, 8, generator=g) - 0.5
    theta = torch.zeros(8, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = scale_x, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale_y, shift_y
    expected = F.affine_grid(theta, [8, 3, 7, 10], align_corners=False)
    grid = _crop_grid(scale_x, scale_y, shift_x, shift_y, torch.Size([7, 10]))
    torch.testing.assert_close(grid, expected)


def test_colour_jitter_is_brightness_then_contrast_then_saturation() -> None:
    x = torch.rand(6, 3, 5, 4, generator=torch.Generator().manual_seed(1))
    out = _color(x.clone(), 0.4, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    b, c, s = (0.6 + 0.8 * torch.rand((6, 1, 1, 1), generator=g) for _ in range(3))

    def luma(t: torch.Tensor) -> torch.Tensor:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        return (t * weights).sum(1, keepdim=True)

    ref = x * b
    mean = luma(ref).mean(dim=(2, 3), keepdim=True)
    ref = (ref - mean) * c + mean
    ref = (ref - luma(ref)) * s + luma(ref)
    torch.testing.assert_close(out, ref.clamp(0, 1))


@pytest.mark.parametrize(
    "augment",
    [None, NO_AUGMENT, AugmentConfig(), AugmentConfig(crop_scale=0.7, color_jitter=0.3)],
)
def test_channels_last_from_the_start_gives_the_same_batch(
    augment: AugmentConfig | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On CUDA the batch is channels_last from the uint8 -> float step on (no copies to
    channels first and back); the CPU path, switched the same way here, must agree."""
    from hpo.data import transforms

    x = batch(seed=3)
    expected = prepare_batch(x, augment=augment, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(transforms, "_CHANNELS_LAST_FIRST", frozenset({"cpu", "cuda"}))
    out = prepare_batch(
        x, augment=augment, generator=torch.Generator().manual_seed(2), channels_last=True
    )
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    if augment is None:  # nothing between: the float conversion is the only full-size tensor
        converted = x.permute(0, 3, 1, 2).to(torch.float32)
        assert converted.is_contiguous(memory_format=torch.channels_last)
