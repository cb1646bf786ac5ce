"""Loss registry: every entry is finite and trainable; focal/label smoothing reduce to CE."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hpo.config import train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.train.losses import LOSSES, FocalLoss, class_weights

COUNTS = [50, 30, 15, 5]


def _separable(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    return centers[y] + 0.3 * torch.randn(n, 2, generator=gen), y


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_is_finite_and_decreases_on_a_separable_problem(name: str) -> None:
    torch.manual_seed(0)
    x, y = _separable()
    loss_fn = LOSSES.create(name, num_classes=4, class_counts=COUNTS)
    model = torch.nn.Linear(2, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(30):
        loss = loss_fn(model(x), y)
        assert loss.dim() == 0 and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert (model(x).argmax(1) == y).float().mean() > 0.95


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_accepts_half_precision_logits(name: str) -> None:
    logits = torch.randn(8, 4).to(torch.bfloat16)
    loss = LOSSES.create(name, num_classes=4, class_counts=COUNTS)(logits, torch.arange(8) % 4)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


@pytest.mark.parametrize("weighting", ["none", "inverse", "sqrt_inverse"])
def test_focal_with_gamma_zero_is_cross_entropy(weighting: str) -> None:
    logits, y = torch.randn(32, 4), torch.arange(32) % 4
    focal = LOSSES.create(
        "focal", num_classes=4, class_counts=COUNTS, gamma=0.0, weighting=weighting
    )
    ce = LOSSES.create("cross_entropy", num_classes=4, class_counts=COUNTS, weighting=weighting)
    torch.testing.assert_close(focal(logits, y), ce(logits, y))


def test_focal_down_weights_easy_examples() -> None:
    logits = torch.tensor([[4.0, 0.0], [0.2, 0.0]])
    y = torch.tensor([0, 0])
    focal = LOSSES.create("focal", num_classes=2, gamma=2.0)
    ce_each = F.cross_entropy(logits, y, reduction="none")
    focal_each = torch.stack([focal(logits[i : i + 1], y[i : i + 1]) for i in range(2)])
    ratio = focal_each / ce_each
    assert ratio[0] < 0.01 < ratio[1] < 1.0


def test_label_smoothing_zero_is_cross_entropy_and_matches_torch() -> None:
    logits, y = torch.randn(16, 5), torch.arange(16) % 5
    zero = LOSSES.create("label_smoothing", num_classes=5, smoothing=0.0)
    torch.testing.assert_close(zero(logits, y), F.cross_entropy(logits, y))
    smooth = LOSSES.create("label_smoothing", num_classes=5, smoothing=0.2)
    torch.testing.assert_close(smooth(logits, y), F.cross_entropy(logits, y, label_smoothing=0.2))


def test_f1_loss_is_one_minus_soft_macro_f1_with_a_gradient() -> None:
    y = torch.tensor([0, 1, 2, 2])
    perfect = F.one_hot(y, 3).float() * 50.0
    loss_fn = LOSSES.create("f1", num_classes=3)
    assert float(loss_fn(perfect, y)) < 1e-3
    logits = torch.zeros(4, 3, requires_grad=True)
    loss = loss_fn(logits, y)
    # Uniform probabilities: per class tp = n_c/3, so soft F1_c = 2 n_c / 3 / (n_c + 4/3).
    f1 = [2 * n / 3 / (n + 4 / 3) for n in (1, 1, 2)]
    assert float(loss.detach()) == pytest.approx(1 - sum(f1) / 3, rel=1e-5)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # The gradient raises each target's logit.
    assert (logits.grad[torch.arange(4), y] < 0).all()


def test_f1_loss_ignores_classes_absent_from_the_batch() -> None:
    y = torch.tensor([0, 0, 1, 1])
    logits = torch.tensor([[5.0, 0.0, 0.0, 0.0]] * 2 + [[0.0, 5.0, 0.0, 0.0]] * 2)
    loss = LOSSES.create("f1", num_classes=4)(logits, y)
    assert float(loss) < 0.05  # classes 2 and 3 are not in the batch: no penalty for them


def test_f1_loss_can_add_cross_entropy() -> None:
    logits, y = torch.randn(8, 3), torch.arange(8) % 3
    plain = LOSSES.create("f1", num_classes=3)(logits, y)
    mixed = LOSSES.create("f1", num_classes=3, ce_weight=0.5)(logits, y)
    torch.testing.assert_close(mixed, plain + 0.5 * F.cross_entropy(logits, y))


def test_class_weights() -> None:
    inverse = class_weights("inverse", 4, [40, 20, 10, 0])
    assert inverse is not None
    assert float(inverse.mean()) == pytest.approx(1.0)
    assert inverse[1] / inverse[0] == pytest.approx(2.0)
    assert inverse[3] / inverse[0] == pytest.approx(40.0)  # an absent class counts once
    sqrt = class_weights("sqrt_inverse", 4, [40, 10, 10, 10])
    assert sqrt is not None and sqrt[1] / sqrt[0] == pytest.approx(2.0)
    assert class_weights("none", 4, None) is None


def test_weighted_cross_entropy_matches_torch() -> None:
    logits, y = torch.randn(16, 4), torch.arange(16) % 4
    loss = LOSSES.create("cross_entropy", num_classes=4, class_counts=COUNTS, weighting="inverse")
    weight = class_weights("inverse", 4, COUNTS)
    torch.testing.assert_close(loss(logits, y), F.cross_entropy(logits, y, weight=weight))
    assert loss.to(torch.float64).weight is not None  # a buffer: moves with the module


@pytest.mark.parametrize(
    ("loss", "fragment"),
    [
        ({"name": "focal", "gamma": -1}, "train.loss: gamma"),
        ({"name": "label_smoothing", "smoothing": 1.0}, "train.loss: smoothing"),
        ({"name": "cross_entropy", "weighting": "log"}, "'none', 'inverse' or 'sqrt_inverse'"),
        ({"name": "dice"}, "unknown loss 'dice'; known: cross_entropy, f1, focal"),
    ],
)
def test_bad_loss_settings_name_the_key(loss: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        train_config_from_dict({"train": {"loss": loss}}, "cfg.yaml")
    assert fragment in str(info.value)


@pytest.mark.parametrize("gamma", [0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_focal_loss_and_gradient_stay_finite_at_large_margins(gamma: float, bf16: bool) -> None:
    """``(1 - p_t) ** gamma`` with gamma < 1 has an infinite derivative at p_t = 1: logits
    confident enough for p_t to round to 1 (margins of ~17 in fp32, less in bfloat16) must
    still give a finite loss and gradient, right or wrong, for every gamma the GPU study
    searches (0.5-3.0)."""
    margins = torch.tensor([0.0, 5.0, 10.0, 17.0, 30.0, 60.0, 88.0, 100.0])
    logits = torch.zeros(2 * len(margins), 18)
    targets = torch.full((2 * len(margins),), 4)
    logits[: len(margins), 4] = margins  # confident and right: p_t -> 1
    logits[len(margins) :, 7] = margins  # confident and wrong: p_t -> 0
    leaf = logits.clone().requires_grad_()
    layer = nn.Linear(18, 18)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(18))
        layer.bias.zero_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = layer(leaf)  # bfloat16 logits under autocast, as a model's head gives them
        loss = FocalLoss(gamma)(out, targets)
    loss.backward()
    assert leaf.grad is not None and layer.weight.grad is not None
    assert torch.isfinite(loss)
    assert torch.isfinite(leaf.grad).all() and torch.isfinite(layer.weight.grad).all()
